"""Validation of protocol messages, vectors and manifests against the shipped JSON Schemas.

The schemas in ``schemas/`` are the normative definition of every message
(a porter reads them, and may validate with any JSON Schema library); this
module loads them into a :mod:`referencing` registry and offers cached
validators. Pure-Python validation costs about a millisecond per message,
so the fast entry points go straight to the operation's own definition
(the same rules the whole schema applies once it has matched the ``op``)
and remember the messages they have accepted:

* :func:`validate_request`, :func:`validate_response` — one message;
* :func:`validate_vector` — a vector's outline, then each step by its op.

:func:`validate` checks a document against a whole schema, the slow way;
the fast ones fall back to it to explain a failure.
"""

from __future__ import annotations

import json
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped, unused-ignore]  # stubs: types-jsonschema
from referencing import Registry, Resource

from models.conformance.protocol import OPS

SCHEMA_DIR = Path(__file__).parent / "schemas"
BASE_URI = "https://pgalloc.invalid/conformance/"
NAMES = ("request", "response", "observation", "vector", "manifest")
OUTLINE_URI = BASE_URI + "vector-outline.schema.json"
"""vector.schema.json with its steps checked for shape only (each is then checked by its op)."""


class SchemaError(ValueError):
    """A document does not match its schema; the message names the place and the rule."""


@cache
def load(name: str) -> dict[str, Any]:
    """The schema ``<name>.schema.json`` as a dict."""
    with (SCHEMA_DIR / f"{name}.schema.json").open() as stream:
        schema: dict[str, Any] = json.load(stream)
    return schema


def _outline() -> dict[str, Any]:
    outline: dict[str, Any] = json.loads(json.dumps(load("vector")))
    outline["$id"] = OUTLINE_URI
    outline["$defs"]["step"] = {
        "type": "object",
        "properties": {"request": {"type": "object"}, "response": {"type": "object"}},
        "required": ["request", "response"],
        "additionalProperties": False,
    }
    return outline


@cache
def _registry() -> Registry[Any]:
    documents = {BASE_URI + f"{name}.schema.json": load(name) for name in NAMES}
    documents[OUTLINE_URI] = _outline()
    return Registry().with_resources(
        (uri, Resource.from_contents(document)) for uri, document in documents.items()
    )


ANNOTATIONS = frozenset({"description", "title", "$comment"})


def _resolve(uri: str, base: str) -> tuple[Any, str]:
    """The subschema ``uri`` names (relative to the document ``base``), and its document."""
    document, _, pointer = uri.partition("#")
    document = (
        document if document.startswith("http") else (BASE_URI + document if document else base)
    )
    node = _registry().contents(document)
    for part in filter(None, pointer.split("/")):
        node = node[part]
    return node, document


def _inline(node: Any, base: str) -> Any:
    """``node`` with every ``$ref`` replaced by what it refers to (our schemas do not recurse)."""
    if isinstance(node, list):
        return [_inline(item, base) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target, document = _resolve(node["$ref"], base)
        rest = {k: v for k, v in node.items() if k != "$ref" and k not in ANNOTATIONS}
        inlined = _inline(target, document)
        return {"allOf": [inlined, _inline(rest, base)]} if rest else inlined
    return {k: _inline(v, base) for k, v in node.items() if k not in ("$defs", "$id", "$schema")}


@cache
def _validator(uri: str) -> jsonschema.Draft202012Validator:
    """A validator for ``uri`` with its references inlined: no lookups while validating."""
    return jsonschema.Draft202012Validator(_inline({"$ref": uri}, BASE_URI))


def _check(uri: str, document: Any, what: str) -> None:
    validator = _validator(uri)
    if validator.is_valid(document):  # the fast path; errors are worked out only on failure
        return
    error = jsonschema.exceptions.best_match(validator.iter_errors(document))
    place = "/".join(str(part) for part in error.absolute_path) if error else ""
    message = error.message if error else "invalid"
    raise SchemaError(
        f"{what} does not match {uri.removeprefix(BASE_URI)} at {place or '(top)'}: {message}"
    )


def validate(name: str, document: Any) -> None:
    """Raise :class:`SchemaError` unless ``document`` matches ``<name>.schema.json``."""
    _check(BASE_URI + f"{name}.schema.json", document, name)


def validate_result(op: str, result: Any) -> None:
    """Raise :class:`SchemaError` unless ``result`` is a valid result of ``op``."""
    _check(BASE_URI + f"response.schema.json#/$defs/results/{op}", result, f"the result of {op}")


def validate_request(request: Any) -> None:
    """``validate("request", request)``, by the op's own definition, memoized."""
    op = request.get("op") if isinstance(request, dict) else None
    if op not in OPS:
        validate("request", request)  # let the whole schema say what is wrong
        return
    _checked_request(op, json.dumps(request, sort_keys=True))


def validate_response(op: str, response: Any) -> None:
    """The response envelope, then its result as ``op``'s, memoized."""
    _checked_response(op, json.dumps(response, sort_keys=True))


def validate_vector(document: Any) -> None:
    """``validate("vector", document)``: its outline, then each step by its op."""
    if not _validator(OUTLINE_URI).is_valid(document):
        validate("vector", document)
    for index, step in enumerate(document["steps"]):
        try:
            validate_request(step["request"])
            validate_response(step["request"]["op"], step["response"])
        except SchemaError as error:
            raise SchemaError(f"step {index}: {error}") from None


@lru_cache(maxsize=1 << 14)
def _checked_request(op: str, text: str) -> None:
    _check(BASE_URI + f"request.schema.json#/$defs/{op}", json.loads(text), "request")


@lru_cache(maxsize=1 << 14)
def _checked_response(op: str, text: str) -> None:
    response = json.loads(text)
    validate("response", response)
    if response["ok"]:
        validate_result(op, response["result"])
