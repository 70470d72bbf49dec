"""Benchmarks of impl against raw kernel baselines measured in the same run: ``python -m bench``."""
