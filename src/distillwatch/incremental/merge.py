"""Features of a window, merged from the stored partial aggregates (no exchange row is read again).

``merged_features`` returns the same ``features.Features`` the batch scan builds
from the exchanges, column for column; tests/incremental checks the two agree
(counts exactly, floats to 1e-9) on the simulator's demo split into days.
Everything here is an Ibis expression over the store tables; its size is the
number of (account, partition) rows, (account, hour) rows and (account, value)
rows in the window, not the number of exchanges.

Two features are exact only under a condition, checked and counted in
``MergeReport``: the inter-arrival moments need each account's partitions not to
overlap in time (true when partitions are time slices or hourly files arriving
in order); ``pivot_share`` needs the exchanges of the one hour in which the first
new model appeared, which are read from that hour's retained partition.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import ibis
import ibis.expr.types as ir
import ibis.selectors as s
from ibis import _

from distillwatch.features import behaviour, content, registration
from distillwatch.features.build import Features, assemble_features, population_from
from distillwatch.features.enrichment import Lists
from distillwatch.features.infrastructure import most_frequent

DAY = behaviour.DAY


@dataclass
class MergeReport:
    """What the merge had to know about exactness."""

    partitions: list[int] = field(default_factory=list)
    overlapping_accounts: int = 0  # accounts whose partitions overlap in time: their gap moments approximate
    release_hour_rows_read: int = 0  # rows of the first-release hour read from retained partitions


@dataclass
class StateTables:
    """The window's stored state as Ibis tables (the pair signals read their keys from these)."""

    parts: ir.Table
    hours: ir.Table
    values: ir.Table
    sample: ir.Table
    prompt_facts: ir.Table
    system_facts: ir.Table
    prompt_bands: ir.Table
    accounts: ir.Table

    def value_keys(self, kind: str) -> ir.Table:
        """Distinct (account_id, key) for one value kind (ip, prefix, user_agent, ...)."""
        v = self.values.filter(self.values.kind == kind)
        return v.select("account_id", key=v.value).distinct()

    def model_uses(self) -> ir.Table:
        """Per (account_id, model): exchanges ``n`` and the first use ``first_use`` (epoch seconds)."""
        v = self.values.filter(self.values.kind == "model")
        return v.group_by(["account_id", v.value.name("model")]).aggregate(
            first_use=v.first_sec.min(), n=v.n.sum()
        )


def state_tables(con, parts: list[int]) -> StateTables:
    """The store tables restricted to the partitions ``parts`` (the window)."""

    def t(name: str) -> ir.Table:
        table = con.table(name)
        return table.filter(table.part_id.isin(parts)) if "part_id" in table.columns else table

    return StateTables(
        parts=t("inc_account_part"),
        hours=t("inc_account_hour"),
        values=t("inc_account_value"),
        sample=t("inc_sample"),
        prompt_facts=con.table("inc_prompt_facts"),
        system_facts=con.table("inc_system_facts"),
        prompt_bands=con.table("inc_prompt_bands"),
        accounts=con.table("inc_accounts"),
    )


def gap_moments(parts: ir.Table) -> ir.Table:
    """Inter-arrival mean and sample standard deviation per account from per-partition moments.

    Partitions of an account are ordered by their first exchange; the gap across a boundary is the
    next partition's first timestamp minus the previous one's last.  Moments combine by the parallel
    (Chan et al.) formula: M2 = sum(M2_i + n_i (mean_i - mean)^2) + sum over boundaries (g - mean)^2.
    """
    w = ibis.window(group_by="account_id", order_by=[parts.first_sec, parts.part_id])
    seg = parts.mutate(boundary=parts.first_sec - parts.last_sec.lag().over(w))
    tot = seg.group_by("account_id").aggregate(
        gaps=seg.gap_n.sum() + seg.boundary.count(),
        gap_sum=(seg.gap_n * seg.gap_mean.fill_null(0.0)).sum() + seg.boundary.sum().fill_null(0.0),
        overlapping=(seg.boundary < 0).cast("int64").sum().fill_null(0),
    )
    tot = tot.mutate(acct_mean=ibis.ifelse(tot.gaps > 0, tot.gap_sum / tot.gaps, ibis.null("float64")))
    j = seg.join(tot.select("account_id", "acct_mean"), "account_id")
    m2 = (j.gap_m2 + j.gap_n * (j.gap_mean.fill_null(0.0) - j.acct_mean) ** 2).sum() + (
        (j.boundary - j.acct_mean) ** 2
    ).sum().fill_null(0.0)
    ss = j.group_by("account_id").aggregate(m2=m2)
    out = tot.join(ss, "account_id")
    return out.select(
        "account_id",
        "overlapping",
        "gaps",
        "m2",
        gap_mean=out.acct_mean,
        gap_std=ibis.ifelse(out.gaps > 1, (out.m2 / (out.gaps - 1)).sqrt(), ibis.null("float64")),
    )


