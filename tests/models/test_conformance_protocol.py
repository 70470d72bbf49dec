"""The protocol's pieces: schemas agree with the constants, codec, driver loop, allowances."""

from __future__ import annotations

import errno
import io
import json
import re
from dataclasses import fields
from pathlib import Path

import pytest

from models.conformance import codec, schema
from models.conformance.codec import Json
from models.conformance.compare import Verdict, compare
from models.conformance.driver import answer, serve
from models.conformance.port import Port
from models.conformance.protocol import (
    ALLOWANCES,
    CORE,
    ERROR_CODES,
    FAULTS,
    FEATURES,
    OP_FEATURES,
    OPS,
)
from models.conformance.spec_port import SpecPort
from models.conformance.vector import Step, derive_features
from spec.vocabulary import NO_FAULTS, UINT64_MAX, HostFaults


def test_schemas_name_exactly_the_protocol_constants() -> None:
    request = schema.load("request")
    assert set(request["properties"]["op"]["enum"]) == set(OPS)
    assert set(schema.load("response")["$defs"]["results"]) == set(OPS)
    assert schema.load("vector")["properties"]["features"]["items"]["enum"] == list(FEATURES)
    assert schema.load("manifest")["properties"]["vectors"]["items"]["properties"]["features"][
        "items"
    ]["enum"] == list(FEATURES)
    for code in ERROR_CODES:
        schema.validate("response", {"ok": False, "error": code})
    with pytest.raises(schema.SchemaError):
        schema.validate("response", {"ok": False, "error": "enomem"})
    assert "eviction-order" in ALLOWANCES and "abort-on-contract" in ALLOWANCES
    fault_fields = request["$defs"]["faults"]["properties"]
    assert list(fault_fields) == list(FAULTS) == list(codec.FAULT_FIELDS)
    assert set(codec.FAULT_FIELDS.values()) == {f.name for f in fields(HostFaults)}
    assert request["$defs"]["create"]["properties"]["faults"]["$ref"] == "#/$defs/faults"


def test_u64_strings_are_strict() -> None:
    assert codec.parse_u64("0") == 0
    assert codec.parse_u64(str(UINT64_MAX)) == UINT64_MAX
    for bad in ("01", str(UINT64_MAX + 1), "-1", "1.0", 5, "", "\uff11"):
        with pytest.raises(codec.BadRequest):
            codec.parse_u64(bad)


def test_payloads_and_page_sets() -> None:
    assert codec.pattern_bytes(253)[250:] == bytes([250, 0, 1])
    assert codec.parse_data({"pattern": "300"}) == codec.pattern_bytes(300)
    assert codec.parse_data({"base64": "AAE="}) == b"\x00\x01"
    assert codec.parse_data({"hex": "00ff"}) == b"\x00\xff"
    with pytest.raises(codec.BadRequest):
        codec.parse_data({"hex": "0"})
    assert codec.parse_page_set([["0", "4096"], ["8192", "12288"]])[1].start == 8192
    for bad in (
        [["0", "4096"], ["4096", "8192"]],
        [["0", "100"]],
        [["8192", "12288"], ["0", "4096"]],
    ):
        with pytest.raises(codec.BadRequest):
            codec.parse_page_set(bad)


def test_schema_rejects_what_the_codec_would_misread() -> None:
    good = {"op": "allocate", "length": "4096", "kind": "Anonymous"}
    schema.validate_request(good)
    for bad in (
        {**good, "length": 4096},
        {**good, "kind": "anonymous"},
        {**good, "extra": 1},
        {"op": "allocate", "length": "4096"},
        {"op": "no-such-op"},
    ):
        with pytest.raises(schema.SchemaError):
            schema.validate_request(bad)
        with pytest.raises(schema.SchemaError):
            schema.validate("request", bad)
    with pytest.raises(schema.SchemaError, match="result of total_size"):
        schema.validate_response("total_size", {"ok": True, "result": 4096})
    with pytest.raises(schema.SchemaError):
        schema.validate_response("state", {"ok": True, "result": {"file_size": "0"}})


