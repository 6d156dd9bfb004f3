"""``ingest()``: read, validate and stage the input tables; account for every record.

Output layout under ``work_dir``::

    work_dir/ingest/exchanges.parquet   accepted exchanges, exactly contract.EXCHANGES_SCHEMA
    work_dir/ingest/accounts.parquet    accepted accounts, contract.ACCOUNTS_SCHEMA (if given)
    work_dir/quarantine.parquet         every record set aside, with its reason

The staged tables live in a sub-folder because ``scan`` writes its own
``accounts.parquet`` (scores) at the top of its results directory.
"""

from __future__ import annotations

import queue
import shutil
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from distillwatch.ingest import runs
from distillwatch.ingest.options import IngestOptions
from distillwatch.ingest.readers import RawBatch, Reject, iter_source, raw_json
from distillwatch.ingest.sources import Source, resolve, sniff_adapter
from distillwatch.ingest.spec import ACCOUNTS, EXCHANGES, TableSpec
from distillwatch.ingest.validate import Validator

QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("table", pa.string(), nullable=False),  # exchanges | accounts
        pa.field("source", pa.string(), nullable=False),
        pa.field("row", pa.int64(), nullable=False),
        pa.field("field", pa.string()),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("detail", pa.string(), nullable=False),
        pa.field("raw", pa.string(), nullable=False),
    ]
)
# Where staged rows came from: staged positions start .. start+length-1 are rows
# first_row .. of source number src.
ROWMAP_SCHEMA = pa.schema(
    [("src", pa.int32()), ("start", pa.int64()), ("first_row", pa.int64()), ("length", pa.int64())]
)
# zstd at level 1 compresses text about as fast as snappy and to about half the size,
# which later stages then read faster.
STAGED_PARQUET: dict[str, Any] = {"compression": "zstd", "compression_level": 1}
STAGED_ROW_GROUP_ROWS = 262_144
STAGED_ROW_GROUP_BYTES = 64 << 20  # ...or fewer rows when they carry long texts: bounds memory
DEDUP_MEMORY = "4GB"  # when keys repeat, DuckDB groups them within this and spills beyond


@dataclass
class IngestResult:
    run_id: str
    exchanges_path: Path
    accounts_path: Path | None
    quarantine_path: Path
    counts: dict[str, Any]
    started_at: datetime
    finished_at: datetime
    sources: list[dict[str, Any]] = field(default_factory=list)

    @property
    def quarantined(self) -> int:
        return sum(t["quarantined"] for t in self.counts.values())


class QuarantineWriter:
    """Buffers quarantine rows and writes them to one Parquet file (always created)."""

    def __init__(self, path: Path, flush_rows: int = 10_000) -> None:
        self.path = path
        self._writer = pq.ParquetWriter(path, QUARANTINE_SCHEMA)
        self._rows: list[tuple] = []
        self._flush_rows = flush_rows

    def add(self, table: str, source: str, reject: Reject) -> None:
        self._rows.append((table, source, reject.row, reject.field, reject.reason, reject.detail, reject.raw))
        if len(self._rows) >= self._flush_rows:
            self.flush()

    def flush(self) -> None:
        if not self._rows:
            return
        columns = list(zip(*self._rows, strict=True))
        self._writer.write_table(
            pa.table(
                [pa.array(c, f.type) for c, f in zip(columns, QUARANTINE_SCHEMA, strict=True)],
                schema=QUARANTINE_SCHEMA,
            )
        )
        self._rows = []

    def close(self) -> None:
        self.flush()
        self._writer.close()


@dataclass
class _TableCounts:
    read: int = 0
    accepted: int = 0
    quarantined: int = 0
    by_reason: Counter[str] = field(default_factory=Counter)
    truncated: Counter[str] = field(default_factory=Counter)
    nul_stripped: Counter[str] = field(default_factory=Counter)
    ignored_spans: int = 0

    def reject(self, reason: str, n: int = 1) -> None:
        self.quarantined += n
        self.by_reason[reason] += n

    def as_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "accepted": self.accepted,
            "quarantined": self.quarantined,
            "by_reason": dict(sorted(self.by_reason.items())),
            "truncated": dict(sorted(self.truncated.items())),
            "nul_stripped": dict(sorted(self.nul_stripped.items())),
            "ignored_spans": self.ignored_spans,
        }


