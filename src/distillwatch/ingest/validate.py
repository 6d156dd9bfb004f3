"""Vectorised validation and normalisation of raw batches against the contract.

Work per batch:
1. pyarrow: UTF-8 checks, column-wide type checks, NUL stripping and truncation
   to ``max_text_chars``.
2. Every check as a vectorised mask over the batch: required fields, timestamp
   range, integer range, canonical IP addresses (validated per *distinct*
   address, then joined back: logs hold far fewer addresses than rows), country
   codes.  Timestamps and integers that arrive as text (CSV, JSON strings) are
   parsed by one DuckDB query over just those columns; typed columns (Parquet,
   JSON numbers) never leave Arrow.  The first failing check of a row, in
   contract order with required fields first, names its quarantine reason and
   field.

A batch whose rows all pass is handed on without copying a column.  Only
quarantined rows (expected to be few) are ever touched one by one.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distillwatch.contract import TS
from distillwatch.ingest import errors as E
from distillwatch.ingest.options import IngestOptions
from distillwatch.ingest.readers import Reject, raw_json
from distillwatch.ingest.spec import ROW, TableSpec

IP_CACHE_LIMIT = 2_000_000
# An IPv4 address in its canonical form (no leading zeros, each octet <= 255) needs no parsing.
_OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])"
CANONICAL_IPV4 = rf"^{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}$"


def canonical_ip(value: str | None) -> str | None:
    """Canonical text of an IPv4/IPv6 address, or None if ``value`` is not one.

    IPv6 is compressed and lower-case (``2001:DB8::0001`` -> ``2001:db8::1``);
    IPv4-mapped IPv6 (``::ffff:1.2.3.4``) becomes the IPv4 address it carries;
    ``[...]`` brackets are removed.  Leading zeros in IPv4 are rejected (ambiguous:
    octal or decimal).
    """
    if value is None:
        return None
    text = value.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _is_bytes(t: pa.DataType) -> bool:
    return pa.types.is_binary(t) or pa.types.is_large_binary(t)


@dataclass
class Validated:
    # The accepted rows, the contract's columns in order; free text may still be
    # dictionary-encoded (cast to contract.schema when written).
    columns: pa.Table
    rows: pa.Array  # row numbers of the accepted rows, same order
    rejects: list[Reject]
    truncated: Counter[str] = field(default_factory=Counter)
    nul_stripped: Counter[str] = field(default_factory=Counter)
    # Every row accepted with every value as it came in (types aside): the batch's
    # source rows are already the staged rows, so a file of such batches need not be rewritten.
    unchanged: bool = False


@dataclass(frozen=True)
class _Check:
    mask: np.ndarray  # rows that fail this check
    reason: str
    field: str
    detail: str


class Validator:
    """Validates batches of one table; keeps a small in-memory DuckDB and an IP cache."""

    def __init__(self, spec: TableSpec, options: IngestOptions) -> None:
        self.spec = spec
        self.options = options
        self.con = duckdb.connect()
        # Naive timestamps are read as UTC: the session zone decides how DuckDB casts them.
        self.con.execute("SET TimeZone = 'UTC'")
        self._ip_cache: dict[str, str | None] = {}
        # Fields some check reads; the others (free text) are only bounded and cleaned.
        self._checked = {
            f.name
            for f in spec.fields
            if f.required
            or f.name in spec.ip_fields
            or f.name in spec.country_fields
            or pa.types.is_timestamp(f.type)
            or pa.types.is_integer(f.type)
        }
        self._min_ts = pa.scalar(options.min_ts, TS)
        self._max_ts = pa.scalar(options.max_ts, TS)

    def close(self) -> None:
        self.con.close()

    def key_hashes(self, keys: pa.ChunkedArray) -> np.ndarray:
        """64-bit hashes of the accepted keys: equal keys, equal hashes (duplicate search)."""
        self.con.register("keys", pa.table({"k": keys}))
        try:
            return self.con.execute("SELECT hash(k) AS h FROM keys").fetchnumpy()["h"]
        finally:
            self.con.unregister("keys")

    # -- step 1: pyarrow --------------------------------------------------------------

    def _clean_dictionaries(self, table: pa.Table) -> set[str]:
        """Free-text columns read as dictionaries whose distinct values need no change
        (valid UTF-8, no NUL, within max_text_chars): they stay dictionaries, checked
        once per distinct value instead of once per row, and are expanded only if
        written out."""
        keep = set()
        for f in self.spec.fields:
            if f.name not in table.column_names or f.name in self._checked:
                continue
            col = table[f.name]
            if not pa.types.is_dictionary(col.type) or not pa.types.is_string(col.type.value_type):
                continue
            words = pa.chunked_array([c.dictionary for c in col.chunks], col.type.value_type)
            if (
                self._utf8_bad(words) is None
                and not _may_hold_nul(words)
                and (pc.max(pc.binary_length(words)).as_py() or 0) <= self.options.max_text_chars
            ):
                keep.add(f.name)
        return keep

    def _utf8_bad(self, col: pa.ChunkedArray) -> np.ndarray | None:
        """Mask of values that are not valid UTF-8, or None when all are (the fast, usual case)."""
        if _is_text(col.type):
            if all(data.max(initial=0) < 0x80 for data in _character_data(col)):
                return None  # ASCII is valid UTF-8; one numpy scan instead of a full validation
            try:
                col.validate(full=True)
                return None
            except pa.ArrowInvalid:
                pass
        values = pc.cast(col, pa.large_binary()).to_pylist() if not _is_bytes(col.type) else col.to_pylist()
        bad = np.zeros(len(values), dtype=bool)
        for i, v in enumerate(values):
            if v is not None:
                try:
                    v.decode("utf-8")
                except UnicodeDecodeError:
                    bad[i] = True
        return bad

    def _canon_ips(self, col: pa.ChunkedArray) -> pa.ChunkedArray:
        """Canonical addresses (null where invalid), parsed once per distinct value.

        Canonical IPv4 text, the usual case, is recognised by one vectorised regex;
        only the other distinct values (IPv6, odd spellings) go through ``ipaddress``.
        """
        uniq = pc.unique(col)
        canonical = _mask(pc.match_substring_regex(uniq, CANONICAL_IPV4))
        if canonical.all():
            return col  # nothing to rewrite
        cache = self._ip_cache
        if len(cache) > IP_CACHE_LIMIT:
            cache.clear()
        canon = uniq.to_pylist()
        for i in np.flatnonzero(~canonical):
            v = canon[i]
            if v not in cache:
                cache[v] = canonical_ip(v)
            canon[i] = cache[v]
        return pc.take(pa.array(canon, pa.string()), pc.index_in(col, value_set=uniq))

    def _prepare(self, table: pa.Table) -> tuple[pa.Table, pa.Table, list[Reject], Counter, Counter]:
        """(cleaned contract columns, the matching raw rows, rejects, truncated, nul_stripped)."""
        table = _plain_types(table, keep=self._clean_dictionaries(table))
        n = table.num_rows
        spec, limit = self.spec, self.options.max_text_chars
        drop = np.zeros(n, dtype=bool)
        pending: list[tuple[np.ndarray, str, str, str]] = []  # (mask, reason, field, detail)
        columns: dict[str, pa.ChunkedArray] = {}
        for f in spec.fields:
            if f.name not in table.column_names:
                continue
            col = table[f.name]
            t = col.type
            want_int = pa.types.is_integer(f.type)
            want_ts = pa.types.is_timestamp(f.type)
            if pa.types.is_null(t):
                col = pa.chunked_array([pa.nulls(n, pa.string())])
            elif pa.types.is_dictionary(t):
                pass  # free text already found clean, value by value (_clean_dictionaries)
            elif _is_text(t) or _is_bytes(t):
                bad = self._utf8_bad(col)
                if bad is not None:
                    pending.append((bad, E.INVALID_UTF8, f.name, f"{f.name} is not valid UTF-8"))
                    col = pc.if_else(
                        pa.array(bad), pa.scalar(None, pa.large_binary()), pc.cast(col, pa.large_binary())
                    )
                    col = pc.cast(col, pa.string())
                elif _is_bytes(t):
                    col = pc.cast(col, pa.string())
            elif want_ts and (pa.types.is_timestamp(t) or pa.types.is_date(t)):
                pass
            elif want_int and (pa.types.is_integer(t) or pa.types.is_floating(t)):
                if pa.types.is_unsigned_integer(t) and t.bit_width == 64:
                    too_big = pc.fill_null(
                        pc.greater(col, pa.scalar(2**63 - 1, pa.uint64())), False
                    ).to_numpy(zero_copy_only=False)
                    pending.append((too_big, E.OUT_OF_RANGE, f.name, f"{f.name} does not fit in 64 bits"))
                    col = pc.cast(pc.if_else(pa.array(too_big), None, col), pa.int64())
            elif not want_int and not want_ts and pa.types.is_integer(t):
                col = pc.cast(col, pa.string())  # ids stored as numbers: unambiguous as text
            else:
                present = col.is_valid().to_numpy(zero_copy_only=False)
                reason = E.BAD_TIMESTAMP if want_ts else E.WRONG_TYPE
                hint = (
                    " (epoch numbers are ambiguous: give ISO 8601 text or a timestamp column)"
                    if want_ts
                    else ""
                )
                pending.append((present, reason, f.name, f"{f.name} is a {t} column{hint}"))
                col = pa.chunked_array([pa.nulls(n, pa.string() if not want_int else pa.int64())])
            columns[f.name] = col

        rejects: list[Reject] = []
        if pending:
            rows = table[ROW].to_numpy()
            for mask, reason, fname, detail in pending:
                new = mask & ~drop
                for i in np.flatnonzero(new):
                    raw = raw_json(_row_dict(table, int(i)), self.options.raw_max_chars)
                    rejects.append(Reject(int(rows[i]), fname, reason, detail, raw))
                drop |= mask
        keep = pa.array(~drop)
        raw_table = table.filter(keep) if drop.any() else table
        clean = {name: (c.filter(keep) if drop.any() else c) for name, c in columns.items()}

        truncated: Counter[str] = Counter()
        nul: Counter[str] = Counter()
        for f in spec.fields:
            col = clean.get(f.name)
            if col is None or not pa.types.is_string(f.type) or not _is_text(col.type):
                continue  # includes the clean dictionaries: nothing to strip or cut
            has_nul = (pc.sum(pc.match_substring(col, "\x00")).as_py() or 0) if _may_hold_nul(col) else 0
            if has_nul:
                nul[f.name] += has_nul
                col = pc.replace_substring(col, "\x00", "")
            longest = pc.max(pc.binary_length(col)).as_py() or 0
            if longest > limit:  # chars <= bytes, so only then can a value be too long
                over = pc.fill_null(pc.greater(pc.utf8_length(col), limit), False)
                k = pc.sum(over).as_py() or 0
                if k:
                    truncated[f.name] += k
                    col = pc.if_else(over, pc.utf8_slice_codeunits(col, 0, limit), col)
            clean[f.name] = col
        if not clean:
            clean[ROW] = raw_table[ROW]  # keeps the row count when no contract column is present
        return pa.table(clean), raw_table, rejects, truncated, nul

    # -- step 2: checks, in Arrow; DuckDB only parses text timestamps and integers ----------

    def _parse_text(self, table: pa.Table, names: list[str]) -> pa.Table:
        """DuckDB parses the text timestamp and integer columns (CSV, JSON text) in one pass.

        Returns, per name, the parsed value and for integers two flags:
        ``<name>__notint`` (not an integer's spelling) and ``<name>__range``
        (negative or beyond 64 bits).  Typed columns never come here.
        """
        exprs: list[str] = []
        for name in names:
            f = self.spec.field(name)
            q = f'"{name}"'  # identifiers come from contract.py, never from input
            if pa.types.is_timestamp(f.type):
                exprs.append(f"TRY_CAST(trim({q}) AS TIMESTAMPTZ) AS {q}")
                continue
            trimmed = f"trim({q})"
            value = f"TRY_CAST(regexp_extract({trimmed}, '^[+-]?[0-9]+') AS BIGINT)"
            exprs.append(f"CASE WHEN {trimmed} = '' THEN NULL ELSE {value} END AS {q}")
            exprs.append(f"NOT regexp_full_match({trimmed}, '[+-]?[0-9]+(\\.0*)?') AS \"{name}__notint\"")
            exprs.append(f'({value} IS NULL OR {value} < 0) AS "{name}__range"')
        self.con.register("batch", table.select(names))
        try:
            return self.con.sql(f"SELECT {', '.join(exprs)} FROM batch").to_arrow_table()  # noqa: S608
        finally:
            self.con.unregister("batch")

    def _checks(self, clean: pa.Table) -> tuple[list[_Check], dict[str, pa.ChunkedArray | pa.Array]]:
        """(ordered checks, normalised columns).  A row's first failing check names its reason:
        required fields first, then each field's format, in contract order."""
        n = clean.num_rows
        names = set(clean.column_names)
        spec = self.spec
        text_parse = [
            f.name
            for f in spec.fields
            if f.name in names
            and (pa.types.is_timestamp(f.type) or pa.types.is_integer(f.type))
            and _is_text(clean.schema.field(f.name).type)
        ]
        # Text integers that are plain digits (CSV's usual case) need no SQL: Arrow casts them.
        plain_ints = {
            name: pc.cast(clean[name], pa.int64())
            for name in text_parse
            if pa.types.is_integer(spec.field(name).type) and _plain_digits(clean[name])
        }
        text_parse = [name for name in text_parse if name not in plain_ints]
        parsed = self._parse_text(clean, text_parse) if text_parse else None
        required: list[_Check] = []
        checks: list[_Check] = []
        values: dict[str, pa.ChunkedArray | pa.Array] = {}
        for f in spec.fields:
            if f.name not in names:
                values[f.name] = pa.nulls(n, f.type)
                if f.required:
                    required.append(
                        _Check(np.ones(n, dtype=bool), E.MISSING_REQUIRED, f.name, f"no {f.name} field")
                    )
                continue
            col = clean[f.name]
            text = _is_text(col.type)
            checked = f.required or f.name in spec.ip_fields or f.name in spec.country_fields
            if not checked and not pa.types.is_timestamp(f.type) and not pa.types.is_integer(f.type):
                values[f.name] = col  # free text and ids: already bounded and cleaned in step 1
                continue
            blank = _blank(col) if text else _mask(pc.is_null(col))
            if f.required:
                required.append(_Check(blank, E.MISSING_REQUIRED, f.name, f"{f.name} is missing or blank"))
            present = ~blank
            if pa.types.is_timestamp(f.type):
                if text:
                    value = parsed[f.name]
                    bad = present & _mask(pc.is_null(value))
                    checks.append(
                        _Check(bad, E.BAD_TIMESTAMP, f.name, f"{f.name} is not an ISO 8601 timestamp")
                    )
                else:
                    # Naive timestamps are read as UTC; a zone only labels an instant, which Arrow keeps.
                    value = pc.cast(col, TS, safe=False)
                outside = pc.or_(pc.less(value, self._min_ts), pc.greater(value, self._max_ts))
                checks.append(
                    _Check(
                        _mask(outside),
                        E.TIMESTAMP_OUT_OF_RANGE,
                        f.name,
                        f"{f.name} is outside min_ts..max_ts",
                    )
                )
                values[f.name] = value
            elif pa.types.is_integer(f.type):
                if f.name in plain_ints:
                    values[f.name] = plain_ints[f.name]
                elif text:
                    not_int = present & _mask(parsed[f"{f.name}__notint"])
                    out = present & _mask(parsed[f"{f.name}__range"])
                    checks.append(_Check(not_int, E.WRONG_TYPE, f.name, f"{f.name} is not an integer"))
                    checks.append(_Check(out, E.OUT_OF_RANGE, f.name, f"{f.name} is negative or too large"))
                    values[f.name] = parsed[f.name]
                elif pa.types.is_floating(col.type):
                    whole = pc.and_(pc.is_finite(col), pc.equal(col, pc.floor(col)))
                    fits = pc.and_(pc.greater_equal(col, 0.0), pc.less(col, 9.2e18))
                    checks.append(
                        _Check(
                            present & ~_mask(whole), E.WRONG_TYPE, f.name, f"{f.name} is not a whole number"
                        )
                    )
                    checks.append(
                        _Check(
                            present & ~_mask(fits),
                            E.OUT_OF_RANGE,
                            f.name,
                            f"{f.name} is negative or too large",
                        )
                    )
                    usable = pc.and_(whole, fits)
                    values[f.name] = pc.cast(pc.if_else(usable, col, None), pa.int64(), safe=False)
                else:
                    negative = _mask(pc.less(col, 0))
                    checks.append(_Check(negative, E.OUT_OF_RANGE, f.name, f"{f.name} is negative"))
                    values[f.name] = pc.cast(col, pa.int64())
            elif f.name in spec.ip_fields:
                canon = self._canon_ips(col)
                bad = present & _mask(pc.is_null(canon))
                checks.append(_Check(bad, E.BAD_IP, f.name, f"{f.name} is not an IPv4 or IPv6 address"))
                values[f.name] = canon
            elif f.name in spec.country_fields:
                norm = pc.utf8_upper(pc.utf8_trim(col, " "))
                empty = pc.equal(norm, "")
                bad = pc.and_(pc.invert(empty), pc.invert(pc.match_substring_regex(norm, "^[A-Z]{2}$")))
                checks.append(
                    _Check(_mask(bad), E.BAD_VALUE, f.name, f"{f.name} is not an ISO 3166 alpha-2 code")
                )
                values[f.name] = pc.if_else(empty, pa.scalar(None, pa.string()), norm)
            else:
                values[f.name] = col  # a required id: present is all it must be
        return required + checks, values

    def validate(self, table: pa.Table) -> Validated:
        clean, raw_table, rejects, truncated, nul = self._prepare(table)
        checks, values = self._checks(clean)
        first = np.full(clean.num_rows, -1, dtype=np.int16)
        for i, c in enumerate(checks):
            hit = c.mask & (first < 0)
            if hit.any():
                first[hit] = i
        failed = np.flatnonzero(first >= 0)
        if len(failed):
            row_numbers = raw_table[ROW].to_numpy()
            for pos in failed:
                c = checks[first[pos]]
                raw = raw_json(_row_dict(raw_table, int(pos)), self.options.raw_max_chars)
                rejects.append(Reject(int(row_numbers[pos]), c.field, c.reason, c.detail, raw))
            keep = pa.array(first < 0)
            columns = [pc.filter(values[name], keep) for name in self.spec.names]
            rows = pc.filter(raw_table[ROW], keep)
            unchanged = False
        else:  # the usual case: every row passes and no column is copied
            columns = [values[name] for name in self.spec.names]
            rows = raw_table[ROW]
            unchanged = (
                not rejects
                and not truncated
                and not nul
                and all(_same(values[n], clean[n]) for n in clean.column_names if n in values)
            )
        accepted = pa.table(columns, names=self.spec.names)
        rows = rows.combine_chunks() if isinstance(rows, pa.ChunkedArray) else rows
        return Validated(accepted, rows, rejects, truncated, nul, unchanged)


def _same(a: pa.Array | pa.ChunkedArray, b: pa.Array | pa.ChunkedArray) -> bool:
    if a is b:
        return True
    a = a if isinstance(a, pa.ChunkedArray) else pa.chunked_array([a])
    b = b if isinstance(b, pa.ChunkedArray) else pa.chunked_array([b])
    return a.type == b.type and a.equals(b)


def _plain_digits(col: pa.ChunkedArray) -> bool:
    """Every value is null or 1 to 18 ASCII digits: a non-negative int64, read as the SQL would."""
    return bool(pc.all(pc.match_substring_regex(col, "^[0-9]{1,18}$")).as_py() is not False)


def _mask(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A boolean Arrow result as a numpy mask, null counting as False."""
    return pc.fill_null(values, False).to_numpy(zero_copy_only=False)


def _blank(col: pa.ChunkedArray) -> np.ndarray:
    """Null, empty or only spaces.  Only values starting with a space are trimmed: a
    regex or trim over the whole column costs more than every other check together."""
    blank = _mask(pc.or_kleene(pc.is_null(col), pc.equal(pc.binary_length(col), 0)))
    spaced = np.flatnonzero(_mask(pc.starts_with(col, " ")))
    if len(spaced):
        blank[spaced] |= _mask(pc.equal(pc.utf8_trim(pc.take(col, spaced), " "), ""))
    return blank


def _plain_types(table: pa.Table, keep: set[str]) -> pa.Table:
    """Dictionary (pandas category) and view columns as plain arrays, which every kernel
    supports; columns in ``keep`` stay dictionaries."""
    for i, f in enumerate(table.schema):
        if f.name in keep:
            continue
        t = f.type
        if pa.types.is_dictionary(t):
            t = t.value_type
        if pa.types.is_string_view(t):
            t = pa.large_string()
        elif pa.types.is_binary_view(t):
            t = pa.large_binary()
        if t != f.type:
            table = table.set_column(i, f.name, table.column(i).cast(t))
    return table


def _may_hold_nul(col: pa.ChunkedArray) -> bool:
    """Whether any value may contain a NUL byte: one memory scan of the character data.

    ``pc.match_substring`` costs ~0.4 s per 100 MB; scanning the raw bytes with numpy
    is an order of magnitude faster, and NULs are rare, so the exact per-value
    search only runs on the chunks that hold one.
    """
    return any(data.size and not data.all() for data in _character_data(col))


def _character_data(col: pa.ChunkedArray) -> Iterator[np.ndarray]:
    """The character bytes of each chunk of a string column, as numpy views (no copy)."""
    for chunk in col.chunks:
        if len(chunk) == 0:
            continue
        width = 8 if pa.types.is_large_string(chunk.type) else 4
        _validity, offsets_buf, data_buf = chunk.buffers()[:3]
        if data_buf is None:
            continue
        offsets = np.frombuffer(
            offsets_buf,
            dtype=np.int64 if width == 8 else np.int32,
            count=len(chunk) + 1,
            offset=chunk.offset * width,
        )
        yield np.frombuffer(data_buf, dtype=np.uint8)[offsets[0] : offsets[-1]]


def _row_dict(table: pa.Table, i: int) -> dict:
    """One row as a dict for the quarantine's `raw`; text as bytes, since it may be invalid UTF-8."""
    row_table = table.slice(i, 1)
    for j, f in enumerate(row_table.schema):
        if _is_text(f.type):
            row_table = row_table.set_column(j, f.name, pc.cast(row_table.column(j), pa.large_binary()))
    row = row_table.to_pylist()[0]
    row.pop(ROW, None)
    return row
