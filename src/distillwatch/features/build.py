"""Assembles the per-account feature table from the exchanges (and accounts) tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from ibis import _

from distillwatch.features import behaviour, content, enrichment, passes, registration


@dataclass
class FeatureOptions:
    """Knobs of feature extraction (all have defaults a scan can use as is)."""

    sample_per_account: int = 64  # prompts per account that get per-text enrichment
    minhash_perm: int = 64
    minhash_bands: int = 8  # 8 bands of 8 rows: near-duplicates from a Jaccard of about 0.75
    lists: enrichment.Lists = field(default_factory=enrichment.Lists)
    # Whether the exchanges (without text) are copied into a working table that every pass reads.
    # None: the engine's default, a checkpointed table on Spark and none on DuckDB (see ``build_features``).
    copy_exchanges: bool | None = None


@dataclass
class Features:
    """Everything later stages read.

    ``accounts``: one row per account seen in the exchanges (features as columns).
    ``hours``: (accounts, 24) exchange counts by UTC hour, rows aligned with ``accounts``.
    ``ex``: the exchanges with per-address facts, as an engine table.
    ``facts``: the sampled exchanges with per-text facts, as an engine table.
    ``prompt_bands``: (account_id, band) near-duplicate LSH keys, as an engine table.
    ``account_records``: the accounts table with e-mail/payment facts, as an engine table.
    ``rows``: ``ex`` without its free-text columns (``TEXT_COLUMNS``).
    """

    accounts: pa.Table
    hours: np.ndarray
    ex: ir.Table
    facts: ir.Table
    prompt_bands: ir.Table
    account_records: ir.Table
    population: dict
    # The exchanges without free text (batch scan; None on the incremental path): a view over the input
    # Parquet on DuckDB, a checkpointed table on Spark.  Stages that never read text aggregate over it,
    # so they never read the text columns.
    rows: ir.Table | None = None


def load_exchanges(con, path: str | Path) -> ir.Table:
    return con.read_parquet(str(path), table_name="dw_exchanges_raw")


def load_accounts(con, path: str | Path | None) -> ir.Table:
    if path is None:
        return registration.empty_accounts(con)
    return con.read_parquet(str(path), table_name="dw_accounts_raw")


def join_on_account(left: ir.Table, right: ir.Table) -> ir.Table:
    """``left`` with ``right``'s columns added by account (left join, one account column kept)."""
    j = left.left_join(right, left.account_id == right.account_id)
    return j.select(*[left[c] for c in left.columns], *[right[c] for c in right.columns if c != "account_id"])


# Free text of an exchange: read only for the sampled rows (content) and by the stages that quote
# prompts; never in ``Features.rows`` (it is most of a log's bytes).
TEXT_COLUMNS = ("prompt", "system", "response")


def address_facts(con, ex: ir.Table, lists: enrichment.Lists) -> ir.Table:
    """Per-address facts (``enrichment.IP_FACTS_SCHEMA``) of the distinct addresses of ``ex``, as a temp table."""
    ips = ex.select("ip").distinct().order_by("ip").to_pyarrow().column("ip").combine_chunks()
    return con.create_table("dw_ip_facts", enrichment.ip_facts(ips, lists), temp=True, overwrite=True)


def enrich_addresses(con, ex: ir.Table, lists: enrichment.Lists) -> ir.Table:
    """Per-address facts over distinct addresses, joined back; materialised once, every column kept
    (the incremental path retains and samples from it)."""
    joined = behaviour.with_time(ex).left_join(address_facts(con, ex, lists), "ip")
    return con.create_table("dw_ex", joined, temp=True, overwrite=True)


# Working tables of the content sample, read only until ``dw_facts`` and ``dw_bands`` are made.  At 90M
# exchanges they are ~10 GB (the sampled rows carry their prompt and system text) that DuckDB would
# otherwise keep in its temp directory for the rest of the scan.
WORKING_TABLES = (
    "dw_sample_levels", "dw_sample_candidates", "dw_sample_short", "dw_sample_rows", "dw_sample",
    "dw_prompt_facts", "dw_system_facts", "dw_prompt_bands",
)  # fmt: skip


