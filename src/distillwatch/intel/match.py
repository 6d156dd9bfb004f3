"""Matching accounts against partners' indicators (imported with `distillwatch intel import`).

Given the scan's tables (exchanges with `ip` and optionally `asn`, a sample of
exchanges with `template_hash`, account records with `email_domain`) and the
store, `match_accounts` returns one row per account that matches anything:
how much of its traffic matches, which partners reported it, and a reason in
words.  The partner-indicator signal (`signals/partner_indicators.py`) turns
that into a detection signal.

Value per account: for each matched kind, weight x coverage x partner
confidence, combined as a noisy-OR (independent pieces of evidence add up but
never pass 1).  Coverage is the share of the account's exchanges (addresses,
ASNs), of its sampled prompts (templates), or 1 (its e-mail domain).  ASNs and
e-mail domains weigh less: honest customers share them.
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime

import duckdb
import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from ibis import _

KIND_WEIGHTS = {"ipv4-prefix": 1.0, "ipv6-prefix": 1.0, "template-hash": 1.0, "email-domain": 0.6, "asn": 0.4}
DEFAULT_CONFIDENCE = 80  # when the partner's indicator carries none
MAX_VALUES_IN_REASON = 3

RESULT_SCHEMA = pa.schema(
    [
        ("account_id", pa.string()),
        ("value", pa.float64()),
        ("partners", pa.string()),
        ("reason", pa.string()),
    ]
)


def active_indicators(con: duckdb.DuckDBPyConnection, now: datetime | None = None) -> pa.Table:
    """Partner indicators still valid at `now`: partner, kind, value, campaign_ref, confidence (0..100).

    `campaign_ref` is the partner campaign the indicator indicates, merged with
    the partner's other campaigns that share a network range or template with it
    (a partner's detection may split one operation into several campaigns; the
    shared values show they are one).  '' when the bundle named no campaign.
    """
    now = now or datetime.now(UTC)
    ind = con.sql(
        """
        SELECT partner, kind, value, coalesce(campaign_ref, '') AS campaign_ref,
               coalesce(max(confidence), ?) AS confidence
        FROM intel_partner_indicators
        WHERE valid_until IS NULL OR valid_until > ?
        GROUP BY ALL ORDER BY ALL
        """,
        params=[DEFAULT_CONFIDENCE, now],
    ).to_arrow_table()
    groups = _campaign_groups(ind)
    if not groups:
        return ind
    refs = pc.binary_join_element_wise(ind["partner"], ind["campaign_ref"], "|").to_pylist()
    # bounded by the indicator count; a campaign with no strong value keeps its own ref
    merged = pa.array([groups.get(r, r.split("|", 1)[1]) for r in refs], pa.string())
    ind = ind.set_column(ind.schema.get_field_index("campaign_ref"), "campaign_ref", merged)
    return (
        ind.group_by(["partner", "kind", "value", "campaign_ref"])
        .aggregate([("confidence", "max")])
        .rename_columns(["partner", "kind", "value", "campaign_ref", "confidence"])
        .sort_by(
            [
                ("partner", "ascending"),
                ("kind", "ascending"),
                ("value", "ascending"),
                ("campaign_ref", "ascending"),
            ]
        )
    )


def _campaign_groups(ind: pa.Table) -> dict[str, str]:
    """'partner|campaign_ref' -> the smallest campaign_ref of its group of campaigns sharing a strong value."""
    rows = ind.filter(
        pc.and_(
            pc.is_in(ind["kind"], value_set=pa.array(STRONG_KINDS)), pc.not_equal(ind["campaign_ref"], "")
        )
    )
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    first_ref: dict[tuple[str, str, str], str] = {}
    for partner, kind, value, ref in zip(
        rows["partner"].to_pylist(),
        rows["kind"].to_pylist(),
        rows["value"].to_pylist(),
        rows["campaign_ref"].to_pylist(),
        strict=True,
    ):  # indicators, not traffic: a few thousand rows
        key, node = (partner, kind, value), f"{partner}|{ref}"
        find(node)
        if key in first_ref:
            a, b = find(first_ref[key]), find(node)
            if a != b:
                parent[max(a, b)] = min(a, b)
        else:
            first_ref[key] = node
    return {node: find(node).split("|", 1)[1] for node in parent}


_V4 = r"^(?P<a>\d{1,3})\.(?P<b>\d{1,3})\.(?P<c>\d{1,3})\.(?P<d>\d{1,3})$"


def _ip_numbers(ips: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(family 4/6 or 0 if invalid, high 64 bits, low 64 bits) of each distinct address.

    IPv4 is parsed vectorised; IPv6 (rarer, and awkward to vectorise) through
    `ipaddress` on the distinct IPv6 addresses only.
    """
    n = len(ips)
    fam = np.zeros(n, np.int8)
    hi = np.zeros(n, np.uint64)
    lo = np.zeros(n, np.uint64)
    parts = pc.extract_regex(pc.fill_null(ips, ""), _V4)
    v4 = np.asarray(pc.is_valid(parts).to_numpy(zero_copy_only=False), dtype=bool)
    if v4.any():
        octets = [
            np.asarray(
                pc.cast(pc.fill_null(pc.struct_field(parts, k), "0"), pa.int64()).to_numpy(
                    zero_copy_only=False
                )
            )
            for k in "abcd"
        ]
        ok = v4 & np.all([o <= 255 for o in octets], axis=0)
        value = sum(o.astype(np.uint64) << np.uint64(8 * (3 - i)) for i, o in enumerate(octets))
        fam[ok], lo[ok] = 4, value[ok]
    maybe_v6 = np.flatnonzero(
        ~v4
        & np.asarray(
            pc.match_substring(pc.fill_null(ips, ""), ":").to_numpy(zero_copy_only=False), dtype=bool
        )
    )
    for i, raw in zip(maybe_v6, ips.take(pa.array(maybe_v6, pa.int64())).to_pylist(), strict=True):
        try:
            addr = ipaddress.IPv6Address(raw)
        except ValueError:
            continue
        v = int(addr)
        fam[i], hi[i], lo[i] = 6, v >> 64, v & 0xFFFFFFFFFFFFFFFF
    return fam, hi, lo