def test_faults_spell_every_host_fault() -> None:
    every = HostFaults(truncate=errno.ENOSPC, map=errno.ENOMEM, punch=errno.EIO, mincore=95)
    spelled = codec.faults_json(every)
    assert spelled == {
        "ftruncate": "ENOSPC",
        "mmap": "ENOMEM",
        "punch_hole": "EIO",
        "mincore": "EOPNOTSUPP",
    }
    assert codec.parse_faults(spelled) == every
    assert codec.parse_faults({}) == NO_FAULTS and codec.faults_json(NO_FAULTS) == {}
    assert codec.parse_faults({"mmap": "ENOTSUP"}) == HostFaults(map=errno.EOPNOTSUPP)
    for bad in ({"fallocate": "EIO"}, {"mmap": "enomem"}, {"mmap": "EBOGUS"}, ["mmap"]):
        with pytest.raises(codec.BadRequest):
            codec.parse_faults(bad)
    for request in (
        {"op": "set_faults", "faults": spelled},
        {"op": "set_faults", "faults": {}},
        {"op": "create", "options": codec.options_json(None), "faults": spelled},
    ):
        schema.validate_request(request)
        schema.validate("request", request)
    for bad_request in (
        {"op": "set_faults"},
        {"op": "set_faults", "faults": {"fallocate": "EIO"}},
        {"op": "set_faults", "faults": {"mmap": 12}},
        {"op": "create", "options": codec.options_json(None), "faults": {"mmap": "nomem"}},
    ):
        with pytest.raises(schema.SchemaError):
            schema.validate_request(bad_request)
    schema.validate_response("set_faults", {"ok": True, "result": None})
    with pytest.raises(schema.SchemaError):
        schema.validate_response("set_faults", {"ok": True, "result": {}})


def test_set_faults_replaces_the_faults_of_the_session() -> None:
    port = SpecPort()
    faults = {"op": "set_faults", "faults": {"mincore": "EAGAIN"}}
    assert port.handle(faults)["error"] == "bad-request"  # before create
    create = {"op": "create", "options": codec.options_json(None)}
    assert port.handle({**create, "faults": {"punch_hole": "EIO", "mmap": "ENOMEM"}})["ok"]
    assert port.spec.faults == HostFaults(punch=errno.EIO, map=errno.ENOMEM)
    assert port.handle(faults) == {"ok": True, "result": None}
    assert port.spec.faults == HostFaults(mincore=errno.EAGAIN)  # replaced, not merged
    assert port.handle({"op": "set_faults", "faults": {"mmap": "EBOGUS"}})["error"] == (
        "bad-request"
    )
    assert port.spec.faults == HostFaults(mincore=errno.EAGAIN)
    assert port.handle({"op": "destroy"})["ok"]
    assert port.handle({"op": "set_faults", "faults": {}})["ok"]  # allowed after destroy
    assert port.spec.faults == NO_FAULTS
    failed = port.handle({**create, "faults": {"ftruncate": "ENOSPC"}})
    assert failed["error"] == "ENOSPC" and port.file is None
    assert port.handle(faults)["error"] == "bad-request"  # no file: creation failed


def test_features_of_injected_faults() -> None:
    def features(*exchanges: tuple[Json, Json]) -> tuple[str, ...]:
        return derive_features(tuple(Step(q, r) for q, r in exchanges))

    create = {"op": "create", "options": codec.options_json(None)}
    created = {"ok": True, "result": None}
    enomem = {"ok": False, "error": "ENOMEM"}
    allocate = {"op": "allocate", "length": "4096", "kind": "Anonymous"}
    assert features(({**create, "faults": {"punch_hole": "EIO"}}, created)) == ("faults",)
    assert features(({**create, "faults": {"mmap": "ENOMEM"}}, created), (allocate, enomem)) == (
        "alloc",
        "kernel-faults",
    )
    huge = {**allocate, "length": str(1 << 63)}
    # A length that never fits leaves the file as it is: plain alloc, not growth-overflow.
    assert features((create, created), (huge, enomem)) == ("alloc",)
    grown = {"ok": True, "result": {"file_size": str(1 << 62), "evictable": []}}
    assert features((create, created), (huge, enomem), ({"op": "state"}, grown)) == (
        "alloc",
        "growth-overflow",
    )


