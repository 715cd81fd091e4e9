"""Synthetic sources for demos and tests: simulated companies and local vendor API servers."""