def match_addresses(ips: pa.Array, indicators: pa.Table) -> pa.Table:
    """(ip, partner, kind, value, campaign_ref, confidence) for every distinct address inside a partner's network.

    A range join in DuckDB over 128-bit integers, so thousands of networks and
    millions of addresses stay fast; nested networks from several partners all match.
    """
    nets = indicators.filter(pc.is_in(indicators["kind"], value_set=pa.array(["ipv4-prefix", "ipv6-prefix"])))
    empty = pa.table(
        {
            "ip": pa.array([], pa.string()),
            "partner": pa.array([], pa.string()),
            "kind": pa.array([], pa.string()),
            "value": pa.array([], pa.string()),
            "campaign_ref": pa.array([], pa.string()),
            "confidence": pa.array([], pa.int32()),
        }
    )
    if nets.num_rows == 0 or len(ips) == 0:
        return empty
    ips = pc.unique(ips.combine_chunks() if isinstance(ips, pa.ChunkedArray) else ips)
    fam, hi, lo = _ip_numbers(ips)
    addr = pa.table({"ip": ips, "fam": fam, "hi": hi, "lo": lo})
    starts, ends, nfam = [], [], []
    for value in nets["value"].to_pylist():  # a few thousand networks at most
        net = ipaddress.ip_network(value, strict=False)
        nfam.append(net.version)
        starts.append(int(net.network_address))
        ends.append(int(net.broadcast_address))
    net_t = nets.append_column("fam", pa.array(nfam, pa.int8()))
    net_t = net_t.append_column("start_hi", pa.array([s >> 64 for s in starts], pa.uint64()))
    net_t = net_t.append_column("start_lo", pa.array([s & 0xFFFFFFFFFFFFFFFF for s in starts], pa.uint64()))
    net_t = net_t.append_column("end_hi", pa.array([e >> 64 for e in ends], pa.uint64()))
    net_t = net_t.append_column("end_lo", pa.array([e & 0xFFFFFFFFFFFFFFFF for e in ends], pa.uint64()))
    db = duckdb.connect()
    try:
        db.register("addr", addr)
        db.register("nets", net_t)
        return db.sql(
            """
            WITH a AS (SELECT ip, fam, hi::UHUGEINT * 18446744073709551616::UHUGEINT + lo::UHUGEINT AS v FROM addr WHERE fam > 0),
                 n AS (SELECT partner, kind, value, campaign_ref, confidence, fam,
                              start_hi::UHUGEINT * 18446744073709551616::UHUGEINT + start_lo::UHUGEINT AS s,
                              end_hi::UHUGEINT * 18446744073709551616::UHUGEINT + end_lo::UHUGEINT AS e FROM nets)
            SELECT a.ip, n.partner, n.kind, n.value, n.campaign_ref, n.confidence
            FROM a JOIN n ON a.fam = n.fam AND a.v BETWEEN n.s AND n.e
            ORDER BY ALL
            """
        ).to_arrow_table()
    finally:
        db.close()


