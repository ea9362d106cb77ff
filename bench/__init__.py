"""Benchmarks of the hotline gateway: `python -m bench` (`make bench`) writes docs/BENCHMARKS.md."""
