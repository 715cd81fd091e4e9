"""Benchmarks: speed and memory targets, with figures recorded in docs/."""
