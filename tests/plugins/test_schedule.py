"""retention.schedule: what a run processes, for every kind of run, and the sole-writer lock."""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime
from types import SimpleNamespace

import pytest

from retention import warehouse
from retention.schedule import (
    IntervalError,
    RunInterval,
    checked_as_of,
    is_new,
    landed_ends,
    run_interval,
    sole_writer,
)


class Events(list):
    """The shape of Airflow's inlet-event accessor: a sequence with ascending()/limit()."""

    def ascending(self, ascending: bool = True) -> Events:
        return Events(self if ascending else reversed(self))

    def limit(self, n: int) -> Events:
        return Events(self[:n])


class AssetKeyed(dict):
    """Events keyed by Asset, iterable over the Assets (as Airflow's accessors are)."""

    def __getitem__(self, asset):
        return dict.__getitem__(self, asset.name)

    def __iter__(self):
        return iter([SimpleNamespace(name=name) for name in dict.keys(self)])


def _ctx(run_type: str, logical: datetime | None = None, run_after: datetime | None = None, **extra) -> dict:
    dag_run = SimpleNamespace(run_type=run_type, run_id=f"{run_type}__x", logical_date=logical, run_after=run_after)
    return {"dag_run": dag_run, "logical_date": logical, **extra}


def _event(start: str, end: str) -> SimpleNamespace:
    return SimpleNamespace(extra={"interval_start": start, "interval_end": end})


@pytest.mark.parametrize("run_type", ["scheduled", "backfill", "manual"])
def test_a_run_with_a_date_processes_the_day_of_its_date(run_type):
    # the scheduled run for 12-09 is dated 12-09 and runs after 12-10 00:00
    got = run_interval(_ctx(run_type, datetime(2025, 12, 9, tzinfo=UTC), run_after=datetime(2025, 12, 10, tzinfo=UTC)))
    assert (got.start, got.end, got.as_of) == (date(2025, 12, 9), date(2025, 12, 10), date(2025, 12, 9))
    assert f"{run_type} run dated 2025-12-09" in got.basis
    assert "processes 2025-12-09 " in got.describe()


def test_a_date_inside_a_day_means_that_day():
    got = run_interval(_ctx("manual", datetime(2025, 12, 9, 13, 30, tzinfo=UTC), run_after=datetime(2026, 3, 1, tzinfo=UTC)))
    assert (got.start, got.end) == (date(2025, 12, 9), date(2025, 12, 10))


def test_a_manual_run_without_a_date_processes_the_last_day_before_its_trigger():
    got = run_interval(_ctx("manual", None, run_after=datetime(2026, 3, 1, 8, 15, tzinfo=UTC)))
    assert (got.start, got.end) == (date(2026, 2, 28), date(2026, 3, 1))


ASSETS = [SimpleNamespace(name="raw.events"), SimpleNamespace(name="raw.stripe_invoices")]


def _asset_ctx(run_type: str, landed: dict[str, list], triggering: dict[str, list] | None = None) -> dict:
    ctx = _ctx(run_type, None, run_after=datetime(2026, 3, 1, tzinfo=UTC),
               inlet_events=AssetKeyed({name: Events(events) for name, events in landed.items()}))
    ctx["triggering_asset_events"] = AssetKeyed(triggering or {})
    return ctx


def test_an_asset_triggered_run_processes_up_to_the_last_day_every_source_has_landed():
    # events landed 12-09 then 12-10 (newest first, as Airflow returns them); stripe only 12-09
    landed = {"raw.events": [_event("2025-12-10", "2025-12-11"), _event("2025-12-09", "2025-12-10")],
              "raw.stripe_invoices": [_event("2025-12-09", "2025-12-10")]}
    triggering = {"raw.stripe_invoices": [_event("2025-12-09", "2025-12-10")]}
    got = run_interval(_asset_ctx("asset_triggered", landed, triggering), ASSETS)
    assert (got.start, got.end, got.as_of) == (date(2025, 12, 9), date(2025, 12, 10), date(2025, 12, 9))
    assert got.waiting_for == ()
    assert "what every source has landed" in got.basis
    # a re-run publishing an older day does not move an Asset's end back
    landed["raw.stripe_invoices"].insert(0, _event("2025-12-01", "2025-12-02"))
    landed["raw.stripe_invoices"].insert(0, _event("2025-12-10", "2025-12-11"))
    triggering = {"raw.events": [_event("2025-12-09", "2025-12-10")]}
    got = run_interval(_asset_ctx("asset_triggered", landed, triggering), ASSETS)
    assert (got.start, got.end) == (date(2025, 12, 9), date(2025, 12, 11))


