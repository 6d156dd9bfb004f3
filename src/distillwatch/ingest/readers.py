"""Streaming readers: each input format -> Arrow record batches of raw contract columns.

A reader only finds records and their row numbers.  It sets aside what it
cannot turn into a record at all (a malformed JSON line, a ragged CSV row,
invalid UTF-8) as a :class:`Reject`; every value-level check happens later, in
:mod:`distillwatch.ingest.validate`, vectorised over the batch.

Row numbers are 1-based: the line for JSON Lines, the physical line where the
record starts for CSV (the header is line 1), the row within the file for
Parquet.  Unknown extra columns and keys are ignored.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import json
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from distillwatch.ingest import errors as E
from distillwatch.ingest.adapters import AdapterError, chat_record, otel_spans
from distillwatch.ingest.errors import UnreadableInputError
from distillwatch.ingest.options import IngestOptions
from distillwatch.ingest.sources import Source
from distillwatch.ingest.spec import ROW, TableSpec

CSV_FIELD_LIMIT = 256 << 20
CSV_BATCH_CHARS = 32 << 20  # a CSV cell may hold a very long prompt; truncation happens later


@dataclass(frozen=True)
class Reject:
    """A record set aside before or during validation."""

    row: int
    field: str | None
    reason: str
    detail: str
    raw: str


@dataclass
class RawBatch:
    """Records found in one stretch of a source.  ``read`` counts rejects too."""

    table: pa.Table | None
    rejects: list[Reject] = field(default_factory=list)
    read: int = 0
    bytes_done: int = 0
    ignored: int = 0  # OTel spans that are not GenAI calls (not exchanges, not records)


def bounded(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit} more chars]"


def raw_json(obj: Any, limit: int) -> str:
    """A bounded JSON rendering of a rejected record, long strings cut first."""

    def cut(v: Any) -> Any:
        if isinstance(v, str) and len(v) > limit:
            return v[:limit]
        if isinstance(v, bytes):
            return cut(v.decode("utf-8", "replace"))
        if isinstance(v, dict):
            return {str(k): cut(x) for k, x in v.items()}
        if isinstance(v, list):
            return [cut(x) for x in v[:100]]
        return v

    text = json.dumps(cut(obj), ensure_ascii=False, default=str)
    # Lone surrogates cannot be stored as UTF-8: keep them visible as escapes.
    return bounded(text.encode("utf-8", "backslashreplace").decode("utf-8"), limit)


# --- byte streams ------------------------------------------------------------------


@contextmanager
def _open_bytes(source: Source) -> Iterator[tuple[IO[bytes], IO[bytes]]]:
    """(decompressed stream, underlying file) so progress can follow compressed bytes."""
    with open(source.path, "rb") as raw:
        if source.gzipped:
            with gzip.GzipFile(fileobj=raw, mode="rb") as gz:
                yield gz, raw
        else:
            yield raw, raw


def _guard(source: Source, it: Iterable[RawBatch]) -> Iterator[RawBatch]:
    """Turn decompression and I/O failures in the middle of a file into a clear error."""
    try:
        yield from it
    except (OSError, EOFError, zlib.error) as e:
        raise UnreadableInputError(
            source.path, f"read failed part-way ({e.__class__.__name__}: {e})"
        ) from None


# --- turning parsed records into an all-string Arrow table --------------------------


class _WrongType(ValueError):
    pass


def _cell(value: Any) -> str | None:
    """A JSON value as text for validation; numbers keep their spelling, structures are wrong types."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        raise _WrongType("boolean")
    if isinstance(value, int | float):
        return repr(value)
    raise _WrongType(type(value).__name__.replace("dict", "object").replace("list", "array"))


