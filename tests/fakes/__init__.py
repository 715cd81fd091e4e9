"""Shared test helpers: small datasets for the local vendor API servers."""