def drop_working_tables(con, names: tuple[str, ...]) -> None:
    """Frees the embedded engine's working tables that no later query reads (DuckDB only: on Spark
    they are checkpointed DataFrames that ``distillwatch.spark`` manages)."""
    if con.name != "duckdb":
        return
    for name in names:
        con.drop_table(name, force=True)


def build_features(
    con,
    exchanges: ir.Table,
    accounts: ir.Table,
    options: FeatureOptions | None = None,
) -> Features:
    options = options or FeatureOptions()
    # Two views of the exchanges with address facts and time columns: ``source`` reads the input
    # (every column, text included) each time it is queried, for the few reads that need text;
    # ``ex`` is the same without the text, for the many aggregations over every row.
    ip_facts = address_facts(con, exchanges, options.lists)
    timed = behaviour.with_time(exchanges)
    source = timed.left_join(ip_facts, "ip")
    narrow = source.drop(*[c for c in TEXT_COLUMNS if c in source.columns])
    copy = options.copy_exchanges if options.copy_exchanges is not None else con.name != "duckdb"
    if not copy:
        # DuckDB reads the validated Parquet in each pass, only the columns the pass needs: a working copy
        # costs more than it saves (it writes and compresses every row: at 4.5M exchanges the stage took
        # 34.6 CPU s with the copy and 22.4 without; at 90M the copy filled 35 GB of disk).
        ex = con.create_view("dw_ex", narrow, overwrite=True)
        # The per-account passes join the address facts to their grouped rows, not to every exchange.
        plain = timed.drop(*[c for c in TEXT_COLUMNS if c in timed.columns])
    else:
        # On Spark a checkpointed table, so later passes do not recompute the input's lineage.
        ex = con.create_table("dw_ex", narrow, temp=True, overwrite=True)
        plain = ex

    # Ranked over the narrow rows, then the text of the (few) chosen rows read from the source; the
    # chosen rows are a table first, so the join builds its hash on them, not on the source's text.
    # ``plain``: the ranking reads no address facts (one row per address, so the join adds no rows).
    chosen = con.create_table(
        "dw_sample_rows",
        content.sample_exchanges(plain, options.sample_per_account, con),
        temp=True,
        overwrite=True,
    )
    sample = con.create_table("dw_sample", content.with_texts(chosen, exchanges), temp=True, overwrite=True)
    facts, bands = content.text_facts(con, sample, options.minhash_perm, options.minhash_bands)
    facts = con.create_table("dw_facts", facts, temp=True, overwrite=True)
    bands = con.create_table("dw_bands", bands, temp=True, overwrite=True)
    drop_working_tables(con, WORKING_TABLES)

    records = registration.account_facts(con, accounts, options.lists)
    records = con.create_table("dw_account_records", records, temp=True, overwrite=True)

    # The per-account features and the population profile in a few passes over the exchanges, from
    # small grouped tables (see ``passes``; the plain definitions are tests/features/reference.py).
    grouped = passes.account_parts(con, plain, ip_facts)
    parts = [*grouped.parts, content.content(facts)]
    population = population_from(grouped.totals, grouped.daily, grouped.models, facts)
    # Later stages get ``source``: they quote campaign prompts, and each reads the exchanges only a few times.
    feats = assemble_features(
        parts, records, grouped.hour_counts, population, ex=source, facts=facts, bands=bands
    )
    feats.rows = ex
    drop_working_tables(con, passes.PASS_TABLES)  # read only by the per-account parts, now computed
    return feats


def assemble_features(
    parts: list[ir.Table],
    records: ir.Table,
    hour_counts: ir.Table,
    population: dict,
    ex: ir.Table,
    facts: ir.Table,
    bands: ir.Table,
) -> Features:
    """The ``Features`` from per-account tables (the first one names every account), whether they were
    computed from the exchanges (batch scan) or merged from stored partial aggregates (incremental)."""
    per = parts[0]
    for part in [*parts[1:], records]:
        per = join_on_account(per, part)
    per = registration.registration(per).order_by("account_id")
    table = per.to_pyarrow()

    hist = behaviour.hour_histograms_from_counts(hour_counts, table.column("account_id").combine_chunks())
    table = _derived(table, hist)
    population["capabilities_by_exchange"] = population["capabilities"]
    population["capabilities"] = account_weighted_mix(table)
    return Features(
        accounts=table,
        hours=hist,
        ex=ex,
        facts=facts,
        prompt_bands=bands,
        account_records=records,
        population=population,
    )