def records_to_batch(
    records: list[tuple[int, dict[str, Any]]], spec: TableSpec, raw_limit: int
) -> tuple[pa.Table | None, list[Reject]]:
    """Rows of (row number, record) -> an all-string table; wrong-typed records become rejects."""
    names = spec.names
    columns: dict[str, list[str | None]] = {n: [] for n in names}
    rows: list[int] = []
    rejects: list[Reject] = []
    for row, record in records:
        try:
            cells = [_cell(record.get(n)) for n in names]
        except _WrongType:
            bad = next(n for n in names if _is_wrong(record.get(n)))
            kind = type(record.get(bad)).__name__
            rejects.append(
                Reject(row, bad, E.WRONG_TYPE, f"{bad} is a JSON {kind}", raw_json(record, raw_limit))
            )
            continue
        for n, c in zip(names, cells, strict=True):
            columns[n].append(c)
        rows.append(row)
    try:
        arrays = {n: pa.array(columns[n], pa.string()) for n in names}
    except UnicodeEncodeError:
        # JSON may escape a lone surrogate ("\ud800"): valid JSON, but not encodable text.
        # Rare, so only then is every value checked.
        bad = {i for n in names for i, v in enumerate(columns[n]) if v is not None and not _encodable(v)}
        by_row = dict(records)
        for i in sorted(bad):
            rejects.append(
                Reject(
                    rows[i],
                    None,
                    E.INVALID_UTF8,
                    "a \\u escape encodes a lone surrogate",
                    raw_json(by_row.get(rows[i]), raw_limit),
                )
            )
        keep = [i for i in range(len(rows)) if i not in bad]
        columns = {n: [columns[n][i] for i in keep] for n in names}
        rows = [rows[i] for i in keep]
        arrays = {n: pa.array(columns[n], pa.string()) for n in names}
    if not rows:
        return None, rejects
    arrays[ROW] = pa.array(rows, pa.int64())
    return pa.table(arrays), rejects


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _is_wrong(value: Any) -> bool:
    try:
        _cell(value)
    except _WrongType:
        return True
    return False


# --- Parquet --------------------------------------------------------------------------


FREE_TEXT = ("prompt", "system", "response", "user_agent", "model")
DICTIONARY_BYTES_PER_VALUE = 8.0


def _dictionary_encoded(pf: pq.ParquetFile, names: list[str]) -> list[str]:
    """Text columns stored as dictionary indices (templated prompts, repeated answers).

    Reading those as Arrow dictionaries and expanding them is ~2.5x faster than
    letting Parquet expand them; for columns of distinct values it is slower, so
    the choice is made from the first row group: data pages holding only indices
    take a few bytes per value, and a repeating dictionary is small per row.
    """
    meta = pf.metadata
    if meta.num_row_groups == 0:
        return []
    group = meta.row_group(0)
    chosen = []
    for i in range(group.num_columns):
        chunk = group.column(i)
        if (
            chunk.path_in_schema not in names
            or not chunk.has_dictionary_page
            or chunk.dictionary_page_offset is None
        ):
            continue
        values = max(chunk.num_values, 1)
        dict_bytes = chunk.data_page_offset - chunk.dictionary_page_offset
        indices_only = (chunk.total_compressed_size - dict_bytes) / values < DICTIONARY_BYTES_PER_VALUE
        # ...and values repeat: a dictionary as big as the column itself (distinct values
        # that happened to fit) is slower to expand than plain decoding.
        repeated = dict_bytes / values < DICTIONARY_BYTES_PER_VALUE
        if indices_only and repeated:
            chosen.append(chunk.path_in_schema)
    return chosen


def iter_parquet(source: Source, spec: TableSpec, options: IngestOptions) -> Iterator[RawBatch]:
    try:
        # pre_buffer caches column chunks for the whole file as the iteration goes on
        # (memory grew by ~50 bytes a row): off, memory stays flat at one row group.
        pf = pq.ParquetFile(source.path, pre_buffer=False)
    except (pa.ArrowException, OSError) as e:
        raise UnreadableInputError(source.path, f"not a readable Parquet file ({e})") from None
    present = set(pf.schema_arrow.names)
    spec.check_columns(source.path, present)
    columns = [n for n in spec.names if n in present]
    dictionary = _dictionary_encoded(pf, [n for n in columns if n in FREE_TEXT])
    if dictionary:
        pf = pq.ParquetFile(source.path, read_dictionary=dictionary, pre_buffer=False)
    total_rows = max(pf.metadata.num_rows, 1)
    size = source.path.stat().st_size
    offset = 0
    try:
        for batch in pf.iter_batches(batch_size=options.batch_rows, columns=columns, use_threads=True):
            n = batch.num_rows
            table = pa.Table.from_batches([batch]).append_column(
                ROW, pa.array(np.arange(offset + 1, offset + n + 1, dtype=np.int64))
            )
            offset += n
            yield RawBatch(table, [], n, int(size * n / total_rows))
    except (pa.ArrowException, OSError) as e:
        raise UnreadableInputError(source.path, f"corrupt Parquet after row {offset} ({e})") from None


