"""``ingest()``: read, validate and stage the input tables; account for every record.

Output layout under ``work_dir``::

    work_dir/ingest/exchanges.parquet   accepted exchanges, exactly contract.EXCHANGES_SCHEMA
    work_dir/ingest/accounts.parquet    accepted accounts, contract.ACCOUNTS_SCHEMA (if given)
    work_dir/quarantine.parquet         every record set aside, with its reason

The staged tables live in a sub-folder because ``scan`` writes its own
``accounts.parquet`` (scores) at the top of its results directory.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from distillwatch.ingest import runs
from distillwatch.ingest.options import IngestOptions
from distillwatch.ingest.readers import Reject, iter_source, raw_json
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
ROWMAP_SCHEMA = pa.schema([("src", pa.int32()), ("row", pa.int64())])


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
    writer = pq.ParquetWriter(tmp_path, spec.schema)
    rowmap = pq.ParquetWriter(rowmap_path, ROWMAP_SCHEMA)
    try:
        for index, source in enumerate(sources):
            adapter = options.adapter if options.adapter != "auto" else sniff_adapter(source)
            read_before = counts.read
            for batch in iter_source(source, spec, options, adapter):
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
                    if v.accepted.num_rows:
                        counts.accepted += v.accepted.num_rows
                        writer.write_table(v.accepted)
                        rowmap.write_table(
                            pa.table(
                                {"src": pa.array([index] * len(v.rows), pa.int32()), "row": v.rows},
                                schema=ROWMAP_SCHEMA,
                            )
                        )
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
        writer.close()
        rowmap.close()
        validator.close()
    duplicates = _drop_duplicates(spec, tmp_path, rowmap_path, out_path, stage, sources, qw, options)
    if duplicates:
        counts.accepted -= duplicates
        counts.reject(spec.duplicate_reason, duplicates)
    rowmap_path.unlink(missing_ok=True)
    if (
        counts.read != counts.accepted + counts.quarantined
        or sum(counts.by_reason.values()) != counts.quarantined
    ):
        raise RuntimeError(
            f"ingest accounting does not add up for {spec.name}: {counts.as_dict()}"
        )  # a bug, never input
    return counts.as_dict()


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
    """Keep the first record of each key (file order); quarantine the rest.  Returns how many."""
    key = f'"{spec.key}"'  # identifier from the contract, not from input
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET temp_directory = ?", [str(stage / ".duckdb_tmp")])
        con.execute(
            f"CREATE TEMP TABLE dup_keys AS SELECT {key} AS k, min(file_row_number) AS first_pos "  # noqa: S608
            f"FROM read_parquet(?, file_row_number = true) GROUP BY 1 HAVING count(*) > 1",
            [str(staged)],
        )
        if con.execute("SELECT count(*) FROM dup_keys").fetchone()[0] == 0:
            staged.replace(out_path)
            return 0
        con.execute(
            f"CREATE TEMP TABLE dup_pos AS SELECT d.file_row_number AS pos, k.first_pos "  # noqa: S608
            f"FROM read_parquet(?, file_row_number = true) d JOIN dup_keys k ON d.{key} = k.k "
            f"WHERE d.file_row_number <> k.first_pos",
            [str(staged)],
        )
        details = con.execute(
            "SELECT p.pos, m.src, m.row, f.src, f.row FROM dup_pos p "
            "JOIN (SELECT file_row_number AS n, src, row FROM read_parquet(?, file_row_number = true)) m ON m.n = p.pos "
            "JOIN (SELECT file_row_number AS n, src, row FROM read_parquet(?, file_row_number = true)) f ON f.n = p.first_pos "
            "ORDER BY p.pos",
            [str(rowmap_path), str(rowmap_path)],
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
        reader = con.sql(
            "SELECT * EXCLUDE (file_row_number) FROM read_parquet($path, file_row_number = true) "
            "WHERE file_row_number NOT IN (SELECT pos FROM dup_pos)",  # insertion order is preserved
            params={"path": str(staged)},
        ).to_arrow_reader(options.batch_rows)
        with pq.ParquetWriter(out_path, spec.schema) as writer:
            for batch in reader:
                writer.write_table(pa.Table.from_batches([batch]).cast(spec.schema))
        staged.unlink()
        return len(details)
    finally:
        con.close()
