"""build_features on the hand-made traffic: one row per account, sane values, deterministic."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from distillwatch import engine
from distillwatch.features import build_features
from distillwatch.features.build import load_accounts, load_exchanges
from tests.pipeline.conftest import build  # noqa: E402


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    return build(tmp_path_factory.mktemp("feat"))


def _features(paths):
    con = engine.connect()
    return build_features(con, load_exchanges(con, paths["exchanges"]), load_accounts(con, paths["accounts"]))


def test_one_row_per_account_and_values(paths) -> None:
    f = _features(paths)
    ex = pq.read_table(paths["exchanges"])
    assert f.accounts.num_rows == len(set(ex.column("account_id").to_pylist()))
    assert f.hours.shape == (f.accounts.num_rows, 24)
    t = f.accounts.to_pandas().set_index("account_id")
    labels = pq.read_table(paths["labels"]).to_pandas().set_index("account_id")
    attack = t.loc[labels.index[labels.is_attack]]
    ordinary = t.loc[labels.index[labels.group == "ordinary"]]
    # The fleet runs round the clock from datacenter addresses; ordinary people sleep at home.
    assert attack.quiet_share.min() > 0.15
    assert ordinary.quiet_share.median() < 0.05
    assert attack.datacenter_share.min() == 1.0
    assert ordinary.datacenter_share.median() == 0.0
    assert attack.age_at_first_use_hours.max() < 24
    assert f.population["exchanges"] == ex.num_rows
    assert (
        np.isclose(sum(f.population["capabilities"].values()), 1.0)
        or sum(f.population["capabilities"].values()) == 0
    )


def test_deterministic(paths) -> None:
    a, b = _features(paths), _features(paths)
    assert a.accounts.to_pandas().equals(b.accounts.to_pandas())  # NaN-aware comparison
