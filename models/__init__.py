"""The evidence that spec and impl agree and are right.

Proofs, model checking, stateful machines, conformance, the command line.
"""