# --- CSV -------------------------------------------------------------------------------


@contextmanager
def _csv_field_limit(limit: int) -> Iterator[None]:
    old = csv.field_size_limit()
    csv.field_size_limit(limit)
    try:
        yield
    finally:
        csv.field_size_limit(old)


def iter_csv(source: Source, spec: TableSpec, options: IngestOptions) -> Iterator[RawBatch]:
    return _guard(source, _iter_csv(source, spec, options))


def _iter_csv(source: Source, spec: TableSpec, options: IngestOptions) -> Iterator[RawBatch]:
    """CSV in blocks of whole records: pyarrow parses a block whose records are all
    plain (the usual case); any other block is read by Python's ``csv`` module, whose
    reading defines the result either way (see ``_csv_plain_block``)."""
    with _open_bytes(source) as (stream, raw), _csv_field_limit(CSV_FIELD_LIMIT):
        header, header_lines = _csv_header(source, stream)
        spec.check_columns(source.path, set(header))
        index = {n: header.index(n) for n in spec.names if n in header}
        width = len(header)
        line = header_lines + 1
        last_pos = 0
        for block, quoting_plain, newlines in _csv_blocks(stream, options.json_block_bytes):
            if not quoting_plain:
                # A quote the block cut cannot account for: from here on, Python alone.
                rest = itertools.chain(io.BytesIO(block), stream)
                yield from _csv_python(rest, line, width, index, options, raw)
                return
            table = _csv_plain_block(block, line, header, width, index, newlines)
            batches = (
                [RawBatch(table, [], table.num_rows, 0)]
                if table is not None
                else list(_csv_python(io.BytesIO(block), line, width, index, options, None))
            )
            pos = raw.tell()
            batches[0].bytes_done = pos - last_pos
            last_pos = pos
            yield from batches
            line += newlines


def _csv_header(source: Source, stream: IO[bytes]) -> tuple[list[str], int]:
    """(header names, physical lines it took); the stream is left just after it."""

    def lines() -> Iterator[str]:
        while chunk := stream.readline():
            try:
                yield chunk.decode("utf-8")
            except UnicodeDecodeError:
                raise UnreadableInputError(source.path, "the CSV header is not valid UTF-8") from None

    reader = csv.reader(lines())
    try:
        header = next(reader)
    except StopIteration:
        raise UnreadableInputError(source.path, "the CSV file has no header row") from None
    except csv.Error as e:
        raise UnreadableInputError(source.path, f"cannot parse the CSV header ({e})") from None
    return [h.strip().lstrip("\ufeff") for h in header], reader.line_num


def _csv_blocks(stream: IO[bytes], block_bytes: int) -> Iterator[tuple[bytes, bool, int]]:
    """(block of whole records, whether its quoting is plain RFC 4180, its newlines).

    A block ends at the last newline outside quotes, counted by quote parity.  Parity
    matches how Python's ``csv`` reads only when every quote opens a field, closes
    one, or doubles another; a block where that fails is returned with ``False`` and
    the caller reads the rest of the file the slow way (no later cut is trusted).
    """
    carry = b""
    while True:
        chunk = stream.read(block_bytes)
        data = carry + chunk
        buf = np.frombuffer(data, dtype=np.uint8)
        quotes = np.flatnonzero(buf == QUOTE)
        newlines = np.flatnonzero(buf == NEWLINE)
        if not chunk:
            if data:
                yield data, _plain_quotes(buf, quotes, len(data)), len(newlines)
            return
        # A newline is outside quotes when an even number of quotes precede it.
        outside = newlines[(np.searchsorted(quotes, newlines) & 1) == 0] if len(quotes) else newlines
        if len(outside) == 0:
            if len(data) > CSV_CARRY_LIMIT:  # an open quote that never closes
                yield data, False, len(newlines)
                return
            carry = data
            continue
        cut = int(outside[-1]) + 1
        plain = _plain_quotes(buf, quotes[quotes < cut], cut)
        yield data[:cut], plain, int(np.searchsorted(newlines, cut))
        if not plain:
            return  # the caller reads on from the stream, which holds what follows data
        carry = data[cut:]


