"""Benchmarks: each prints figures and ratios from one run (tests never assert timings)."""
