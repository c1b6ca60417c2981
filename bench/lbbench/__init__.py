"""Benchmark of the bundled engine against HAProxy; driven by bench/run.py."""
