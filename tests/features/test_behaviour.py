"""Behaviour features: daily rhythm, and the reference streaks and model pivot on a hand-worked case."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from distillwatch import engine
from distillwatch.contract import EXCHANGES_SCHEMA
from distillwatch.features import behaviour
from tests.features import reference


def test_rhythm_flat_versus_diurnal() -> None:
    flat = np.full((1, 24), 10.0)
    diurnal = np.zeros((1, 24))
    diurnal[0, 8:22] = 10.0  # awake 08:00-22:00 UTC
    r = behaviour.rhythm(np.vstack([flat, diurnal]))
    assert r["hour_entropy"][0] == pytest.approx(1.0)
    assert r["quiet_share"][0] == pytest.approx(8 / 24)
    assert r["quiet_share"][1] == 0.0
    assert r["hour_entropy"][1] < 0.9


def test_rhythm_is_time_zone_independent() -> None:
    rng = np.random.default_rng(3)
    hist = rng.integers(0, 20, size=(1, 24)).astype(float)
    shifted = np.roll(hist, 7, axis=1)
    a, b = behaviour.rhythm(hist), behaviour.rhythm(shifted)
    assert a["quiet_share"][0] == pytest.approx(b["quiet_share"][0])
    assert a["hour_entropy"][0] == pytest.approx(b["hour_entropy"][0])
    assert (a["utc_offset"][0] - b["utc_offset"][0]) % 24 in (7, 17)  # rolled by 7 hours


def _table(rows: list[dict]) -> pa.Table:
    base = {f.name: None for f in EXCHANGES_SCHEMA}
    return pa.Table.from_pylist([{**base, **r} for r in rows], schema=EXCHANGES_SCHEMA)


def test_streak_busiest_day_and_pivot() -> None:
    t0 = datetime(2026, 5, 1, tzinfo=UTC)
    rows = []
    # a: active days 0,1,2 then 5; pivots to "m-new" (first seen on day 3) an hour after it appears.
    for d in (0, 1, 2, 5):
        rows.append(
            {
                "request_id": f"a{d}",
                "account_id": "a",
                "ts": t0 + timedelta(days=d),
                "ip": "1.1.1.1",
                "model": "m-new" if d == 5 else "m-old",
            }
        )
    rows.append(
        {
            "request_id": "a5b",
            "account_id": "a",
            "ts": t0 + timedelta(days=5, hours=1),
            "ip": "1.1.1.1",
            "model": "m-new",
        }
    )
    rows.append(
        {
            "request_id": "b3",
            "account_id": "b",
            "ts": t0 + timedelta(days=3),
            "ip": "2.2.2.2",
            "model": "m-new",
        }
    )
    con = engine.connect()
    ex = behaviour.with_time(con.create_table("ex", _table(rows), temp=True))
    daily = {r["account_id"]: r for r in reference.daily(ex).to_pyarrow().to_pylist()}
    assert daily["a"]["longest_streak"] == 3
    assert daily["a"]["max_per_day"] == 2
    pivot = {r["account_id"]: r for r in reference.model_pivot(ex).to_pyarrow().to_pylist()}
    assert pivot["a"]["pivot_share"] == pytest.approx(1.0)  # everything after the release went to m-new
    assert pivot["a"]["pivot_lag_hours"] == pytest.approx(48.0)  # first used on day 5, released day 3
    assert pivot["b"]["pivot_lag_hours"] == pytest.approx(0.0)