def _keyed(indicators: pa.Table, key: str) -> pa.Table:
    """The indicators with their value also under the column name it is joined on."""
    return indicators.append_column(key, indicators["value"])


def _coverage(rows: ir.Table, key: str, matched: pa.Table) -> pa.Table | None:
    """Per (account, partner, kind, partner campaign): matched rows / the account's rows with `key` known, and the values matched."""
    if matched.num_rows == 0:
        return None
    known = rows.filter(rows[key].notnull())
    totals = known.group_by("account_id").aggregate(total=_.count())
    m = ibis.memtable(matched.select([key, "partner", "kind", "value", "campaign_ref", "confidence"]))
    j = known.select("account_id", known[key].cast("string").name(key)).join(m, key)
    per = j.group_by(["account_id", "partner", "kind", "campaign_ref"]).aggregate(
        hits=_.count(), confidence=_.confidence.max(), values=_.value.collect(distinct=True)
    )
    return per.join(totals, "account_id").to_pyarrow()


DETAIL_COLUMNS = ["account_id", "partner", "kind", "campaign_ref", "hits", "total", "confidence", "values"]


def match_details(
    con: duckdb.DuckDBPyConnection,
    exchanges: ir.Table | None = None,
    facts: ir.Table | None = None,
    account_records: ir.Table | None = None,
    now: datetime | None = None,
) -> pa.Table | None:
    """Per (account, partner, kind, partner campaign): hits, total, confidence, values matched.  None: no match."""
    ind = active_indicators(con, now)
    if ind.num_rows == 0:
        return None

    def by_kind(kind: str, key: str) -> pa.Table:
        return _keyed(ind.filter(pc.equal(ind["kind"], kind)), key)

    # (rows, column matched, indicators for it); coverage is counted over the rows where the column is known
    sources: list[tuple[ir.Table, str, pa.Table]] = []
    if exchanges is not None:
        ips = exchanges.select("ip").distinct().to_pyarrow()["ip"]
        sources.append((exchanges, "ip", match_addresses(ips, ind)))
        if "asn" in exchanges.columns:
            sources.append((exchanges, "asn", by_kind("asn", "asn")))
    if facts is not None and "template_hash" in facts.columns:
        sources.append((facts, "template_hash", by_kind("template-hash", "template_hash")))
    if account_records is not None and "email_domain" in account_records.columns:
        sources.append((account_records, "email_domain", by_kind("email-domain", "email_domain")))
    parts = [got for rows, key, matched in sources if (got := _coverage(rows, key, matched)) is not None]
    if not parts:
        return None
    return pa.concat_tables([p.select(DETAIL_COLUMNS) for p in parts], promote_options="permissive")


