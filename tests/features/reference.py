"""The readable specification of the per-account features that ``features.passes`` computes fast.

The batch scan never runs these: ``passes.account_parts`` derives the same columns (same names,
types, order and values, floats exactly) from a few small grouped tables, each made in one pass
over the exchanges.  Each definition below says what a feature *is* in the most direct Ibis
expression over every exchange (several of them read every exchange more than once), and
``tests/features/test_passes.py`` checks the fast passes against them value for value.
The incremental merge (``incremental.merge``) reproduces the same columns from stored partials.

Every function takes the exchanges with ``features.behaviour.with_time`` applied and, for
``infrastructure``, the per-address facts (``features.enrichment.IP_FACTS_SCHEMA``) joined by ``ip``.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir
from ibis import _

from distillwatch.features.behaviour import DAY, daily_from_counts, inter_arrival
from distillwatch.features.build import population_from
from distillwatch.features.infrastructure import most_frequent


def volume_and_rate(ex: ir.Table) -> ir.Table:
    """Exchanges, active days, rate, inter-arrival regularity, tokens, tools, conversations."""
    has_tools = (ex.n_tools.fill_null(0) > 0).cast("float64")
    per = ex.group_by("account_id").aggregate(
        exchanges=ex.count(),
        first_ts=ex.ts.min(),
        last_ts=ex.ts.max(),
        active_days=ex.daynum.nunique(),
        input_tokens=ex.input_tokens.sum(),
        output_tokens=ex.output_tokens.sum(),
        tool_share=has_tools.mean(),
        conversations=ex.conversation_id.nunique(),
        conversation_rows=ex.conversation_id.notnull().cast("int64").sum(),
        models=ex.model.nunique(),
    )
    gaps = inter_arrival(ex)
    j = per.left_join(gaps, per.account_id == gaps.account_id)
    return j.select(
        per.account_id, per.exchanges, per.first_ts, per.last_ts, per.active_days, gaps.gap_mean, gaps.gap_std,
        per.input_tokens, per.output_tokens, per.tool_share, per.conversations, per.conversation_rows, per.models,
    )  # fmt: skip


def daily(ex: ir.Table) -> ir.Table:
    """Busiest day and the longest run of consecutive active days (gaps and islands)."""
    return daily_from_counts(ex.group_by(["account_id", "daynum"]).aggregate(n=ex.count()))


def model_pivot(ex: ir.Table) -> ir.Table:
    """How fast and how completely an account moved to a model released during the window.

    A model counts as newly released when the population first used it more than
    a day after the data begins.  ``pivot_share`` is the share of the account's
    exchanges after the first release that went to a new model; ``pivot_lag_hours``
    the delay between the model's first appearance and the account's first use.
    """
    start = ex.sec.min().as_scalar()
    firsts = ex.filter(ex.model.notnull()).group_by("model").aggregate(model_first=_.sec.min())
    new = firsts.filter(firsts.model_first > start + DAY)
    first_release = new.model_first.min().as_scalar()
    joined = ex.left_join(new, ex.model == new.model)
    is_new = joined.model_first.notnull()
    after = joined.sec >= first_release
    per = joined.group_by("account_id").aggregate(
        after_release=after.cast("int64").sum(),
        on_new=is_new.cast("int64").sum(),
        first_new_use_lag=ibis.ifelse(is_new, joined.sec - joined.model_first, ibis.null()).min(),
    )
    return per.mutate(
        pivot_share=ibis.ifelse(per.after_release > 0, per.on_new / per.after_release, 0.0),
        pivot_lag_hours=per.first_new_use_lag / 3600.0,
    ).select("account_id", "pivot_share", "pivot_lag_hours")


def infrastructure(ex: ir.Table) -> ir.Table:
    """How many addresses, prefixes, networks and clients an account uses, and how much of its
    traffic comes from datacenter, VPN and Tor addresses; its most used provider and organisation."""
    flag = lambda col: col.fill_null(False).cast("float64").mean()  # noqa: E731
    per = ex.group_by("account_id").aggregate(
        distinct_ips=ex.ip.nunique(),
        distinct_prefixes=ex.prefix.nunique(),
        distinct_asns=ex.asn.nunique(),
        distinct_user_agents=ex.user_agent.nunique(),
        distinct_countries=ex.country.nunique(),
        datacenter_share=flag(ex.is_datacenter),
        vpn_share=flag(ex.is_vpn),
        tor_share=flag(ex.is_tor),
    )
    for column, name in (("provider", "top_provider"), ("org_id", "request_org")):
        named = ex.filter(ex[column].notnull())
        counts = named.group_by(["account_id", named[column].name("value")]).aggregate(n=named.count())
        per = per.left_join(most_frequent(counts, name), "account_id").drop("account_id_right")
    return per


def hour_counts(ex: ir.Table) -> ir.Table:
    """Exchanges per (account, UTC hour of day)."""
    return ex.group_by(["account_id", "hour"]).aggregate(n=ex.count())


def population_profile(ex: ir.Table, facts: ir.Table) -> dict:
    """The population's baseline: volume, capability mix, CoT share, daily volume, models."""
    totals = ex.aggregate(
        exchanges=ex.count(), accounts=ex.account_id.nunique(), first=ex.ts.min(), last=ex.ts.max()
    )
    day = ex.ts.date()
    per_day = ex.group_by(day.name("day")).aggregate(exchanges=ex.count(), accounts=ex.account_id.nunique())
    models = (
        ex.filter(ex.model.notnull()).group_by("model").aggregate(first_seen=_.ts.min(), exchanges=_.count())
    )
    return population_from(totals, per_day, models, facts)
