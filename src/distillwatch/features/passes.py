"""The batch scan's per-account features in few passes over the exchanges.

``volume_and_rate``, ``daily``, ``model_pivot``, ``infrastructure`` and
``population_profile`` in ``tests/features/reference.py`` are the plain definitions (the
specification these passes are tested against); each reads every exchange, several of them
more than once (13 passes in all, eight distinct counts per account among them; ~11 of the
stage's 17 minutes at 90M exchanges).
``account_parts`` computes the same values (same columns, types and order) from a
few small grouped tables, each made in one pass and kept as a working table:

* per (account, model): exchanges and first use (distinct models, the pivot), and from it per model
  (the model pivot's release times, the population's models);
* per account: counts, sums, extremes and the conversations' distinct count;
* per (account, UTC day number, calendar day): exchanges (active days, streaks, the population's days);
* per (account, address, ASN, country, client, organisation): exchanges.  Distinct counts of any
  of these columns over the distinct combinations equal those over the exchanges, and the
  per-address facts (prefix, datacenter, provider) are joined to these rows, not to every exchange;
* per (account, hour of day) and the inter-arrival gaps, as before.

Exact, not estimated: counts and integer sums add, a minimum of minima is the minimum, and a
share of exchanges is an integer count over an integer count (as the plain mean of 0/1 values).
Table work only (Ibis), so it runs on DuckDB and Spark alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import ibis
import ibis.expr.types as ir

from distillwatch.features import behaviour
from distillwatch.features.infrastructure import most_frequent

# The columns an account's infrastructure is counted over (the per-address facts come from ``ip``).
INFRA_KEYS = ("account_id", "ip", "asn", "country", "user_agent", "org_id")

# Working tables of ``account_parts``, kept for the rest of the scan (all are per account or smaller).
PASS_TABLES = (
    "dw_model_firsts",
    "dw_account_volume",
    "dw_account_models",
    "dw_account_days",
    "dw_account_infra",
)


@dataclass
class AccountParts:
    """Inputs of ``build.assemble_features`` and ``build.population_from``."""

    parts: list[ir.Table]  # volume_and_rate, daily, model_pivot, infrastructure (in that order)
    hour_counts: ir.Table
    totals: ir.Table
    daily: ir.Table
    models: ir.Table


def account_parts(con, ex: ir.Table, ip_facts: ir.Table) -> AccountParts:
    """The per-account parts of the feature table from ``ex`` (``behaviour.with_time`` applied; the
    per-address facts need not be joined) and ``ip_facts`` (``enrichment.IP_FACTS_SCHEMA``)."""

    def stash(name: str, table: ir.Table) -> ir.Table:
        return con.create_table(name, table, temp=True, overwrite=True)

    # Per (account, model), null model included: per model, the first use over the accounts' first uses
    # is the model's, and the smallest over all models (null included) is the log's start.
    model_use = stash(
        "dw_account_models",
        ex.group_by(["account_id", "model"]).aggregate(
            n=ex.count(), first_sec=ex.sec.min(), first_ts=ex.ts.min()
        ),
    )
    models = model_use.group_by("model").aggregate(
        first_seen=model_use.first_ts.min(),
        model_first=model_use.first_sec.min(),
        exchanges=model_use.n.sum(),
    )
    models = stash("dw_model_firsts", models)
    named = models.filter(models.model.notnull())
    start = models.model_first.min().as_scalar()
    new = named.filter(named.model_first > start + behaviour.DAY).select("model", "model_first")
    first_release = new.model_first.min().as_scalar()

    marked = ex.mutate(after=(ex.sec >= first_release).cast("int64"))
    volume = stash(
        "dw_account_volume",
        marked.group_by("account_id").aggregate(
            exchanges=marked.count(),
            first_ts=marked.ts.min(),
            last_ts=marked.ts.max(),
            input_tokens=marked.input_tokens.sum(),
            output_tokens=marked.output_tokens.sum(),
            tool_share=(marked.n_tools.fill_null(0) > 0).cast("float64").mean(),
            conversations=marked.conversation_id.nunique(),
            conversation_rows=marked.conversation_id.notnull().cast("int64").sum(),
            after_release=marked.after.sum(),
        ),
    )
    days = stash(
        "dw_account_days",
        ex.group_by(["account_id", "daynum", ex.ts.date().name("day")]).aggregate(n=ex.count()),
    )
    keys = stash("dw_account_infra", ex.group_by(list(INFRA_KEYS)).aggregate(n=ex.count()))

    per_day = days.group_by(["account_id", "daynum"]).aggregate(n=days.n.sum())
    return AccountParts(
        parts=[
            _volume_and_rate(volume, model_use, days, behaviour.inter_arrival(ex)),
            behaviour.daily_from_counts(per_day),
            _model_pivot(volume, model_use, new),
            _infrastructure(keys, ip_facts),
        ],
        hour_counts=ex.group_by(["account_id", "hour"]).aggregate(n=ex.count()),
        totals=volume.aggregate(
            exchanges=volume.exchanges.sum(),
            accounts=volume.account_id.count(),
            first=volume.first_ts.min(),
            last=volume.last_ts.max(),
        ),
        daily=days.group_by("day").aggregate(exchanges=days.n.sum(), accounts=days.account_id.nunique()),
        models=named.select("model", "first_seen", "exchanges"),
    )


def _volume_and_rate(volume: ir.Table, model_use: ir.Table, days: ir.Table, gaps: ir.Table) -> ir.Table:
    """The reference ``volume_and_rate``'s columns, in its order."""
    models = model_use.group_by("account_id").aggregate(models=model_use.model.count())  # non-null models
    active = days.group_by("account_id").aggregate(active_days=days.daynum.nunique())
    j = (
        volume.left_join(gaps, volume.account_id == gaps.account_id)
        .left_join(models, volume.account_id == models.account_id)
        .left_join(active, volume.account_id == active.account_id)
    )
    return j.select(
        volume.account_id, volume.exchanges, volume.first_ts, volume.last_ts,
        active_days=active.active_days.fill_null(0), gap_mean=gaps.gap_mean, gap_std=gaps.gap_std,
        input_tokens=volume.input_tokens, output_tokens=volume.output_tokens, tool_share=volume.tool_share,
        conversations=volume.conversations, conversation_rows=volume.conversation_rows,
        models=models.models.fill_null(0),
    )  # fmt: skip