def _distinct_count(values: ir.Table, kind: str, name: str) -> ir.Table:
    v = values.filter(values.kind == kind)
    return v.group_by("account_id").aggregate(**{name: v.value.nunique()})


def _mode(values: ir.Table, kind: str, name: str) -> ir.Table:
    """The value an account used most (``features.infrastructure.most_frequent``: ties to the smallest)."""
    v = values.filter(values.kind == kind)
    return most_frequent(v.group_by(["account_id", "value"]).aggregate(n=v.n.sum()), name)


def volume_and_rate(state: StateTables) -> ir.Table:
    """The reference ``volume_and_rate`` (tests/features/reference.py) merged from the partials (same columns, same order)."""
    p, values = state.parts, state.values
    base = p.group_by("account_id").aggregate(
        exchanges=p.n.sum(),
        first_ts=p.first_ts.min(),
        last_ts=p.last_ts.max(),
        input_tokens=p.input_tokens.sum(),
        output_tokens=p.output_tokens.sum(),
        tool_n=p.tool_n.sum(),
        conversation_rows=p.conversation_rows.sum(),
    )
    days = state.hours.group_by("account_id").aggregate(active_days=state.hours.daynum.nunique())
    j = base.join(days, "account_id").join(gap_moments(p).select("account_id", "gap_mean", "gap_std"), "account_id")
    j = j.left_join(_distinct_count(values, "conversation", "conversations"), "account_id").select(
        ~s.endswith("_right")
    )
    j = j.left_join(_distinct_count(values, "model", "models"), "account_id").select(~s.endswith("_right"))
    return j.select(
        "account_id",
        "exchanges",
        "first_ts",
        "last_ts",
        "active_days",
        "gap_mean",
        "gap_std",
        "input_tokens",
        "output_tokens",
        tool_share=j.tool_n.cast("float64") / j.exchanges,
        conversations=j.conversations.fill_null(0),
        conversation_rows=j.conversation_rows,
        models=j.models.fill_null(0),
    )


def infrastructure(state: StateTables) -> ir.Table:
    """The reference ``infrastructure`` (tests/features/reference.py) merged from the partials."""
    p, values = state.parts, state.values
    shares = p.group_by("account_id").aggregate(
        n=p.n.sum(), dc=p.datacenter_n.sum(), vpn=p.vpn_n.sum(), tor=p.tor_n.sum()
    )
    out = shares
    for kind, name in (
        ("ip", "distinct_ips"), ("prefix", "distinct_prefixes"), ("asn", "distinct_asns"),
        ("user_agent", "distinct_user_agents"), ("country", "distinct_countries"),
    ):  # fmt: skip
        out = out.left_join(_distinct_count(values, kind, name), "account_id").select(~s.endswith("_right"))
    for kind, name in (("provider", "top_provider"), ("org", "request_org")):
        out = out.left_join(_mode(values, kind, name), "account_id").select(~s.endswith("_right"))
    return out.select(
        "account_id",
        distinct_ips=out.distinct_ips.fill_null(0),
        distinct_prefixes=out.distinct_prefixes.fill_null(0),
        distinct_asns=out.distinct_asns.fill_null(0),
        distinct_user_agents=out.distinct_user_agents.fill_null(0),
        distinct_countries=out.distinct_countries.fill_null(0),
        datacenter_share=out.dc.cast("float64") / out.n,
        vpn_share=out.vpn.cast("float64") / out.n,
        tor_share=out.tor.cast("float64") / out.n,
        top_provider=out.top_provider,
        request_org=out.request_org,
    )


def first_release(state: StateTables) -> float | None:
    """Epoch seconds of the first use of the first model released during the window (as model_pivot)."""
    start = state.parts.first_sec.min()
    models = state.model_uses().group_by("model").aggregate(model_first=_.first_use.min())
    new = models.filter(models.model_first > start.as_scalar() + DAY)
    return new.model_first.min().to_pyarrow().as_py()


