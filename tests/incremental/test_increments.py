"""Slices, overlap refusal, duplicate skipping and `watch` picking each file once."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distillwatch import store as store_mod
from distillwatch.incremental import IncrementError, run_increment
from distillwatch.incremental.watch import watch
from tests.incremental.helpers import simulate_demo, split_days


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("small")
    data = simulate_demo(root / "demo", scale=0.05)
    return root, data


def _day(n: int) -> datetime:
    return datetime(2026, 5, n, tzinfo=UTC)


def test_slice_overlap_is_refused_unless_reprocess(small_demo, tmp_path) -> None:
    _root, data = small_demo
    ex, db = data / "exchanges.parquet", tmp_path / "s.duckdb"
    first = run_increment(ex, db, tmp_path / "a", since=_day(4), until=_day(6), detect=False)
    c = first.counts["exchanges"]
    assert c["outside_slice"] > 0 and c["accepted"] > 0
    assert c["read"] == c["accepted"] + c["quarantined"] + c["outside_slice"] + c["duplicates_skipped"]
    with pytest.raises(IncrementError, match="overlaps partition"):
        run_increment(ex, db, tmp_path / "b", since=_day(5), until=_day(7), detect=False)
    again = run_increment(ex, db, tmp_path / "c", since=_day(4), until=_day(6), reprocess=True, detect=False)
    assert again.counts["exchanges"]["accepted"] == c["accepted"]  # replaced, not skipped as duplicates
    with store_mod.open_store(db, read_only=True) as store:
        parts = store.execute("SELECT count(*) FROM inc_partitions").fetchone()[0]
        stored = store.execute("SELECT count(*) FROM inc_request_ids").fetchone()[0]
        exchanges = store.execute("SELECT sum(n) FROM inc_account_part").fetchone()[0]
    assert parts == 1 and stored == exchanges == c["accepted"]


def test_rows_already_stored_are_skipped_as_duplicates(small_demo, tmp_path) -> None:
    _root, data = small_demo
    days = split_days(data / "exchanges.parquet", tmp_path / "days")
    db = tmp_path / "s.duckdb"
    run_increment(days[0], db, tmp_path / "a", detect=False)
    # a re-export of day 1 plus day 2: day 1's rows are skipped, visibly
    both = tmp_path / "both.parquet"
    pq.write_table(pa.concat_tables([pq.read_table(days[0]), pq.read_table(days[1])]), both)
    res = run_increment(both, db, tmp_path / "b", detect=False)
    c = res.counts["exchanges"]
    assert c["duplicates_skipped"] == pq.read_metadata(days[0]).num_rows
    assert c["accepted"] == pq.read_metadata(days[1]).num_rows
    assert c["read"] == c["accepted"] + c["quarantined"] + c["outside_slice"] + c["duplicates_skipped"]


def test_bad_slice_bounds_are_refused(small_demo, tmp_path) -> None:
    _root, data = small_demo
    with pytest.raises(IncrementError, match="must be before"):
        run_increment(
            data / "exchanges.parquet", tmp_path / "s.duckdb", tmp_path / "o", since=_day(6), until=_day(5)
        )


@pytest.mark.slow
def test_watch_processes_each_file_once(small_demo, tmp_path) -> None:
    _root, data = small_demo
    days = split_days(data / "exchanges.parquet", tmp_path / "all")
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    db, out = tmp_path / "s.duckdb", tmp_path / "results"
    for d in days[:2]:
        (incoming / d.name).write_bytes(d.read_bytes())
    (incoming / "notes.txt").write_text("not an input")
    first = watch(
        incoming,
        db,
        out,
        accounts=data / "accounts.parquet",
        once=True,
        settle_seconds=0,
        track=False,
        report=False,
    )
    assert [r.out.name for r in first] == [days[0].stem, days[1].stem]
    assert watch(incoming, db, out, once=True, settle_seconds=0) == []  # nothing new
    # the same content under another name is not new; a new day is
    (incoming / ("copy-" + days[0].name)).write_bytes(days[0].read_bytes())
    (incoming / days[2].name).write_bytes(days[2].read_bytes())
    third = watch(
        incoming,
        db,
        out,
        accounts=data / "accounts.parquet",
        once=True,
        settle_seconds=0,
        track=False,
        report=False,
    )
    assert [r.out.name for r in third] == [days[2].stem]
    assert (third[0].out / "accounts.parquet").exists() and (third[0].out / "campaigns.json").exists()
    with store_mod.open_store(db, read_only=True) as store:
        assert store.execute("SELECT count(*) FROM inc_partitions").fetchone()[0] == 3
        total = store.execute("SELECT sum(n) FROM inc_account_part").fetchone()[0]
    assert total == sum(pq.read_metadata(d).num_rows for d in days[:3])


def test_an_empty_first_slice_stores_nothing_and_scores_nobody(small_demo, tmp_path) -> None:
    _root, data = small_demo
    res = run_increment(
        data / "exchanges.parquet", tmp_path / "s.duckdb", tmp_path / "o", since=_day(1), until=_day(2)
    )
    c = res.counts["exchanges"]
    assert c["accepted"] == 0 and c["outside_slice"] == c["read"] - c["quarantined"]
    assert res.run_id is None and res.verdicts == {}


def test_a_failed_increment_leaves_the_state_as_it_was(small_demo, tmp_path, monkeypatch) -> None:
    _root, data = small_demo
    days = split_days(data / "exchanges.parquet", tmp_path / "days")
    db = tmp_path / "s.duckdb"
    run_increment(days[0], db, tmp_path / "a", detect=False)

    def before_state() -> tuple:
        with store_mod.open_store(db, read_only=True) as store:
            return tuple(
                store.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # noqa: S608 - constant names
                for t in (
                    "inc_partitions",
                    "inc_request_ids",
                    "inc_account_part",
                    "inc_account_value",
                    "inc_sample",
                )
            )

    state = before_state()

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("distillwatch.incremental.partials.sample_candidates", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        run_increment(days[1], db, tmp_path / "b", detect=False)
    assert before_state() == state
    assert sorted(p.name for p in (tmp_path / "s.duckdb.parts").glob("part-*.parquet")) == [
        "part-000001.parquet"
    ]


def test_window_days_keeps_only_recent_partitions(small_demo, tmp_path) -> None:
    import ibis

    from distillwatch.features.enrichment import Lists
    from distillwatch.incremental.run import load_features

    _root, data = small_demo
    days = split_days(data / "exchanges.parquet", tmp_path / "days")[:3]
    db = tmp_path / "s.duckdb"
    for d in days:
        run_increment(d, db, tmp_path / d.stem, detect=False)
    last = pq.read_table(days[-1], columns=["account_id", "ts"])
    as_of = last.column("ts").to_pylist()[-1]
    with store_mod.open_store(db) as store:
        feats, _state, report = load_features(store, ibis.duckdb.from_connection(store), Lists(), as_of, 0.5)
    assert len(report.partitions) == 1
    assert set(feats.accounts.column("account_id").to_pylist()) == set(last.column("account_id").to_pylist())
    assert sum(feats.accounts.column("exchanges").to_pylist()) == last.num_rows


def test_an_increment_bounds_duckdb_and_releases_it_before_the_graph(small_demo, tmp_path, monkeypatch) -> None:
    from distillwatch import engine

    released: list[tuple[bool, str]] = []
    release = engine.release_memory

    def recording_release(con) -> bool:
        done = release(con)
        released.append((done, con.con.execute("SELECT current_setting('memory_limit')").fetchone()[0]))
        return done

    monkeypatch.setenv("DISTILLWATCH_DUCKDB_MEMORY", "1GB")
    monkeypatch.setattr(engine, "release_memory", recording_release)
    days = split_days(small_demo[1] / "exchanges.parquet", tmp_path / "days")
    run_increment(days[0], tmp_path / "s.duckdb", tmp_path / "a")
    # The store connection carries the scan's bound (not DuckDB's 80% of RAM), and the link stage could
    # hand its buffer pool back with that bound restored afterwards.
    assert released and all(done for done, _ in released)
    assert {limit for _, limit in released} == {"953.6 MiB"}