QUOTE, NEWLINE, COMMA, CR = 34, 10, 44, 13
CSV_CARRY_LIMIT = 64 << 20


def _plain_quotes(buf: np.ndarray, quotes: np.ndarray, end: int) -> bool:
    """Every quote in ``buf[:end]`` (at positions ``quotes``) opens a field (after a
    comma or a line start), closes one (before a comma or a line end), or doubles a
    neighbour: then a newline at even quote parity is a record boundary for Python's
    ``csv`` too."""
    if len(quotes) == 0:
        return True
    before = np.where(quotes > 0, buf[np.maximum(quotes - 1, 0)], NEWLINE)
    after = np.where(quotes + 1 < end, buf[np.minimum(quotes + 1, end - 1)], NEWLINE)
    opens = np.arange(len(quotes)) % 2 == 0  # the 1st, 3rd, ... quote leaves parity odd
    ok_open = np.isin(before, (COMMA, NEWLINE, QUOTE))
    ok_close = np.isin(after, (COMMA, NEWLINE, CR, QUOTE))
    return bool(np.all(np.where(opens, ok_open, ok_close)))


def _csv_plain_block(
    block: bytes, first_line: int, header: list[str], width: int, index: dict[str, int], newlines: int
) -> pa.Table | None:
    """The block's records parsed by pyarrow, or None when Python must read it.

    pyarrow is used only where it reads exactly as Python's ``csv`` does: valid
    UTF-8, no NUL, no lone carriage return, no blank line, every record as wide
    as the header, and as many physical lines (``newlines`` counts them) as the
    records account for.  Row numbers are the line each record starts on.
    """
    if b"\x00" in block or (b"\r" in block and block.count(b"\r") != block.count(b"\r\n")):
        return None
    if block.startswith((b"\n", b"\r\n")) or b"\n\n" in block or b"\n\r\n" in block:
        return None  # a blank line (or one inside a quoted value: rare, and Python reads both right)
    try:
        pa.array([block], pa.binary()).cast(pa.string())  # validates UTF-8 without decoding
    except pa.ArrowInvalid:
        return None
    ragged: list[object] = []

    def on_invalid(row: object) -> str:
        ragged.append(row)
        return "skip"

    names = [f"c{i}" for i in range(width)]
    try:
        table = pacsv.read_csv(
            io.BytesIO(block),
            read_options=pacsv.ReadOptions(column_names=names, use_threads=True, block_size=1 << 20),
            parse_options=pacsv.ParseOptions(
                newlines_in_values=True, ignore_empty_lines=False, invalid_row_handler=on_invalid
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowException:
        return None  # invalid UTF-8, an unterminated quote, ...
    if ragged or table.num_rows == 0:
        return None
    lines = newlines + (0 if block.endswith(b"\n") else 1)
    spans = np.ones(table.num_rows, dtype=np.int64)
    if lines != table.num_rows:  # some quoted values hold newlines
        for col in table.columns:
            spans += pc.fill_null(pc.count_substring(col, "\n"), 0).to_numpy(zero_copy_only=False)
    if int(spans.sum()) != lines:
        return None
    rows = first_line + np.concatenate(([0], np.cumsum(spans)[:-1]))
    # CSV cannot tell null from empty: an empty cell is null.
    arrays = {n: _empty_as_null(table.column(i)) for n, i in index.items()}
    arrays[ROW] = pa.array(rows)
    return pa.table(arrays)


def _empty_as_null(col: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.if_else(pc.equal(pc.binary_length(col), 0), pa.scalar(None, pa.string()), col)


def _csv_python(
    chunks: Iterable[bytes],
    first_line: int,
    width: int,
    index: dict[str, int],
    options: IngestOptions,
    raw: IO[bytes] | None,
) -> Iterator[RawBatch]:
    """Records read by Python's ``csv`` module from lines numbered from ``first_line``:
    ragged rows, invalid UTF-8 and parse errors are pinned to the line they start on."""
    limit = options.raw_max_chars
    bad_lines: set[int] = set()
    line_no = first_line - 1

    def lines() -> Iterator[str]:
        # Decode line by line so invalid UTF-8 is pinned to its line, not the file.
        nonlocal line_no
        for chunk in chunks:
            line_no += 1
            try:
                yield chunk.decode("utf-8")
            except UnicodeDecodeError:
                bad_lines.add(line_no)
                yield chunk.decode("utf-8", "replace")

    reader = csv.reader(lines())
    offset = first_line - 1  # reader.line_num counts from this reader's first line
    columns: dict[str, list[str | None]] = {n: [] for n in index}
    rows: list[int] = []
    rejects: list[Reject] = []
    read = 0
    prev_end = offset
    last_pos = raw.tell() if raw is not None else 0
    text_chars = 0  # batches are also bounded by text size: Python strings are costly

    def flush() -> RawBatch:
        nonlocal columns, rows, rejects, read, last_pos
        table = None
        if rows:
            arrays = {n: pa.array(v, pa.string()) for n, v in columns.items()}
            arrays[ROW] = pa.array(rows, pa.int64())
            table = pa.table(arrays)
        pos = raw.tell() if raw is not None else 0
        batch = RawBatch(table, rejects, read, pos - last_pos)
        columns, rows, rejects, read, last_pos = {n: [] for n in index}, [], [], 0, pos
        return batch

    while True:
        start = prev_end + 1
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            read += 1
            rejects.append(Reject(start, None, E.BAD_CSV_ROW, f"CSV parse error: {e}", ""))
            prev_end = offset + reader.line_num
            continue
        end = prev_end = offset + reader.line_num
        if not record:
            continue  # a blank line is not a record
        read += 1
        if bad_lines:
            hit = [n for n in range(start, end + 1) if n in bad_lines]
            bad_lines.difference_update(n for n in list(bad_lines) if n <= end)
            if hit:
                rejects.append(
                    Reject(
                        start,
                        None,
                        E.INVALID_UTF8,
                        f"invalid UTF-8 on line {hit[0]}",
                        bounded(",".join(record), limit),
                    )
                )
                continue
        if len(record) != width:
            span = f"lines {start}-{end}" if end > start else f"line {start}"
            rejects.append(
                Reject(
                    start,
                    None,
                    E.BAD_CSV_ROW,
                    f"{len(record)} fields where the header has {width} ({span})",
                    bounded(",".join(record), limit),
                )
            )
            continue
        for n, i in index.items():
            # CSV cannot tell null from empty: an empty cell is null.
            columns[n].append(record[i] if record[i] != "" else None)
        rows.append(start)
        text_chars += sum(map(len, record))
        if len(rows) >= options.batch_rows or text_chars >= CSV_BATCH_CHARS:
            text_chars = 0
            yield flush()
    yield flush()


# --- JSON Lines -------------------------------------------------------------------------


def _blocks(source: Source, block_bytes: int) -> Iterator[tuple[bytes, int, int]]:
    """(block of whole lines, number of its first line, compressed bytes consumed)."""
    with _open_bytes(source) as (stream, raw):
        carry = b""
        line = 1
        last_pos = 0
        while True:
            chunk = stream.read(block_bytes)
            data = carry + chunk
            if not chunk:
                if data:
                    yield data + b"\n", line, raw.tell() - last_pos
                return
            cut = data.rfind(b"\n")
            if cut < 0:
                carry = data  # one line longer than a block: keep reading
                continue
            block, carry = data[: cut + 1], data[cut + 1 :]
            pos = raw.tell()
            yield block, line, pos - last_pos
            last_pos = pos
            line += block.count(b"\n")


def _nonblank_line_numbers(block: bytes, first_line: int) -> tuple[np.ndarray, int]:
    """(numbers of the non-blank lines, length of the longest line)."""
    buf = np.frombuffer(block, dtype=np.uint8)
    ends = np.flatnonzero(buf == 10)  # the block always ends with "\n"
    starts = np.concatenate(([0], ends[:-1] + 1))
    lengths = ends - starts
    cr = np.zeros(len(ends), dtype=bool)
    nonempty = lengths > 0
    cr[nonempty] = buf[ends[nonempty] - 1] == 13
    numbers = first_line + np.arange(len(ends), dtype=np.int64)
    return numbers[(lengths - cr) > 0], int(lengths.max(initial=0))


def _parse_lines(block: bytes, first_line: int, raw_limit: int) -> Iterator[tuple[int, Any]]:
    """(line number, parsed object or Reject) for each non-blank line, one by one."""
    for offset, line in enumerate(block.split(b"\n")):
        number = first_line + offset
        if not line.strip():
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as e:
            yield (
                number,
                Reject(
                    number,
                    None,
                    E.INVALID_UTF8,
                    f"byte {e.start}: {e.reason}",
                    bounded(line.decode("utf-8", "replace"), raw_limit),
                ),
            )
            continue
        try:
            obj = json.loads(text)
        except ValueError as e:
            yield (
                number,
                Reject(number, None, E.MALFORMED_JSON, bounded(str(e), 200), bounded(text, raw_limit)),
            )
            continue
        if not isinstance(obj, dict):
            yield (
                number,
                Reject(
                    number,
                    None,
                    E.MALFORMED_JSON,
                    f"a JSON {type(obj).__name__}, not an object",
                    bounded(text, raw_limit),
                ),
            )
            continue
        yield number, obj


def iter_jsonl(source: Source, spec: TableSpec, options: IngestOptions) -> Iterator[RawBatch]:
    return _guard(source, _iter_jsonl(source, spec, options))


SPLIT_MIN_LINES = 64  # below this a failing block is parsed line by line
JSON_PARSE_BLOCK = 1 << 20  # pyarrow parses a block's 1 MB pieces on all cores


def _iter_jsonl(source: Source, spec: TableSpec, options: IngestOptions) -> Iterator[RawBatch]:
    parse = pajson.ParseOptions(explicit_schema=spec.json_schema, unexpected_field_behavior="ignore")
    for block, first_line, nbytes in _blocks(source, options.json_block_bytes):
        batches = list(_parse_block(block, first_line, spec, options, parse))
        batches[0].bytes_done = nbytes
        yield from batches


def _parse_block(
    block: bytes, first_line: int, spec: TableSpec, options: IngestOptions, parse: pajson.ParseOptions
) -> Iterator[RawBatch]:
    """Fast path: the whole block in one vectorised parse.  A block that fails (a bad
    line, bad bytes, a type that changes) is halved until the bad lines are isolated
    in small pieces, which alone are parsed line by line."""
    numbers, longest = _nonblank_line_numbers(block, first_line)
    if len(numbers) == 0:
        yield RawBatch(None, [], 0, 0)
        return
    try:
        table = pajson.read_json(
            io.BytesIO(block),
            # No line may straddle two of pyarrow's blocks: they are at least the longest line.
            read_options=pajson.ReadOptions(use_threads=True, block_size=max(JSON_PARSE_BLOCK, longest + 2)),
            parse_options=parse,
        )
        if table.num_rows != len(numbers):
            raise pa.ArrowInvalid("row count differs from line count")
        yield RawBatch(table.append_column(ROW, pa.array(numbers)), [], len(numbers), 0)
        return
    except pa.ArrowException:
        pass
    lines = block.count(b"\n")
    if lines < SPLIT_MIN_LINES:
        yield _slow_block(block, first_line, spec, options, 0)
        return
    middle = block.find(b"\n", len(block) // 2)
    if middle < 0 or middle == len(block) - 1:  # one giant line at the end: split by lines instead
        middle = block.rfind(b"\n", 0, len(block) - 1)
    head, tail = block[: middle + 1], block[middle + 1 :]
    yield from _parse_block(head, first_line, spec, options, parse)
    yield from _parse_block(tail, first_line + head.count(b"\n"), spec, options, parse)


def _slow_block(
    block: bytes, first_line: int, spec: TableSpec, options: IngestOptions, nbytes: int
) -> RawBatch:
    rejects: list[Reject] = []
    records: list[tuple[int, dict[str, Any]]] = []
    for number, obj in _parse_lines(block, first_line, options.raw_max_chars):
        if isinstance(obj, Reject):
            rejects.append(obj)
        else:
            records.append((number, obj))
    table, wrong = records_to_batch(records, spec, options.raw_max_chars)
    return RawBatch(table, rejects + wrong, len(records) + len(rejects), nbytes)


# --- adapters: chat request logs and OTLP JSON ------------------------------------------


def _documents(source: Source, options: IngestOptions) -> Iterator[tuple[list[tuple[int, Any]], int]]:
    """Batches of (line, object or Reject); a `.json` file holding one document is line 1."""
    if source.format == "json":
        with _open_bytes(source) as (stream, raw):
            data = stream.read()
            size = raw.tell()
        try:
            doc = json.loads(data)
        except ValueError:
            doc = None  # not one document: read it as JSON Lines below
        except UnicodeDecodeError as e:
            raise UnreadableInputError(source.path, f"not UTF-8 ({e.reason})") from None
        if isinstance(doc, list):
            yield (
                [
                    (
                        i + 1,
                        o
                        if isinstance(o, dict)
                        else Reject(
                            i + 1,
                            None,
                            E.MALFORMED_JSON,
                            "array item is not an object",
                            raw_json(o, options.raw_max_chars),
                        ),
                    )
                    for i, o in enumerate(doc)
                ],
                size,
            )
            return
        if isinstance(doc, dict):
            yield [(1, doc)], size
            return
    for block, first_line, nbytes in _blocks(source, options.json_block_bytes):
        yield list(_parse_lines(block, first_line, options.raw_max_chars)), nbytes


def iter_adapted(source: Source, spec: TableSpec, options: IngestOptions, adapter: str) -> Iterator[RawBatch]:
    return _guard(source, _iter_adapted(source, spec, options, adapter))


def _iter_adapted(
    source: Source, spec: TableSpec, options: IngestOptions, adapter: str
) -> Iterator[RawBatch]:
    limit = options.raw_max_chars
    for items, nbytes in _documents(source, options):
        records: list[tuple[int, dict[str, Any]]] = []
        rejects: list[Reject] = []
        ignored = 0
        for number, obj in items:
            if isinstance(obj, Reject):
                rejects.append(obj)
                continue
            try:
                if adapter == "chat":
                    records.append((number, chat_record(obj)))
                elif adapter == "otel":
                    for _index, record in otel_spans(obj):
                        if record is None:
                            ignored += 1
                        else:
                            records.append((number, record))
                else:
                    records.append((number, obj))
            except AdapterError as e:
                rejects.append(
                    Reject(
                        number, e.field, E.UNMAPPABLE_RECORD, f"{adapter} adapter: {e}", raw_json(obj, limit)
                    )
                )
        table, wrong = records_to_batch(records, spec, limit)
        yield RawBatch(table, rejects + wrong, len(records) + len(rejects), nbytes, ignored)


def iter_source(source: Source, spec: TableSpec, options: IngestOptions, adapter: str) -> Iterator[RawBatch]:
    """The reader for one source and adapter."""
    if adapter in ("chat", "otel"):
        if source.format not in ("jsonl", "json"):
            raise UnreadableInputError(
                source.path, f"the {adapter} adapter reads JSON (.jsonl, .json), not {source.format}"
            )
        return iter_adapted(source, spec, options, adapter)
    if source.format == "parquet":
        return iter_parquet(source, spec, options)
    if source.format == "csv":
        return iter_csv(source, spec, options)
    if source.format == "json":
        return iter_adapted(source, spec, options, "contract")
    return iter_jsonl(source, spec, options)
