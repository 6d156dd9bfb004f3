"""The few-pass per-account parts (``features.passes``) equal the plain definitions of
``tests/features/reference.py``, value for value (floats exactly), on hand-made edge cases and on
the pipeline's traffic set."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import ibis
import numpy as np
import pyarrow as pa
import pytest

from distillwatch import engine
from distillwatch.contract import EXCHANGES_SCHEMA
from distillwatch.features import behaviour, passes
from distillwatch.features.build import address_facts, load_exchanges, population_from
from distillwatch.features.enrichment import Lists
from tests.features import reference
from tests.pipeline.conftest import build

PLAIN = (reference.volume_and_rate, reference.daily, reference.model_pivot, reference.infrastructure)


def _edge_cases(con) -> ibis.Table:
    """Nulls in every nullable grouped column, a model released mid-log, ties for the most frequent value,
    accounts that never use the new model and one whose every exchange has no model."""
    rng = np.random.default_rng(5)
    t0 = datetime(2026, 5, 1, tzinfo=UTC)
    rows = []
    for a in range(12):
        for i in range(int(rng.integers(1, 40))):
            day = int(rng.integers(0, 6))
            rows.append({
                "request_id": f"r{a}-{i}", "account_id": f"acct{a}",
                "ts": t0 + timedelta(days=day, seconds=int(rng.integers(0, 86_400))),
                "ip": ["10.0.0.1", "10.0.0.2", "192.0.2.7", "2001:db8::1"][int(rng.integers(0, 4))],
                "asn": [None, 64500, 64501][int(rng.integers(0, 3))],
                "country": [None, "DE", "FR"][int(rng.integers(0, 3))],
                "user_agent": [None, "curl/8", "python-httpx/0.27"][int(rng.integers(0, 3))],
                "org_id": [None, "org-a", "org-b"][int(rng.integers(0, 3))],
                "model": None if a == 11 else ("m-new" if day >= 3 and rng.random() < 0.6 else "m-old"),
                "conversation_id": [None, f"c{a}-{i % 4}"][int(rng.integers(0, 2))],
                "n_tools": [None, 0, 2][int(rng.integers(0, 3))],
                "input_tokens": int(rng.integers(1, 500)), "output_tokens": int(rng.integers(1, 900)),
            })  # fmt: skip
    base = {f.name: None for f in EXCHANGES_SCHEMA}
    return con.create_table(
        "ex_edge", pa.Table.from_pylist([{**base, **r} for r in rows], schema=EXCHANGES_SCHEMA), temp=True
    )


def _assert_same(got: pa.Table, expected: pa.Table) -> None:
    assert got.schema.names == expected.schema.names
    for name in expected.column_names:
        a, b = got.column(name), expected.column(name)
        assert a.type == b.type, name
        assert a.to_pylist() == b.to_pylist() or _same_with_nan(a, b), name


def _same_with_nan(a: pa.ChunkedArray, b: pa.ChunkedArray) -> bool:
    if not pa.types.is_floating(a.type):
        return False
    x, y = a.to_numpy(zero_copy_only=False), b.to_numpy(zero_copy_only=False)
    return bool(np.array_equal(x, y, equal_nan=True))


@pytest.fixture(scope="module")
def traffic(tmp_path_factory):
    return build(tmp_path_factory.mktemp("passes"))["exchanges"]


@pytest.mark.parametrize("source", ["edge_cases", "traffic"])
def test_parts_equal_the_plain_definitions(source: str, traffic) -> None:
    con = engine.connect()
    raw = _edge_cases(con) if source == "edge_cases" else load_exchanges(con, traffic)
    ip_facts = address_facts(con, raw, Lists())
    timed = behaviour.with_time(raw)
    joined = timed.left_join(ip_facts, "ip")
    grouped = passes.account_parts(con, timed, ip_facts)
    for plain, part in zip(PLAIN, grouped.parts, strict=True):
        expected = plain(joined).order_by("account_id").to_pyarrow()
        got = part.order_by("account_id").to_pyarrow()
        assert got.num_rows == expected.num_rows > 0
        _assert_same(got, expected)
    expected_hours = reference.hour_counts(joined).order_by(["account_id", "hour"])
    assert (
        grouped.hour_counts.order_by(["account_id", "hour"]).to_pyarrow().to_pylist()
        == expected_hours.to_pyarrow().to_pylist()
    )

    facts = con.create_table(
        "facts", pa.table({"capability": ["chat", None, "writing"], "cot": [True, None, False]}), temp=True
    )
    assert population_from(
        grouped.totals, grouped.daily, grouped.models, facts
    ) == reference.population_profile(joined, facts)


def test_edge_cases_exercise_the_pivot_and_the_ties() -> None:
    """The edge-case data does reach the branches the equality test is meant to cover."""
    con = engine.connect()
    raw = _edge_cases(con)
    ip_facts = address_facts(con, raw, Lists())
    pivot = passes.account_parts(con, behaviour.with_time(raw), ip_facts).parts[2].to_pyarrow().to_pylist()
    shares = {r["account_id"]: r["pivot_share"] for r in pivot}
    assert shares["acct11"] == 0.0  # no model at all
    assert any(0.0 < s < 1.0 for s in shares.values())
    assert any(r["pivot_lag_hours"] is None for r in pivot) and any(
        r["pivot_lag_hours"] is not None for r in pivot
    )


def test_hour_histograms_name_every_account_or_fail() -> None:
    con = engine.connect()
    counts = con.create_table(
        "hc", pa.table({"account_id": ["b", "a", "b"], "hour": [3, 5, 23], "n": [2, 1, 4]}), temp=True
    )
    hist = behaviour.hour_histograms_from_counts(counts, pa.array(["a", "b", "c"]))
    assert hist.shape == (3, 24)
    assert hist[0, 5] == 1 and hist[1, 3] == 2 and hist[1, 23] == 4 and hist[2].sum() == 0
    with pytest.raises(KeyError, match="missing"):
        behaviour.hour_histograms_from_counts(counts, pa.array(["a"]))
