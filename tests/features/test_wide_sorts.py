"""The per-account sorts over every exchange run on narrow or pre-filtered rows; the results must be
exactly those of the plain whole-row computations they replace."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import ibis
import numpy as np
import pyarrow as pa
import pytest

from distillwatch import engine
from distillwatch.contract import EXCHANGES_SCHEMA
from distillwatch.features import behaviour, content
from tests.features import reference


def _exchanges(con) -> ibis.Table:
    """Accounts from 1 to 5,000 exchanges (so every candidate level occurs), with tied timestamps."""
    rng = np.random.default_rng(11)
    t0 = datetime(2026, 4, 22, tzinfo=UTC)
    rows = []
    for a, n in enumerate([1, 2, 3, 40, 63, 64, 65, 200, 700, 1500, 5000]):
        secs = np.sort(rng.integers(0, 86_400 * 3, size=n))  # integer seconds: many ties
        for i, s in enumerate(secs):
            rows.append({"request_id": f"r{a}-{i}", "account_id": f"a{a:02d}", "ts": t0 + timedelta(seconds=int(s)),
                         "ip": "10.0.0.1", "n_tools": int(i % 3), "model": "m", "conversation_id": f"c{i % 7}"})  # fmt: skip
    base = {f.name: None for f in EXCHANGES_SCHEMA}
    table = pa.Table.from_pylist([{**base, **r} for r in rows], schema=EXCHANGES_SCHEMA)
    return behaviour.with_time(con.create_table("ex", table, temp=True))


def _plain_sample(ex: ibis.Table, per_account: int) -> ibis.Table:
    w = ibis.window(group_by="account_id", order_by=[ex.request_id.hexdigest("md5"), ex.request_id])
    ranked = ex.mutate(rank=ibis.row_number().over(w))
    keep = ("account_id", "request_id", "prompt", "system", "sec", "daynum", "n_tools")
    return ranked.filter(ranked["rank"] < per_account).select(*keep)


@pytest.mark.parametrize("per_account", [1, 2, 5, 64, 300])
@pytest.mark.parametrize("margin,floor", [(4, 32), (1, 0)])
@pytest.mark.parametrize("materialise", [False, True])
def test_candidate_sample_equals_the_plain_ranking(
    monkeypatch, per_account: int, margin: int, floor: int, materialise: bool
) -> None:
    # margin 1, floor 0: candidates expected just the rows needed, so many accounts run short and
    # take the fallback (every row); the answer must not change.
    monkeypatch.setattr(content, "CANDIDATE_MARGIN", margin)
    monkeypatch.setattr(content, "CANDIDATE_FLOOR", floor)
    con = engine.connect()
    ex = _exchanges(con)
    order = ["account_id", "request_id"]
    expected = _plain_sample(ex, per_account).order_by(order).to_pyarrow()
    got = content.sample_exchanges(ex, per_account, con if materialise else None).order_by(order).to_pyarrow()
    assert got.column_names == expected.column_names
    assert got.to_pylist() == expected.to_pylist()
    if per_account > 1:
        assert expected.num_rows > 0


def test_candidates_are_filtered_and_some_accounts_fall_back(monkeypatch) -> None:
    monkeypatch.setattr(content, "CANDIDATE_MARGIN", 1)
    monkeypatch.setattr(content, "CANDIDATE_FLOOR", 0)
    con = engine.connect()
    ex = _exchanges(con)
    pool = content.md5_candidates(ex.select("account_id", "request_id"), 63)
    counts = pool.group_by("account_id").aggregate(n=pool.count()).to_pyarrow()
    per = dict(zip(counts.column("account_id").to_pylist(), counts.column("n").to_pylist(), strict=True))
    assert per["a10"] < 5000  # the largest account is filtered
    assert per["a00"] == 1 and per["a05"] == 64  # small accounts keep every row
    assert sum(per.values()) < ex.count().to_pyarrow().as_py()


def test_inter_arrival_on_narrow_rows_equals_whole_row_gaps() -> None:
    con = engine.connect()
    ex = _exchanges(con)
    w = ibis.window(group_by="account_id", order_by=[ex.sec, ex.request_id])
    gapped = ex.mutate(gap=ex.sec - ex.sec.lag().over(w))
    plain = gapped.group_by("account_id").aggregate(gap_mean=gapped.gap.mean(), gap_std=gapped.gap.std())
    expected = plain.order_by("account_id").to_pyarrow()
    got = (
        reference.volume_and_rate(ex)
        .select("account_id", "gap_mean", "gap_std")
        .order_by("account_id")
        .to_pyarrow()
    )
    assert got.column("account_id").equals(expected.column("account_id"))
    for col in ("gap_mean", "gap_std"):
        a = np.asarray(got.column(col).to_pylist(), dtype=float)
        b = np.asarray(expected.column(col).to_pylist(), dtype=float)
        np.testing.assert_allclose(a, b, rtol=1e-12, equal_nan=True)


def test_md5_bound_compares_like_the_number() -> None:
    import hashlib

    for level in range(1, content.MAX_LEVEL + 1):
        bound = content.md5_bound(level)
        for i in range(300):
            h = hashlib.md5(f"{level}-{i}".encode()).hexdigest()
            # force some values near the bound: the first digits of the bound with a random tail
            near = (bound + h)[:32] if i % 3 == 0 else h
            assert (near < bound) == (int(near, 16) < 2 ** (128 - level)), (level, near)


def test_text_facts_in_slices_equal_all_at_once(monkeypatch, tmp_path) -> None:
    """Above ``TEXT_BATCH_ROWS`` distinct prompts the per-text facts are computed a slice at a time."""
    from distillwatch import enrich  # noqa: F401  (the slices matter only with the enrichment module)
    from distillwatch.features import FeatureOptions, build_features, enrichment
    from distillwatch.features.build import load_accounts, load_exchanges
    from tests.pipeline.conftest import build

    paths = build(tmp_path)

    def features():
        con = engine.connect()
        f = build_features(con, load_exchanges(con, paths["exchanges"]), load_accounts(con, paths["accounts"]),
                           FeatureOptions())  # fmt: skip
        order = ["account_id", "request_id"]
        return (
            f,
            f.facts.order_by(order).to_pyarrow(),
            f.prompt_bands.order_by(["account_id", "band"]).to_pyarrow(),
        )

    whole, whole_facts, whole_bands = features()
    monkeypatch.setattr(content, "TEXT_BATCH_ROWS", 7)
    monkeypatch.setattr(enrichment, "BAND_SLICE_ROWS", 5)
    sliced, sliced_facts, sliced_bands = features()
    assert whole_facts.num_rows > 7 and whole_bands.num_rows > 0
    assert sliced_facts.equals(whole_facts)
    assert sliced_bands.equals(whole_bands)
    assert sliced.accounts.to_pandas().equals(whole.accounts.to_pandas())