def test_driver_loop_answers_every_line_and_echoes_ids() -> None:
    lines = [
        json.dumps({"id": 0, "op": "hello", "protocol": 1}),
        "this is not JSON",
        json.dumps({"id": 2, "op": "allocate", "length": "4096"}),
        json.dumps({"id": 3, "op": "allocate", "length": "4096", "kind": "Anonymous"}),
        json.dumps({"id": 4, "op": "create", "options": codec.options_json(None)}),
        json.dumps({"id": 5, "op": "allocate", "length": "4096", "kind": "Anonymous"}),
        json.dumps({"id": 6, "op": "allocate", "length": "4097", "kind": "Anonymous"}),
        json.dumps({"id": 7, "op": "create", "options": codec.options_json(None, invalid=True)}),
    ]
    out = io.StringIO()
    assert serve(SpecPort(), io.StringIO("\n".join(lines) + "\n"), out) == 0
    responses = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(responses) == len(lines)
    assert responses[0]["result"]["protocol"] == 1 and "host" in responses[0]["result"]["features"]
    assert responses[1] == {"ok": False, "error": "bad-request", "message": responses[1]["message"]}
    assert responses[2]["id"] == 2 and responses[2]["error"] == "bad-request"
    assert responses[3]["error"] == "bad-request" and "before create" in responses[3]["message"]
    assert responses[5]["result"] == ["1073737728", "1073741824"]
    assert (responses[6]["error"], responses[6]["violation"]) == ("contract", "InvalidLength")
    assert responses[7]["error"] == "EINVAL"
    for line, response in zip(lines, responses, strict=True):
        if line.startswith("{"):
            assert response["id"] == json.loads(line)["id"]
            schema.validate("response", response)


def test_answer_reports_schema_errors() -> None:
    response = answer(SpecPort(), json.dumps({"id": 9, "op": "decommit", "range": ["1"]}))
    assert response["id"] == 9 and response["error"] == "bad-request"
    assert "range" in response["message"]


# --- The allowances ---------------------------------------------------------------------

EVENTS = [
    {"user": "a", "range": ["32", "48"]},
    {"user": "b", "range": ["0", "16"]},
    {"user": "a", "range": ["0", "16"]},
]


def ok(result: object) -> dict[str, object]:
    return {"ok": True, "result": result}


def contract(violation: str | None = None, **extra: object) -> dict[str, object]:
    response: dict[str, object] = {"ok": False, "error": "contract", **extra}
    if violation:
        response["violation"] = violation
    return response


def test_eviction_order_is_free_across_users_only() -> None:
    request = {"op": "run_evictions"}
    interleaved = [EVENTS[1], EVENTS[0], EVENTS[2]]
    assert compare(request, ok(EVENTS), ok(interleaved)).verdict is Verdict.MATCH
    per_user_swapped = [EVENTS[2], EVENTS[1], EVENTS[0]]
    assert compare(request, ok(EVENTS), ok(per_user_swapped)).verdict is Verdict.MISMATCH
    assert compare(request, ok(EVENTS), ok(EVENTS[:2])).verdict is Verdict.MISMATCH


