"""Destination adapters (one module per kind), all following :mod:`.base`."""
