"""Synthetic sources for demos and tests: simulated companies and local vendor API servers.

``simulate(SimulationConfig(preset="tiny", seed=1, out=path))`` writes one company's files
(docs/DATA_CONTRACTS.md section 1); ``retention simulate`` is the same from the shell.
"""
