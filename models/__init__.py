"""The evidence that spec and impl agree and are right: proofs, model checking, stateful machines, conformance, the command line."""