def test_a_source_that_never_landed_makes_a_triggered_run_wait_and_a_manual_run_fail():
    landed = {"raw.events": [_event("2025-12-09", "2025-12-10")],
              "raw.stripe_invoices": [SimpleNamespace(extra={"note": "by hand"})]}
    got = run_interval(_asset_ctx("asset_triggered", landed, {"raw.events": landed["raw.events"]}), ASSETS)
    assert got.waiting_for == ("raw.stripe_invoices",)
    assert not is_new(got, None)
    with pytest.raises(IntervalError, match="nothing has landed yet for \\['raw.stripe_invoices'\\]"):
        run_interval(_asset_ctx("manual", landed), ASSETS)


def test_a_manual_run_of_an_asset_scheduled_dag_without_a_date_takes_what_every_source_landed():
    landed = {"raw.events": [_event("2025-12-10", "2025-12-11")],
              "raw.stripe_invoices": [_event("2025-12-09", "2025-12-10")]}
    got = run_interval(_asset_ctx("manual", landed), ASSETS)
    assert (got.start, got.end) == (date(2025, 12, 9), date(2025, 12, 10))


def test_only_a_complete_day_not_built_yet_is_new():
    interval = RunInterval(date(2025, 12, 9), date(2025, 12, 10), "t")
    assert is_new(interval, None)
    assert is_new(interval, date(2025, 12, 9))
    assert not is_new(interval, date(2025, 12, 10))
    assert landed_ends({"marts": [{"interval_start": "2025-12-09", "interval_end": "2025-12-10", "as_of": "x"}]}) == {
        "marts": date(2025, 12, 10)}


def test_the_interval_round_trips_through_xcom():
    interval = RunInterval(date(2025, 12, 9), date(2025, 12, 11), "backfill run dated x")
    assert RunInterval.from_xcom(interval.to_xcom()) == interval
    assert interval.asset_extra() == {"interval_start": "2025-12-09", "interval_end": "2025-12-11"}
    with pytest.raises(IntervalError):
        RunInterval(date(2025, 12, 9), date(2025, 12, 9), "empty")


def test_sole_writer_keeps_a_second_writer_of_the_same_table_waiting(fresh_db):
    order: list[str] = []
    with warehouse.connect(fresh_db, autocommit=True) as first, warehouse.connect(fresh_db, autocommit=True) as second:
        with sole_writer(first, ["raw.stripe_discounts", "raw.stripe_invoices"]):
            def other() -> None:
                with sole_writer(second, ["raw.stripe_subscriptions", "raw.stripe_discounts"]):
                    order.append("second")

            thread = threading.Thread(target=other)
            thread.start()
            time.sleep(0.5)
            order.append("first")
        thread.join(10)
        # another table is free meanwhile
        with sole_writer(first, ["raw.events"]), sole_writer(second, ["raw.nps_responses"]):
            pass
    assert order == ["first", "second"]


def test_sole_writer_releases_its_locks_on_error(fresh_db):
    with warehouse.connect(fresh_db, autocommit=True) as first, warehouse.connect(fresh_db, autocommit=True) as second:
        with pytest.raises(RuntimeError), sole_writer(first, ["raw.events"]):
            raise RuntimeError("load failed")
        second.execute("set lock_timeout = '2s'")
        with sole_writer(second, ["raw.events"]):
            pass


def test_the_day_param_wins_over_everything_else():
    for ctx in (_ctx("manual", datetime(2026, 1, 1, tzinfo=UTC)),
                _asset_ctx("asset_triggered", {"raw.events": [_event("2025-12-09", "2025-12-10")]})):
        ctx["params"] = {"day": "2025-12-30"}
        got = run_interval(ctx)
        assert (got.start, got.end) == (date(2025, 12, 30), date(2025, 12, 31))
        assert "param day=2025-12-30" in got.basis


def test_checks_are_as_of_the_last_day_processed_unless_gate_as_of_says_otherwise():
    decided = RunInterval(date(2025, 12, 9), date(2025, 12, 11), "asset-triggered").to_xcom()
    ti = SimpleNamespace(xcom_pull=lambda task_ids: decided if task_ids == "run_interval" else None)
    assert checked_as_of({"ti": ti, "params": {"gate_as_of": None}}) == date(2025, 12, 10)
    assert checked_as_of({"ti": ti, "params": {"gate_as_of": "2025-06-30"}}) == date(2025, 6, 30)
    with pytest.raises(IntervalError, match="put interval_task\\(\\) first"):
        checked_as_of({"ti": SimpleNamespace(xcom_pull=lambda task_ids: None), "params": {}})
