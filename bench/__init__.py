"""Benchmarks users can run: ``make bench`` or ``python -m bench [name ...]``."""