def model_pivot(state: StateTables, release_hour_before: ir.Table | None, release: float | None) -> ir.Table:
    """The reference ``model_pivot`` (tests/features/reference.py) merged from the partials.

    ``release_hour_before``: per account, exchanges in the release's epoch hour sent before the release
    (read from that hour's retained rows), so "exchanges at or after the release" is exact.
    """
    start = state.parts.first_sec.min().as_scalar()
    uses = state.model_uses()
    firsts = uses.group_by("model").aggregate(model_first=uses.first_use.min())
    new = firsts.filter(firsts.model_first > start + DAY)
    nu = uses.join(new, "model")
    per_new = nu.group_by("account_id").aggregate(
        on_new=nu.n.sum(), first_new_use_lag=(nu.first_use - nu.model_first).min()
    )
    accounts = state.parts.select("account_id").distinct()
    if release is None:
        after = accounts.mutate(after_release=ibis.null("int64"))
    else:
        hour = int(release // 3600)
        h = state.hours.filter(state.hours.ehour >= hour)
        after = accounts.left_join(h.group_by("account_id").aggregate(k=h.n.sum()), "account_id").select(
            "account_id", k=_.k.fill_null(0)
        )
        if release_hour_before is not None:
            after = after.left_join(release_hour_before, "account_id").select(
                "account_id", k=_.k - _.before.fill_null(0)
            )
        after = after.select("account_id", after_release=after.k)
    per = after.left_join(per_new, "account_id").select(~s.endswith("_right"))
    per = per.mutate(on_new=per.on_new.fill_null(0))
    return per.mutate(
        pivot_share=ibis.ifelse(per.after_release > 0, per.on_new / per.after_release, 0.0),
        pivot_lag_hours=per.first_new_use_lag / 3600.0,
    ).select("account_id", "pivot_share", "pivot_lag_hours")


def sample_keyed(state: StateTables) -> ir.Table:
    """The stored content sample in the shape ``features.content.join_text_facts`` expects."""
    s = state.sample
    return s.select("account_id", "request_id", "sec", "daynum", "n_tools", "prompt_key", "system_key")


def merged_features(
    con,
    state: StateTables,
    lists: Lists,
    ex_retained: ir.Table,
    release_hour_before: ir.Table | None,
    release: float | None,
) -> Features:
    """The window's ``Features``, merged from ``state``; ``ex_retained`` (the retained partitions) is
    only carried along for the campaign summaries, never aggregated here."""
    facts, bands = content.join_text_facts(
        sample_keyed(state), state.prompt_facts, state.system_facts, state.prompt_bands
    )
    facts = con.create_table("dw_facts", facts, temp=True, overwrite=True)
    bands = con.create_table("dw_bands", bands, temp=True, overwrite=True)

    records = registration.account_facts(con, state.accounts, lists)
    records = con.create_table("dw_account_records", records, temp=True, overwrite=True)

    per_day = state.hours.group_by(["account_id", "daynum"]).aggregate(n=state.hours.n.sum())
    parts = [
        volume_and_rate(state),
        behaviour.daily_from_counts(per_day),
        model_pivot(state, release_hour_before, release),
        infrastructure(state),
        content.content(facts),
    ]
    hour_counts = state.hours.group_by(["account_id", "hour"]).aggregate(n=state.hours.n.sum())
    pop = population(state, facts)
    return assemble_features(parts, records, hour_counts, pop, ex=ex_retained, facts=facts, bands=bands)


def daily_counts(state: StateTables) -> ir.Table:
    """(account_id, day, n): exchanges per account and UTC day (daily.parquet, population)."""
    h = state.hours
    g = h.group_by(["account_id", "daynum"]).aggregate(n=h.n.sum())
    day = (g.daynum * 86400).as_timestamp("s").date()
    return g.select("account_id", day=day, n=g.n)


def population(state: StateTables, facts: ir.Table) -> dict:
    p = state.parts
    totals = p.aggregate(
        exchanges=p.n.sum(), accounts=p.account_id.nunique(), first=p.first_ts.min(), last=p.last_ts.max()
    )
    d = daily_counts(state)
    daily = d.group_by("day").aggregate(exchanges=d.n.sum(), accounts=d.account_id.nunique())
    v = state.values.filter(state.values.kind == "model")
    models = v.group_by(v.value.name("model")).aggregate(first_seen=v.first_ts.min(), exchanges=v.n.sum())
    return population_from(totals, daily, models, facts)
