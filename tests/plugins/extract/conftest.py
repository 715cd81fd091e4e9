"""Fixtures of the Stripe extraction tests: a warehouse connection and a hook on the local server."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import psycopg
import pytest

from fakes.stripe_dataset import API_KEY
from retention import warehouse
from retention.hooks.stripe import StripeHook, connection_json


@pytest.fixture
def conn(fresh_db: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection to a fresh database (the loads run their own transactions)."""
    with warehouse.connect(fresh_db, autocommit=True) as connection:
        yield connection


@pytest.fixture
def hook_for(monkeypatch: pytest.MonkeyPatch) -> Callable[..., StripeHook]:
    """``hook_for(base_url, **hook_kwargs)``: a StripeHook on ``stripe_default`` pointing there."""

    def make(base_url: str, **kwargs) -> StripeHook:
        monkeypatch.setenv("AIRFLOW_CONN_STRIPE_DEFAULT", connection_json(base_url, API_KEY))
        return StripeHook(**kwargs)

    return make