def account_weighted_mix(table: pa.Table) -> dict[str, float]:
    """The population's capability mix with every account weighing the same.

    Weighting by exchanges would let a large campaign define "normal" (its
    thousands of accounts each send many prompts); one vote per account keeps
    the baseline on the many ordinary customers.
    """
    mix = np.column_stack([_num(table, f"cap_{c}") for c in content.CAPABILITIES])
    labelled = ~np.isnan(mix).any(axis=1) & (np.nan_to_num(mix).sum(axis=1) > 0)
    if not labelled.any():
        return {c: 0.0 for c in content.CAPABILITIES}
    mean = mix[labelled].mean(axis=0)
    mean = mean / mean.sum()
    return {c: float(v) for c, v in zip(content.CAPABILITIES, mean, strict=True)}


def _safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.divide(a, b, out=np.full(len(a), np.nan), where=(b > 0) & ~np.isnan(b))


def _num(table: pa.Table, name: str) -> np.ndarray:
    return pc.cast(table.column(name), pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64)


def _derived(table: pa.Table, hist: np.ndarray) -> pa.Table:
    """Ratios and rhythm measures, vectorised over accounts."""
    n = _num(table, "exchanges")
    derived = {
        "exchanges_per_active_day": _safe_div(n, _num(table, "active_days")),
        "interarrival_cv": _safe_div(_num(table, "gap_std"), _num(table, "gap_mean")),
        "output_input_ratio": _safe_div(_num(table, "output_tokens"), _num(table, "input_tokens")),
        "turns_per_conversation": _safe_div(_num(table, "conversation_rows"), _num(table, "conversations")),
        "ips_per_exchange": _safe_div(_num(table, "distinct_ips"), n),
    }
    first = pc.cast(table.column("first_ts"), pa.int64()).to_numpy(zero_copy_only=False)
    last = pc.cast(table.column("last_ts"), pa.int64()).to_numpy(zero_copy_only=False)
    derived["span_days"] = (last - first) / 86_400e6 + 1.0 / 24  # microseconds; at least an hour
    derived.update(behaviour.rhythm(hist))
    for name, values in derived.items():
        table = table.append_column(name, pa.array(values))
    return table


def population_from(totals: ir.Table, daily_expr: ir.Table, models_expr: ir.Table, facts: ir.Table) -> dict:
    """The population's baseline (volume, capability mix, CoT share, daily volume, models) from its parts:
    totals (exchanges, accounts, first, last), per-day (day, exchanges, accounts), per-model (model,
    first_seen, exchanges) and the sampled facts."""
    t = totals.to_pyarrow().to_pylist()[0]
    caps = facts.filter(facts.capability.notnull()).group_by("capability").aggregate(n=_.count()).to_pyarrow()
    total_caps = sum(caps.column("n").to_pylist()) or 1
    mix = {c: 0.0 for c in content.CAPABILITIES}
    for c, k in zip(caps.column("capability").to_pylist(), caps.column("n").to_pylist(), strict=True):
        mix[c] = k / total_caps
    cot = facts.aggregate(c=facts.cot.cast("float64").mean()).to_pyarrow().column("c")[0].as_py()
    daily = daily_expr.order_by("day").to_pyarrow()
    models = models_expr.order_by("first_seen").to_pyarrow()
    return {
        "exchanges": int(t["exchanges"]),
        "accounts": int(t["accounts"]),
        "first_seen": t["first"].isoformat() if t["first"] else None,
        "last_seen": t["last"].isoformat() if t["last"] else None,
        "capabilities": mix,
        "cot_share": float(cot) if cot is not None else None,
        "daily": [
            {"day": d.isoformat(), "exchanges": int(e), "accounts": int(a)}
            for d, e, a in zip(
                daily.column("day").to_pylist(),
                daily.column("exchanges").to_pylist(),
                daily.column("accounts").to_pylist(),
                strict=True,
            )
        ],
        "models": [
            {"model": m, "first_seen": f.isoformat(), "exchanges": int(e)}
            for m, f, e in zip(
                models.column("model").to_pylist(),
                models.column("first_seen").to_pylist(),
                models.column("exchanges").to_pylist(),
                strict=True,
            )
        ],
    }
