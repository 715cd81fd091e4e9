"""Helpers shared by the tests and the benchmarks, never shipped with the package.

Under pytest ``tests/`` is on ``sys.path`` (like ``landed_files``), so tests import
``support.databases``; the benchmarks run from the repository root
(``python -m benchmarks...``) and import ``tests.support.databases``.
"""