def test_contract_allowances() -> None:
    request = {"op": "inc_ref", "range": ["0", "4096"]}
    expected = contract("UnallocatedPages")
    assert compare(request, expected, contract()).verdict is Verdict.MATCH
    assert compare(request, expected, contract("UnallocatedPages", message="x")).verdict is (
        Verdict.MATCH
    )
    wrong = compare(request, expected, contract("NoReferences"))
    assert wrong.verdict is Verdict.MISMATCH and "NoReferences" in wrong.detail
    assert compare(request, expected, contract(aborted=True)).verdict is Verdict.ABORTED
    assert compare(request, expected, {"ok": False, "error": "ENOMEM"}).verdict is (
        Verdict.MISMATCH
    )
    assert compare(request, expected, ok(None)).verdict is Verdict.MISMATCH
    # Aborting is allowed only where a contract error is expected.
    aborted = compare({"op": "total_size"}, ok("0"), contract(aborted=True))
    assert aborted.verdict is Verdict.MISMATCH


def test_errno_aliases_match() -> None:
    request = {"op": "decommit", "range": ["0", "4096"]}
    expected = {"ok": False, "error": "EOPNOTSUPP"}
    assert compare(request, expected, {"ok": False, "error": "ENOTSUP"}).verdict is Verdict.MATCH
    assert compare(request, expected, {"ok": False, "error": "EIO"}).verdict is Verdict.MISMATCH
    assert codec.errno_name(95) == "EOPNOTSUPP"


def test_not_supported_and_malformed() -> None:
    request = {"op": "total_size"}
    unsupported = {"ok": False, "error": "not-supported"}
    assert compare(request, ok("0"), unsupported).verdict is Verdict.UNSUPPORTED
    malformed = compare(request, ok("4096"), ok(4096))
    assert malformed.verdict is Verdict.MISMATCH and "malformed" in malformed.detail


def test_state_differences_name_the_field() -> None:
    port = SpecPort()
    port.handle({"op": "create", "options": codec.options_json(None)})
    port.handle({"op": "allocate", "length": "8192", "kind": "Tmpfs"})
    state = port.handle({"op": "state"})
    other = json.loads(json.dumps(state))
    other["result"]["usage"][0]["refs"] = "2"
    found = compare({"op": "state"}, state, other)
    assert found.verdict is Verdict.MISMATCH
    assert found.detail.startswith('result.usage[0].refs: expected "1", got "2"')


class _Silent(Port):
    name = "silent"

    def features(self) -> list[str]:
        return []

    def handle(self, request: dict[str, object]) -> dict[str, object]:
        return {"ok": False, "error": "not-supported"}


def test_a_port_may_support_nothing() -> None:
    out = io.StringIO()
    serve(_Silent(), io.StringIO('{"id": 1, "op": "state"}\n'), out)
    assert json.loads(out.getvalue()) == {"id": 1, "ok": False, "error": "not-supported"}


def test_every_op_belongs_to_one_feature_in_one_table() -> None:
    """protocol.OP_FEATURES, the schemas' x-feature and the docs' feature column agree."""
    assert set(OP_FEATURES) == set(OPS)
    assert set(OP_FEATURES.values()) == set(FEATURES) - {
        "growth-overflow",
        "bad-input",
        "options",
        "manual-zeroing",
        "faults",
        "unmark-empty",
    } | {CORE}
    definitions = schema.load("request")["$defs"]
    assert {op: definitions[op]["x-feature"] for op in OPS} == OP_FEATURES
    docs = (Path(__file__).resolve().parents[2] / "docs" / "conformance.md").read_text()
    table = docs[docs.index("| op | feature |") :].split("\n\n")[0].splitlines()[2:]
    documented: dict[str, str] = {}
    for row in table:
        cells = row.split(" | ")
        ops = re.findall(r"`([\w-]+)`", cells[0])
        features = re.findall(r"`([\w-]+)`", cells[1].split("(")[0])  # "(host without ...)"
        documented |= dict(
            zip(ops, features * len(ops) if len(features) == 1 else features, strict=True)
        )
    assert documented == OP_FEATURES