def _run_id(now: datetime) -> str:
    return f"run-{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def ingest(
    exchanges: str | Path,
    accounts: str | Path | None = None,
    work_dir: str | Path = Path("out"),
    con: duckdb.DuckDBPyConnection | None = None,
    options: IngestOptions | None = None,
    progress: bool = False,
    command: str = "ingest",
) -> IngestResult:
    """Read ``exchanges`` (and ``accounts``), stage the accepted rows, quarantine the rest.

    Raises :class:`~distillwatch.ingest.errors.UnreadableInputError` when a whole
    file cannot be read; nothing is recorded as accepted in that case.
    """
    options = options or IngestOptions()
    work = Path(work_dir)
    stage = work / "ingest"
    stage.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    run_id = _run_id(started)
    # Resolve (and sniff) every input first, so a bad file fails before any output.
    own = [stage.resolve(), (work / "quarantine.parquet").resolve()]
    ex_sources = resolve(exchanges, exclude=own)
    acc_sources = resolve(accounts, exclude=own) if accounts is not None else []
    inputs = {"exchanges": [s.name for s in ex_sources], "accounts": [s.name for s in acc_sources]}
    if con is not None:
        runs.record_start(con, run_id, command, started, inputs, options.model_dump(mode="json"))
    try:
        result = _run(run_id, started, ex_sources, acc_sources, work, stage, options, progress)
    except BaseException as e:
        if con is not None:
            runs.record_failure(con, run_id, datetime.now(UTC), f"{e.__class__.__name__}: {e}")
        raise
    if con is not None:
        outputs = {
            "exchanges": str(result.exchanges_path),
            "accounts": str(result.accounts_path) if result.accounts_path else None,
            "quarantine": str(result.quarantine_path),
        }
        runs.record_finish(con, run_id, result.finished_at, result.counts, outputs, result.sources)
    return result