def _model_pivot(volume: ir.Table, model_use: ir.Table, new: ir.Table) -> ir.Table:
    """The reference ``model_pivot`` from per-(account, model) first uses: an account's earliest lag
    behind a new model is its first use of the model minus the model's first appearance (a
    difference is monotone in its first term, so the minimum of differences is this)."""
    uses = model_use.join(new, model_use.model == new.model)
    on_new = uses.group_by("account_id").aggregate(
        on_new=uses.n.sum(), first_new_use_lag=(uses.first_sec - uses.model_first).min()
    )
    j = volume.left_join(on_new, volume.account_id == on_new.account_id)
    on = j.on_new.fill_null(0)
    return j.select(
        account_id=volume.account_id,
        pivot_share=ibis.ifelse(j.after_release > 0, on / j.after_release, 0.0),
        pivot_lag_hours=j.first_new_use_lag / 3600.0,
    )


def _infrastructure(keys: ir.Table, ip_facts: ir.Table) -> ir.Table:
    """The reference ``infrastructure`` from exchange counts per distinct (``INFRA_KEYS``)."""
    facts = ip_facts.select("ip", "prefix", "is_datacenter", "is_vpn", "is_tor", "provider")
    k = keys.left_join(facts, keys.ip == facts.ip).select(
        *[keys[c] for c in INFRA_KEYS], keys.n, facts.prefix, facts.is_datacenter, facts.is_vpn, facts.is_tor,
        facts.provider,
    )  # fmt: skip

    def share(flag: ir.BooleanColumn) -> ir.FloatingScalar:
        # The plain mean of 0/1 values over the exchanges: a count over a count.
        return (k.n * flag.fill_null(False).cast("int64")).sum().cast("float64") / k.n.sum().cast("float64")

    per = k.group_by("account_id").aggregate(
        distinct_ips=k.ip.nunique(),
        distinct_prefixes=k.prefix.nunique(),
        distinct_asns=k.asn.nunique(),
        distinct_user_agents=k.user_agent.nunique(),
        distinct_countries=k.country.nunique(),
        datacenter_share=share(k.is_datacenter),
        vpn_share=share(k.is_vpn),
        tor_share=share(k.is_tor),
    )
    for column, name in (("provider", "top_provider"), ("org_id", "request_org")):
        named = k.filter(k[column].notnull())
        counts = named.group_by(["account_id", named[column].name("value")]).aggregate(n=named.n.sum())
        per = per.left_join(most_frequent(counts, name), "account_id").drop("account_id_right")
    return per
