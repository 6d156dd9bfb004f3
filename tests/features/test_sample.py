"""The content sample ranked over the narrow exchanges, with text read back, equals the sample taken
from every column (the batch scan never copies free text into the materialised exchanges)."""

from __future__ import annotations

import pytest

from distillwatch import engine
from distillwatch.features import behaviour, content
from distillwatch.features.build import TEXT_COLUMNS, load_exchanges
from tests.pipeline.conftest import build


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    return build(tmp_path_factory.mktemp("sample"))


@pytest.mark.parametrize("per_account", [1, 5, 64])
def test_narrow_sample_with_texts_equals_full_sample(paths, per_account: int) -> None:
    con = engine.connect()
    source = behaviour.with_time(load_exchanges(con, paths["exchanges"]))
    full = content.sample_exchanges(source, per_account)
    narrow = source.drop(*[c for c in TEXT_COLUMNS if c in source.columns])
    assert "prompt" not in content.sample_exchanges(narrow, per_account).columns
    joined = content.with_texts(content.sample_exchanges(narrow, per_account), source)
    order = ["account_id", "request_id"]
    expected = full.order_by(order).to_pyarrow()
    got = joined.order_by(order).to_pyarrow()
    assert got.column_names == expected.column_names
    assert got.num_rows == expected.num_rows > 0
    assert got.equals(expected)


def test_rows_are_the_exchanges_without_text(paths) -> None:
    from distillwatch.features import build_features
    from distillwatch.features.build import load_accounts

    con = engine.connect()
    f = build_features(con, load_exchanges(con, paths["exchanges"]), load_accounts(con, paths["accounts"]))
    assert not set(TEXT_COLUMNS) & set(f.rows.columns)
    assert "prompt" in f.ex.columns
    assert set(f.rows.columns) == set(f.ex.columns) - set(TEXT_COLUMNS)
    order = ["account_id", "request_id"]
    assert (
        f.rows.order_by(order).to_pyarrow().equals(f.ex.select(*f.rows.columns).order_by(order).to_pyarrow())
    )


def test_features_read_through_a_view_equal_the_materialised_ones(paths) -> None:
    """On DuckDB the exchanges are not copied by default; every feature must come out as from a copy."""
    from distillwatch.features import FeatureOptions, build_features
    from distillwatch.features.build import load_accounts

    def features(copy: bool | None):
        con = engine.connect()
        return build_features(
            con,
            load_exchanges(con, paths["exchanges"]),
            load_accounts(con, paths["accounts"]),
            FeatureOptions(copy_exchanges=copy),
        )

    copied, viewed = features(True), features(None)
    assert copied.accounts.num_rows > 0
    assert viewed.accounts.schema == copied.accounts.schema
    assert viewed.accounts.to_pandas().equals(copied.accounts.to_pandas())  # NaN where NaN
    assert (viewed.hours == copied.hours).all()
    assert viewed.population == copied.population