def _progress_bar(enabled: bool, total: int) -> Any:
    if not enabled:
        return nullcontext(None)
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(
        TextColumn("[bold]ingest[/] {task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        transient=True,
    )
    return progress


def _run(
    run_id: str,
    started: datetime,
    ex_sources: list[Source],
    acc_sources: list[Source],
    work: Path,
    stage: Path,
    options: IngestOptions,
    progress: bool,
) -> IngestResult:
    quarantine_path = work / "quarantine.parquet"
    qw = QuarantineWriter(quarantine_path)
    total = sum(s.path.stat().st_size for s in ex_sources + acc_sources)
    sources: list[dict[str, Any]] = []
    counts: dict[str, Any] = {}
    bar = _progress_bar(progress, total)
    try:
        with bar as p:
            task = p.add_task("", total=total) if p is not None else None

            def advance(nbytes: int, label: str) -> None:
                if p is not None:
                    p.update(task, advance=nbytes, description=label)

            ex_path = stage / "exchanges.parquet"
            counts["exchanges"] = _ingest_table(
                EXCHANGES, ex_sources, ex_path, stage, qw, options, sources, advance
            )
            acc_path = None
            if acc_sources:
                acc_path = stage / "accounts.parquet"
                counts["accounts"] = _ingest_table(
                    ACCOUNTS, acc_sources, acc_path, stage, qw, options, sources, advance
                )
    finally:
        qw.close()
    return IngestResult(
        run_id, ex_path, acc_path, quarantine_path, counts, started, datetime.now(UTC), sources
    )


class _StagedWriter:
    """Writes accepted batches to Parquet on a background thread.

    Parquet encoding and compression release the GIL, so writing one row group
    overlaps with reading and validating the next batch (the two halves of the
    work on a two-core machine).  Batches are gathered into row groups of about
    ``STAGED_ROW_GROUP_ROWS`` rows or ``STAGED_ROW_GROUP_BYTES``, whichever comes
    first: readers downstream scan fewer, larger groups, and at most three groups
    (gathering, queued, being written) are held in memory.
    """

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path = path
        self._schema = schema
        self._queue: queue.Queue[pa.Table | None] = queue.Queue(maxsize=1)
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._pending_bytes = 0
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="ingest-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with pq.ParquetWriter(self.path, self._schema, **STAGED_PARQUET) as writer:
                while (table := self._queue.get()) is not None:
                    # Dictionary-encoded free text is expanded here, off the validating thread.
                    writer.write_table(table.cast(self._schema), row_group_size=max(table.num_rows, 1))
        except BaseException as e:  # handed to the producer at its next write or close
            self._error = e
            while self._queue.get() is not None:  # unblock the producer until it closes
                pass

    def write(self, table: pa.Table) -> None:
        """Queue ``table``: the schema's columns, in order; text may be dictionary-encoded."""
        if self._error is not None:
            raise self._error
        if self._pending and table.schema != self._pending[0].schema:
            self._flush()  # a row group is one concatenation: one set of column types
        self._pending.append(table)
        self._pending_rows += table.num_rows
        self._pending_bytes += _expanded_bytes(table)
        if self._pending_rows >= STAGED_ROW_GROUP_ROWS or self._pending_bytes >= STAGED_ROW_GROUP_BYTES:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._queue.put(pa.concat_tables(self._pending))
            self._pending, self._pending_rows, self._pending_bytes = [], 0, 0

    def close(self) -> None:
        try:
            if self._error is None:
                self._flush()
        finally:
            self._queue.put(None)
            self._thread.join()
        if self._error is not None:
            raise self._error


def _expanded_bytes(table: pa.Table) -> int:
    """Bytes ``table`` takes once its dictionary columns are expanded (estimated from
    the dictionaries' mean value size), so row groups are bounded by what is written."""
    total = 0
    for col in table.columns:
        if pa.types.is_dictionary(col.type):
            for chunk in col.chunks:
                words = chunk.dictionary
                total += chunk.indices.nbytes + len(chunk) * words.nbytes // max(len(words), 1)
        else:
            total += col.nbytes
    return total


_DONE = object()


def _prefetch(batches: Iterator[RawBatch]) -> Iterator[RawBatch]:
    """Read the next batch on a background thread while this one is validated.

    Parquet decoding and JSON parsing release the GIL, so on two cores reading and
    validating overlap.  One batch is read ahead (memory: one more batch).  An
    error in the reader is raised here, in the caller's thread.
    """
    ahead: queue.Queue[Any] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def produce() -> None:
        try:
            for batch in batches:
                while not stop.is_set():
                    try:
                        ahead.put(batch, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            item: Any = _DONE
        except BaseException as e:  # handed to the consumer
            item = e
        while not stop.is_set():
            try:
                ahead.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    thread = threading.Thread(target=produce, name="ingest-reader", daemon=True)
    thread.start()
    try:
        while (item := ahead.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def _segments(index: int, staged_start: int, rows: pa.Array) -> pa.Table:
    """Runs of consecutive source rows in one accepted batch, as rowmap segments.

    A batch with no rejects is one segment, so the map stays tiny; each quarantined
    row splits a run at most once.
    """
    numbers = rows.to_numpy(zero_copy_only=False)
    starts = np.concatenate(([0], np.flatnonzero(np.diff(numbers) != 1) + 1))
    lengths = np.diff(np.append(starts, len(numbers)))
    return pa.table(
        {
            "src": pa.array(np.full(len(starts), index, dtype=np.int32)),
            "start": pa.array(staged_start + starts),
            "first_row": pa.array(numbers[starts]),
            "length": pa.array(lengths),
        },
        schema=ROWMAP_SCHEMA,
    )


def _ingest_table(
    spec: TableSpec,
    sources: list[Source],
    out_path: Path,
    stage: Path,
    qw: QuarantineWriter,
    options: IngestOptions,
    source_log: list[dict[str, Any]],
    advance: Callable[[int, str], None],
) -> dict[str, Any]:
    counts = _TableCounts()
    tmp_path = out_path.with_suffix(".partial.parquet")
    rowmap_path = stage / f".{spec.name}.rows.parquet"
    validator = Validator(spec, options)
    rowmap = pq.ParquetWriter(rowmap_path, ROWMAP_SCHEMA)
    # A lone Parquet file already in the contract's exact schema is staged by copying
    # it, unless some batch has to change (a reject, a truncation, a non-canonical
    # address...): then the rows passed so far are written out and writing goes on.
    pristine = len(sources) == 1 and _contract_parquet(sources[0], spec, options)
    writer: _StagedWriter | None = None if pristine else _StagedWriter(tmp_path, spec.schema)
    hashes: list[np.ndarray] = []  # 8 bytes per accepted row, to look for duplicate keys
    try:
        for index, source in enumerate(sources):
            adapter = options.adapter if options.adapter != "auto" else sniff_adapter(source)
            read_before = counts.read
            for batch in _prefetch(iter_source(source, spec, options, adapter)):
                counts.read += batch.read
                counts.ignored_spans += batch.ignored
                for r in batch.rejects:
                    qw.add(spec.name, source.name, r)
                    counts.reject(r.reason)
                if batch.table is not None and batch.table.num_rows:
                    v = validator.validate(batch.table)
                    for r in v.rejects:
                        qw.add(spec.name, source.name, r)
                        counts.reject(r.reason)
                    counts.truncated.update(v.truncated)
                    counts.nul_stripped.update(v.nul_stripped)
                    if pristine and not (v.unchanged and not batch.rejects):
                        pristine = False
                        writer = _StagedWriter(tmp_path, spec.schema)
                        _replay_prefix(source, spec, options, counts.accepted, writer)
                    if v.columns.num_rows:
                        rowmap.write_table(_segments(index, counts.accepted, v.rows))
                        hashes.append(validator.key_hashes(v.columns[spec.key]))
                        counts.accepted += v.columns.num_rows
                        if writer is not None:
                            writer.write(v.columns)
                advance(batch.bytes_done, f"{spec.name}: {source.path.name}")
            source_log.append(
                {
                    "table": spec.name,
                    "source": source.name,
                    "format": source.format,
                    "adapter": adapter,
                    "bytes": source.path.stat().st_size,
                    "rows_read": counts.read - read_before,
                }
            )
    finally:
        try:
            if writer is not None:
                writer.close()
        finally:
            rowmap.close()
            validator.close()
    staged = sources[0].path if pristine else tmp_path
    duplicates = 0
    if _repeated_hash(hashes):
        duplicates = _drop_duplicates(spec, staged, rowmap_path, out_path, stage, sources, qw, options)
    if duplicates:
        counts.accepted -= duplicates
        counts.reject(spec.duplicate_reason, duplicates)
    if duplicates:  # the rows kept are in out_path already
        if not pristine:
            staged.unlink()
    elif pristine:
        shutil.copyfile(staged, out_path)  # every record checked; not one value differs
    else:
        staged.replace(out_path)
    rowmap_path.unlink(missing_ok=True)
    if (
        counts.read != counts.accepted + counts.quarantined
        or sum(counts.by_reason.values()) != counts.quarantined
    ):
        raise RuntimeError(
            f"ingest accounting does not add up for {spec.name}: {counts.as_dict()}"
        )  # a bug, never input
    return counts.as_dict()


def _repeated_hash(hashes: list[np.ndarray]) -> bool:
    """Whether any hash occurs twice.  Equal keys have equal hashes, so False proves there
    is no duplicate key; True (a duplicate, or rarely two keys whose hashes collide)
    sends the keys themselves to be compared."""
    if not hashes:
        return False
    ordered = np.sort(np.concatenate(hashes))
    hashes.clear()
    return bool(np.any(ordered[1:] == ordered[:-1]))


def _contract_parquet(source: Source, spec: TableSpec, options: IngestOptions) -> bool:
    """Whether ``source`` is Parquet holding exactly the contract's columns, types and order."""
    if source.format != "parquet" or options.adapter not in ("auto", "contract"):
        return False
    try:
        return pq.read_schema(source.path).equals(spec.schema, check_metadata=False)
    except (pa.ArrowException, OSError):
        return False  # the reader names the problem


def _replay_prefix(
    source: Source, spec: TableSpec, options: IngestOptions, rows: int, writer: _StagedWriter
) -> None:
    """Write the first ``rows`` rows of a pristine source: they passed unchanged."""
    if rows == 0:
        return
    done = 0
    pf = pq.ParquetFile(source.path, pre_buffer=False)
    for batch in pf.iter_batches(batch_size=options.batch_rows, columns=spec.names, use_threads=True):
        take = min(batch.num_rows, rows - done)
        writer.write(pa.Table.from_batches([batch.slice(0, take)]).cast(spec.schema))
        done += take
        if done >= rows:
            return


def _drop_duplicates(
    spec: TableSpec,
    staged: Path,
    rowmap_path: Path,
    out_path: Path,
    stage: Path,
    sources: list[Source],
    qw: QuarantineWriter,
    options: IngestOptions,
) -> int:
    """Keep the first record of each key (file order); quarantine the rest.  Returns how many.

    ``staged`` is left in place; with duplicates, the rows kept are written to ``out_path``.
    """
    key = f'"{spec.key}"'  # identifier from the contract, not from input
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET temp_directory = ?", [str(stage / ".duckdb_tmp")])
        con.execute(f"SET memory_limit = '{DEDUP_MEMORY}'")
        con.execute(
            f"CREATE TEMP TABLE dup_keys AS SELECT {key} AS k, min(file_row_number) AS first_pos "  # noqa: S608
            f"FROM read_parquet(?, file_row_number = true) GROUP BY 1 HAVING count(*) > 1",
            [str(staged)],
        )
        if con.execute("SELECT count(*) FROM dup_keys").fetchone()[0] == 0:
            return 0  # only hash collisions
        con.execute(
            f"CREATE TEMP TABLE dup_pos AS SELECT d.file_row_number AS pos, k.first_pos "  # noqa: S608
            f"FROM read_parquet(?, file_row_number = true) d JOIN dup_keys k ON d.{key} = k.k "
            f"WHERE d.file_row_number <> k.first_pos",
            [str(staged)],
        )
        # Staged positions back to (source, row) through the rowmap's segments.
        details = con.execute(
            "SELECT p.pos, m.src, m.first_row + (p.pos - m.start), f.src, f.first_row + (p.first_pos - f.start) "
            "FROM dup_pos p "
            "ASOF JOIN read_parquet($map) m ON p.pos >= m.start "
            "ASOF JOIN read_parquet($map) f ON p.first_pos >= f.start "
            "ORDER BY p.pos",
            {"map": str(rowmap_path)},
        ).fetchall()
        dup_rows = (
            con.sql(
                "SELECT d.* EXCLUDE (file_row_number) FROM read_parquet($path, file_row_number = true) d "
                "JOIN dup_pos p ON d.file_row_number = p.pos ORDER BY p.pos",
                params={"path": str(staged)},
            )
            .to_arrow_table()
            .to_pylist()
        )
        for (_pos, src, row, first_src, first_row), record in zip(details, dup_rows, strict=True):
            where = f"{sources[first_src].name}:{first_row}"
            qw.add(
                spec.name,
                sources[src].name,
                Reject(
                    row,
                    spec.key,
                    spec.duplicate_reason,
                    f"{spec.key} already seen at {where}; the first is kept",
                    raw_json(record, options.raw_max_chars),
                ),
            )
        # The rows kept, streamed in file order (a streamed DuckDB query over a file of
        # several row groups may reorder them, and sorting would cost more than this).
        drop = np.array([d[0] for d in details], dtype=np.int64)  # ascending
        offset = 0
        with pq.ParquetWriter(out_path, spec.schema, **STAGED_PARQUET) as writer:
            for batch in pq.ParquetFile(staged, pre_buffer=False).iter_batches(
                batch_size=options.batch_rows, columns=spec.names
            ):
                n = batch.num_rows
                lo, hi = np.searchsorted(drop, [offset, offset + n])
                keep = np.ones(n, dtype=bool)
                keep[drop[lo:hi] - offset] = False
                offset += n
                writer.write_table(pa.Table.from_batches([batch.filter(pa.array(keep))]).cast(spec.schema))
        return len(details)
    finally:
        con.close()
