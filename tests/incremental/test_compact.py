"""Compaction folds old partitions into one without changing the merged features."""

from __future__ import annotations

from datetime import timedelta

import ibis
import numpy as np
import pyarrow.parquet as pq
import pytest

from distillwatch import store as store_mod
from distillwatch.features.enrichment import Lists
from distillwatch.incremental import IncrementError, run_increment
from distillwatch.incremental.compact import compact
from distillwatch.incremental.run import load_features
from tests.incremental.helpers import simulate_demo, split_days, table_differences


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory):
    return simulate_demo(tmp_path_factory.mktemp("compact") / "demo", scale=0.05)


def _features(db):
    with store_mod.open_store(db) as store:
        feats, _state, _report = load_features(store, ibis.duckdb.from_connection(store), Lists(), None, None)
        return feats.accounts, feats.hours, feats.population


def test_compaction_keeps_features_and_shrinks_the_state(small_demo, tmp_path) -> None:
    days = split_days(small_demo / "exchanges.parquet", tmp_path / "days")[:7]
    plain, folded = tmp_path / "plain.duckdb", tmp_path / "folded.duckdb"
    for d in days:
        run_increment(d, plain, tmp_path / "p" / d.stem, accounts=small_demo / "accounts.parquet", detect=False)
    for d in days[:6]:
        run_increment(d, folded, tmp_path / "f" / d.stem, accounts=small_demo / "accounts.parquet", detect=False)
    before = _features(folded)
    day5_start = pq.read_table(days[4], columns=["ts"]).column("ts").to_pylist()[0]
    with store_mod.open_store(folded) as store:
        res = compact(store, day5_start)
    assert res.partitions == [1, 2, 3, 4] and res.compacted_into is not None
    assert res.rows_after["inc_account_part"] < res.rows_before["inc_account_part"]
    assert res.rows_after["inc_account_value"] < res.rows_before["inc_account_value"]
    after = _features(folded)
    assert table_differences(before[0], after[0]) == []
    assert np.array_equal(before[1], after[1]) and before[2] == after[2]
    # a later day merges on top of the compacted partition exactly as on the uncompacted store
    run_increment(days[6], folded, tmp_path / "f" / days[6].stem, accounts=small_demo / "accounts.parquet", detect=False)
    a, b = _features(plain), _features(folded)
    assert table_differences(a[0], b[0]) == []
    assert np.array_equal(a[1], b[1]) and a[2] == b[2]
    # a folded partition's slice cannot be reprocessed on its own
    with pytest.raises(IncrementError, match="compacted"):
        run_increment(small_demo / "exchanges.parquet", folded, tmp_path / "re", since=day5_start - timedelta(days=2),
                      until=day5_start - timedelta(days=1), reprocess=True, detect=False)  # fmt: skip
