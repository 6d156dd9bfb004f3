"""Vectorised validation and normalisation of raw batches against the contract.

Work per batch:
1. pyarrow: UTF-8 checks, column-wide type checks, NUL stripping, truncation to
   ``max_text_chars``, and canonical IP addresses (validated per *distinct*
   address, then joined back: logs hold far fewer addresses than rows).
2. DuckDB: one SQL pass over the Arrow batch that parses timestamps, coerces
   integers and evaluates every check; the first failing check of a row names
   its quarantine reason and field.

Only quarantined rows (expected to be few) are ever touched one by one.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distillwatch.ingest import errors as E
from distillwatch.ingest.options import IngestOptions
from distillwatch.ingest.readers import Reject, raw_json
from distillwatch.ingest.spec import ROW, TableSpec

POS = "__pos"
CHECK = "__check"
IP_CACHE_LIMIT = 2_000_000


def _canon_prefix(name: str) -> str:
    return f"__canon_{name}"


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
    accepted: pa.Table  # exactly spec.schema
    rows: pa.Array  # row numbers of the accepted rows, same order
    rejects: list[Reject]
    truncated: Counter[str] = field(default_factory=Counter)
    nul_stripped: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class _Check:
    sql: str
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

    def close(self) -> None:
        self.con.close()

    # -- step 1: pyarrow --------------------------------------------------------------

    def _utf8_bad(self, col: pa.ChunkedArray) -> np.ndarray | None:
        """Mask of values that are not valid UTF-8, or None when all are (the fast, usual case)."""
        if _is_text(col.type):
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

    def _canon_ips(self, col: pa.ChunkedArray) -> pa.Array:
        uniq = pc.unique(col)
        cache = self._ip_cache
        if len(cache) > IP_CACHE_LIMIT:
            cache.clear()
        canon = []
        for v in uniq.to_pylist():
            if v not in cache:
                cache[v] = canonical_ip(v)
            canon.append(cache[v])
        return pc.take(pa.array(canon, pa.string()), pc.index_in(col, value_set=uniq))

    def _prepare(self, table: pa.Table) -> tuple[pa.Table, pa.Table, list[Reject], Counter, Counter]:
        """(cleaned table for SQL, the matching raw rows, rejects, truncated, nul_stripped)."""
        table = _plain_types(table)
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
                continue
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
        for name in spec.ip_fields:
            if name in clean:
                clean[_canon_prefix(name)] = self._canon_ips(clean[name])
        m = raw_table.num_rows
        clean[ROW] = raw_table[ROW]
        clean[POS] = pa.chunked_array([pa.array(np.arange(m, dtype=np.int64))])
        return pa.table(clean), raw_table, rejects, truncated, nul

    # -- step 2: one SQL pass -----------------------------------------------------------

    def _sql(self, table: pa.Table) -> tuple[str, list[_Check], list[str]]:
        """(query, its checks by index, string columns that bypass SQL untouched)."""
        passthrough: list[str] = []
        checks_required: list[_Check] = []
        checks: list[_Check] = []
        exprs: list[str] = []
        names = set(table.column_names)
        for f in self.spec.fields:
            q = f'"{f.name}"'  # identifiers come from contract.py, never from input
            if f.name not in names:
                duck = (
                    "TIMESTAMPTZ"
                    if pa.types.is_timestamp(f.type)
                    else ("BIGINT" if pa.types.is_integer(f.type) else "VARCHAR")
                )
                exprs.append(f"CAST(NULL AS {duck}) AS {q}")
                if f.required:
                    checks_required.append(_Check("TRUE", E.MISSING_REQUIRED, f.name, f"no {f.name} field"))
                continue
            t = table.schema.field(f.name).type
            text = _is_text(t)
            blank = f"({q} IS NULL OR trim({q}) = '')" if text else f"({q} IS NULL)"
            if f.required:
                checks_required.append(
                    _Check(blank, E.MISSING_REQUIRED, f.name, f"{f.name} is missing or blank")
                )
            if pa.types.is_timestamp(f.type):
                value = f"TRY_CAST(trim({q}) AS TIMESTAMPTZ)" if text else f"CAST({q} AS TIMESTAMPTZ)"
                if text:
                    checks.append(
                        _Check(
                            f"(NOT {blank} AND {value} IS NULL)",
                            E.BAD_TIMESTAMP,
                            f.name,
                            f"{f.name} is not an ISO 8601 timestamp",
                        )
                    )
                checks.append(
                    _Check(
                        f"({value} < $min_ts OR {value} > $max_ts)",
                        E.TIMESTAMP_OUT_OF_RANGE,
                        f.name,
                        f"{f.name} is outside min_ts..max_ts",
                    )
                )
                exprs.append(f"{value} AS {q}")
            elif pa.types.is_integer(f.type):
                if text:
                    trimmed = f"trim({q})"
                    value = f"TRY_CAST(regexp_extract({trimmed}, '^[+-]?[0-9]+') AS BIGINT)"
                    looks_int = f"regexp_full_match({trimmed}, '[+-]?[0-9]+(\\.0*)?')"
                    checks.append(
                        _Check(
                            f"(NOT {blank} AND NOT {looks_int})",
                            E.WRONG_TYPE,
                            f.name,
                            f"{f.name} is not an integer",
                        )
                    )
                    checks.append(
                        _Check(
                            f"(NOT {blank} AND ({value} IS NULL OR {value} < 0))",
                            E.OUT_OF_RANGE,
                            f.name,
                            f"{f.name} is negative or too large",
                        )
                    )
                    exprs.append(f"CASE WHEN {blank} THEN NULL ELSE {value} END AS {q}")
                elif pa.types.is_floating(t):
                    checks.append(
                        _Check(
                            f"(NOT {blank} AND (NOT isfinite({q}) OR {q} <> floor({q})))",
                            E.WRONG_TYPE,
                            f.name,
                            f"{f.name} is not a whole number",
                        )
                    )
                    checks.append(
                        _Check(
                            f"(NOT {blank} AND ({q} < 0 OR {q} >= 9.2e18))",
                            E.OUT_OF_RANGE,
                            f.name,
                            f"{f.name} is negative or too large",
                        )
                    )
                    exprs.append(
                        f"CASE WHEN isfinite({q}) AND {q} = floor({q}) AND {q} >= 0 AND {q} < 9.2e18 THEN CAST({q} AS BIGINT) END AS {q}"
                    )
                else:
                    checks.append(_Check(f"({q} < 0)", E.OUT_OF_RANGE, f.name, f"{f.name} is negative"))
                    exprs.append(f"CAST({q} AS BIGINT) AS {q}")
            elif f.name in self.spec.ip_fields:
                canon = f'"{_canon_prefix(f.name)}"'
                checks.append(
                    _Check(
                        f"(NOT {blank} AND {canon} IS NULL)",
                        E.BAD_IP,
                        f.name,
                        f"{f.name} is not an IPv4 or IPv6 address",
                    )
                )
                exprs.append(f"{canon} AS {q}")
            elif f.name in self.spec.country_fields:
                norm = f"upper(trim({q}))"
                checks.append(
                    _Check(
                        f"({norm} <> '' AND NOT regexp_full_match({norm}, '[A-Z]{{2}}'))",
                        E.BAD_VALUE,
                        f.name,
                        f"{f.name} is not an ISO 3166 alpha-2 code",
                    )
                )
                exprs.append(f"NULLIF({norm}, '') AS {q}")
            elif f.required:
                exprs.append(f"{q}")
            else:
                # Free text needs no SQL; keeping it out of DuckDB saves copying prompts twice.
                passthrough.append(f.name)
        all_checks = checks_required + checks
        case = " ".join(f"WHEN {c.sql} THEN {i}" for i, c in enumerate(all_checks))
        check_expr = f"CASE {case} END" if all_checks else "NULL"
        sql = f'SELECT {check_expr} AS {CHECK}, {", ".join(exprs)}, "{POS}" FROM batch'  # noqa: S608 - identifiers only
        return sql, all_checks, passthrough

    def validate(self, table: pa.Table) -> Validated:
        clean, raw_table, rejects, truncated, nul = self._prepare(table)
        sql, checks, passthrough = self._sql(clean)
        self.con.register("batch", clean.drop_columns(passthrough))
        try:
            result = self.con.sql(
                sql, params={"min_ts": self.options.min_ts, "max_ts": self.options.max_ts}
            ).to_arrow_table()
        finally:
            self.con.unregister("batch")
        ok = pc.is_null(result[CHECK])
        failed = pc.invert(ok)
        if pc.any(failed).as_py():
            bad = result.filter(failed)
            positions = bad[POS].to_pylist()
            raws = raw_table.take(pa.array(positions))
            row_numbers = raws[ROW].to_pylist()
            for j, (check, pos) in enumerate(zip(bad[CHECK].to_pylist(), positions, strict=True)):
                c = checks[check]
                raw = raw_json(_row_dict(raw_table, pos), self.options.raw_max_chars)
                rejects.append(Reject(int(row_numbers[j]), c.field, c.reason, c.detail, raw))
            result = result.filter(ok)
        positions = result[POS]
        # Usually every row passes and DuckDB kept the order: then free text needs no copy.
        identity = result.num_rows == clean.num_rows and positions.equals(clean[POS])

        def text(name: str) -> pa.ChunkedArray:
            return clean[name] if identity else pc.take(clean[name], positions)

        accepted = pa.table(
            [result[n] if n not in passthrough else text(n) for n in self.spec.names],
            names=self.spec.names,
        ).cast(self.spec.schema)
        rows = (
            pc.take(raw_table[ROW], positions).combine_chunks()
            if result.num_rows
            else pa.array([], pa.int64())
        )
        return Validated(accepted, rows, rejects, truncated, nul)


def _plain_types(table: pa.Table) -> pa.Table:
    """Dictionary (pandas category) and view columns as plain arrays, which every kernel supports."""
    for i, f in enumerate(table.schema):
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
    for chunk in col.chunks:
        if len(chunk) == 0:
            continue
        width = 8 if pa.types.is_large_string(chunk.type) else 4
        validity, offsets_buf, data_buf = chunk.buffers()[:3]
        if data_buf is None:
            continue
        offsets = np.frombuffer(
            offsets_buf,
            dtype=np.int64 if width == 8 else np.int32,
            count=len(chunk) + 1,
            offset=chunk.offset * width,
        )
        data = np.frombuffer(data_buf, dtype=np.uint8)[offsets[0] : offsets[-1]]
        if data.size and not data.all():
            return True
    return False


def _row_dict(table: pa.Table, i: int) -> dict:
    """One row as a dict for the quarantine's `raw`; text as bytes, since it may be invalid UTF-8."""
    row_table = table.slice(i, 1)
    for j, f in enumerate(row_table.schema):
        if _is_text(f.type):
            row_table = row_table.set_column(j, f.name, pc.cast(row_table.column(j), pa.large_binary()))
    row = row_table.to_pylist()[0]
    row.pop(ROW, None)
    return row