def match_accounts(
    con: duckdb.DuckDBPyConnection,
    exchanges: ir.Table | None = None,
    facts: ir.Table | None = None,
    account_records: ir.Table | None = None,
    now: datetime | None = None,
    details: pa.Table | None = None,
) -> pa.Table:
    """One row per account that matches a partner indicator: account_id, value (0..1), partners, reason."""
    if details is None:
        details = match_details(con, exchanges, facts, account_records, now)
    return RESULT_SCHEMA.empty_table() if details is None or details.num_rows == 0 else _summarise(details)


STRONG_KINDS = ("ipv4-prefix", "ipv6-prefix", "template-hash")


def campaign_keys(details: pa.Table | None, min_coverage: float = 0.3) -> pa.Table:
    """(account_id, key) linking accounts whose traffic largely matches the same partner campaign.

    Only network ranges and templates count (ASNs and e-mail domains are shared by
    honest users); the account's best coverage by one of them must reach `min_coverage`.
    """
    empty = pa.table({"account_id": pa.array([], pa.string()), "key": pa.array([], pa.string())})
    if details is None or details.num_rows == 0:
        return empty
    cov = pc.divide(
        pc.cast(details["hits"], pa.float64()),
        pc.cast(pc.max_element_wise(details["total"], 1), pa.float64()),
    )
    strong = pc.and_(
        pc.is_in(details["kind"], value_set=pa.array(STRONG_KINDS)), pc.not_equal(details["campaign_ref"], "")
    )
    d = details.append_column("coverage", cov).filter(strong)
    best = d.group_by(["account_id", "partner", "campaign_ref"]).aggregate([("coverage", "max")])
    best = best.filter(pc.greater_equal(best["coverage_max"], min_coverage))
    if best.num_rows == 0:
        return empty
    key = pc.binary_join_element_wise(
        pa.scalar("partner:"), best["partner"], pa.scalar("|"), best["campaign_ref"], ""
    )
    return pa.table({"account_id": best["account_id"], "key": key}).sort_by(
        [("account_id", "ascending"), ("key", "ascending")]
    )


def _summarise(per: pa.Table) -> pa.Table:
    """(account, partner, kind) rows -> one row per account with value and reason, in DuckDB."""
    weights = pa.table({"kind": list(KIND_WEIGHTS), "weight": list(KIND_WEIGHTS.values())})
    db = duckdb.connect()
    try:
        db.register("per", per)
        db.register("weights", weights)
        return (
            db.sql(
                """
            WITH per_kind AS (
                SELECT account_id, partner, kind, max(hits) AS hits, max(total) AS total,
                       max(confidence) AS confidence, list_distinct(flatten(list("values"))) AS "values"
                FROM per GROUP BY ALL
            ),
            k AS (
                SELECT account_id, partner, kind,
                       least(hits::DOUBLE / greatest(total, 1), 1.0) AS coverage,
                       w.weight * least(hits::DOUBLE / greatest(total, 1), 1.0) * coalesce(confidence, $default_conf) / 100.0 AS v,
                       list_sort(values)[1:$shown] AS shown, len(values) AS n_values
                FROM per_kind JOIN weights w USING (kind)
            )
            SELECT account_id,
                   1.0 - product(1.0 - v) AS value,
                   string_agg(DISTINCT partner, ', ' ORDER BY partner) AS partners,
                   'matches indicators shared by partners: ' || string_agg(
                       'partner ' || partner || ' reported ' || kind || ' ' || array_to_string(shown, ', ')
                       || CASE WHEN n_values > $shown THEN ' and ' || (n_values - $shown) || ' more' ELSE '' END
                       || CASE WHEN kind = 'email-domain' THEN ' (its e-mail domain)'
                               WHEN kind = 'template-hash' THEN ' (' || round(100 * coverage)::INT || '% of its sampled prompts)'
                               ELSE ' (' || round(100 * coverage)::INT || '% of its exchanges)' END,
                       '; ' ORDER BY v DESC, partner, kind) AS reason
            FROM k GROUP BY account_id ORDER BY account_id
            """,
                params={"default_conf": DEFAULT_CONFIDENCE, "shown": MAX_VALUES_IN_REASON},
            )
            .to_arrow_table()
            .cast(RESULT_SCHEMA)
        )
    finally:
        db.close()
