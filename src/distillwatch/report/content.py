"""What the report says: builds the :class:`Document` from a loaded results directory.

Figures come from campaigns.json (the campaign records) and, where the
Parquet tables are present, from those (membership, daily volume, edges,
quarantine), so the report can also point out when the two disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import numpy as np

from distillwatch.campaigns.model import Campaign, Count
from distillwatch.report import charts, figures
from distillwatch.report.document import Bullets, Document, Figure, Para, Quotes, Section, Table
from distillwatch.report.load import Results
from distillwatch.report.text import clean

MAX_CHARTED = 10  # campaigns that get their own charts; the rest get tables only
OVERVIEW_SERIES = 6  # campaigns drawn separately in the overview timeline
LISTED = 10  # rows of each top-N table (prefixes, ASNs, e-mail domains, ...)
PROMPTS_SHOWN = 5
PROMPT_CHARS = 400
VALUE_CHARS = 160  # a user agent, domain or prefix in a table
REASON_CHARS = 240  # an account's reasons (they quote traffic)
TARGET_MIN_SHARE = 0.10  # a capability is "targeted" at >= 10% of the campaign's exchanges ...
TARGET_MIN_LIFT = 1.5  # ... and 1.5 times its share in the benign population
NOT_A_TARGET = frozenset({"other", "unknown", "none", "unclassified"})
REDACTED_PROMPT = "[prompt redacted]"
REDACTED_DOMAIN = "[e-mail domain redacted]"
ATLAS = (
    "MITRE ATLAS AML.T0024.002 (Extract AI Model) through AML.T0040 (AI Model Inference API Access), "
    "aiming at AML.T0005 (Create Proxy AI Model)"
)


# -- formatting -------------------------------------------------------------------------------------


def num(x: float | int | None) -> str:
    if x is None:
        return "n/a"
    return f"{x:,}" if isinstance(x, int) else f"{x:,.1f}"


def pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def score(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def big(x: int) -> str:
    """28_800_000 -> '28.8 million': how the figure is said in a letter."""
    for size, word in ((1e9, "billion"), (1e6, "million")):
        if x >= size:
            return f"{x / size:.1f}".rstrip("0").rstrip(".") + f" {word}"
    return f"{x:,}"


def day(d: date | datetime | None) -> str:
    if d is None:
        return "n/a"
    return (d.date() if isinstance(d, datetime) else d).isoformat()


def long_day(d: date, with_year: bool = True) -> str:
    return f"{d.day} {d:%B}" + (f" {d.year}" if with_year else "")


def moment(t: datetime | None) -> str:
    return "n/a" if t is None else t.strftime("%Y-%m-%d %H:%M UTC")


def and_list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def capability_name(name: str) -> str:
    return name.replace("_", " ")


def confidence_word(c: float) -> str:
    return "very high" if c >= 0.9 else "high" if c >= 0.75 else "moderate" if c >= 0.5 else "low"


# -- the sentences ----------------------------------------------------------------------------------


def targeted(capabilities: dict[str, float], population: dict[str, float]) -> list[str]:
    """The capabilities a campaign concentrates on, most-harvested first, in words."""
    return [capability_name(k) for k in targeted_keys(capabilities, population)]


def targeted_keys(capabilities: dict[str, float], population: dict[str, float]) -> list[str]:
    """Capability keys that take >= 10% of the exchanges and 1.5 times the baseline share (else the two largest)."""
    # A catch-all class ("other") is not something a campaign can be said to target.
    ranked = sorted((k for k in capabilities if k not in NOT_A_TARGET), key=lambda k: (-capabilities[k], k))
    picked = [
        k
        for k in ranked
        if capabilities[k] >= TARGET_MIN_SHARE
        and (population.get(k, 0.0) == 0.0 or capabilities[k] >= TARGET_MIN_LIFT * population[k])
    ]
    return (picked or ranked[:2])[:3]


def lead_sentence(c: Campaign, population_caps: dict[str, float]) -> str:
    """'N exchanges through M accounts between D1 and D2, targeting X and Y.'"""
    d1, d2 = c.first_seen.date(), c.last_seen.date()
    if d1 == d2:
        when = f"on {long_day(d1)}"
    else:
        when = f"between {long_day(d1, with_year=d1.year != d2.year)} and {long_day(d2)}"
    text = f"{big(c.exchanges)} exchanges through {c.accounts:,} accounts {when}"
    targets = targeted(c.capabilities, population_caps)
    return text + (f", targeting {and_list(targets)}." if targets else ".")


def densest_day(times: list[datetime]) -> tuple[int, datetime] | None:
    """The most sign-ups in any 24-hour window, and when that window starts."""
    if not times:
        return None
    t = np.sort(np.array([x.timestamp() for x in times]))
    inside = np.searchsorted(t, t + 86400, side="left") - np.arange(len(t))
    best = int(np.argmax(inside))
    return int(inside[best]), datetime.fromtimestamp(float(t[best]), UTC)


def traits(
    c: Campaign,
    population_caps: dict[str, float],
    population_cot: float | None,
    signups: list[datetime] | None = None,
) -> list[str]:
    """Sentences an analyst can check against the tables, for the traits that set a campaign apart.

    Only what is unusual is said: each sentence has a threshold below which
    the trait is ordinary for a customer (a university shares a NAT address,
    a family shares a card), so a short list means an unremarkable record.
    """
    out: list[str] = []
    reg, inf = c.registration, c.infrastructure
    burst = densest_day(signups or [])
    if reg.signup_span_hours is not None and reg.accounts_with_record >= 5 and reg.signup_span_hours <= 72:
        out.append(
            f"{reg.accounts_with_record:,} accounts were registered within {reg.signup_span_hours:,.1f} hours."
        )
    elif burst and burst[0] >= max(5, 0.3 * len(signups or [])):
        out.append(
            f"{burst[0]:,} of its {len(signups or []):,} accounts with a sign-up time were registered "
            f"within 24 hours from {moment(burst[1])}."
        )
    if reg.disposable_email_share >= 0.2:
        out.append(f"{pct(reg.disposable_email_share)} of its accounts use disposable e-mail domains.")
    if reg.shared_payment_accounts >= 3:
        out.append(
            f"{reg.shared_payment_accounts:,} accounts pay with an instrument another member also uses "
            f"({reg.distinct_payment_fingerprints:,} instruments in all)."
        )
    if inf.datacenter_share + inf.vpn_share + inf.tor_share >= 0.3:
        parts = [
            f"{pct(v)} from {name}"
            for v, name in (
                (inf.datacenter_share, "datacenters"),
                (inf.vpn_share, "VPN or proxy services"),
                (inf.tor_share, "Tor"),
            )
            if v > 0
        ]
        out.append(f"Its exchanges come {and_list(parts)}, not from consumer networks.")
    if c.accounts >= 10 and inf.prefixes and inf.prefixes * 4 <= c.accounts:
        prefixes = f"{inf.prefixes:,} network prefix" + ("es" if inf.prefixes != 1 else "")
        out.append(f"{c.accounts:,} accounts share {prefixes} ({inf.addresses:,} addresses).")
    if population_cot is not None and c.cot_share >= max(0.2, 2 * population_cot):
        out.append(
            f"{pct(c.cot_share)} of its exchanges ask for step-by-step reasoning, against {pct(population_cot)} in the baseline."
        )
    for key in targeted_keys(c.capabilities, population_caps)[:2]:
        share, base = c.capabilities[key], population_caps.get(key)
        if base is not None and share >= TARGET_MIN_LIFT * base and share >= TARGET_MIN_SHARE:
            out.append(
                f"{pct(share)} of its exchanges are {capability_name(key)}, against {pct(base)} in the baseline."
            )
    if c.template_hashes and c.template_hashes[0].share >= 0.1:
        out.append(f"One prompt template carries {pct(c.template_hashes[0].share)} of its exchanges.")
    return out


def rank_campaigns(campaigns: list[Campaign]) -> list[Campaign]:
    """Largest first (exchanges, then accounts), the more certain first among equals."""
    return sorted(campaigns, key=lambda c: (-c.exchanges, -c.accounts, -c.confidence, c.campaign_id))


# -- builder ----------------------------------------------------------------------------------------


@dataclass
class RowCounts:
    table: str  # exchanges | accounts
    read: int | None
    accepted: int | None  # rows scored
    quarantined: int | None
    by_reason: dict[str, int]


class _Builder:
    def __init__(self, res: Results, redact: bool) -> None:
        self.res = res
        self.redact = redact
        self.campaigns = rank_campaigns(res.campaigns)
        self.population_caps: dict[str, float] = _float_dict(res.population.get("capabilities"))
        self.accounts = figures.account_figures(res)
        self.daily = figures.daily(res)
        self.quarantine = figures.quarantine(res)
        charted = [c.campaign_id for c in self.campaigns[:MAX_CHARTED]]
        self.signups, self.signup_source = figures.signup_times(res, charted)

    def document(self) -> Document:
        run_id = self.res.run.get("run_id")
        subtitle = f"Results directory {self.res.directory.name}" + (f", run {run_id}" if run_id else "")
        sections = [self.summary(), self.baseline()]
        sections += [self.campaign(i, c) for i, c in enumerate(self.campaigns)]
        sections += [self.flagged_outside(), self.quarantine_section(), self.about()]
        return Document(
            "distillwatch: distillation campaigns", subtitle, [s for s in sections if s], self.redact
        )

    # ---- overview ----

    def summary(self) -> Section:
        s = Section("Summary", "summary")
        if self.campaigns:
            biggest = self.campaigns[0]
            s.blocks.append(
                Para(
                    f"{len(self.campaigns)} distillation campaign(s) found ({ATLAS}). The largest, "
                    f"{biggest.campaign_id}: {lead_sentence(biggest, self.population_caps)}",
                    "lead",
                )
            )
        else:
            s.blocks.append(Para("No distillation campaign was found in this scan.", "lead"))
        s.blocks += self.rows_blocks()
        if self.accounts:
            v = self.accounts.verdicts
            in_campaigns = sum(self.accounts.members.values())
            s.blocks.append(
                Table(
                    "Accounts",
                    ["accounts", "number"],
                    [
                        ["scanned", num(self.accounts.scanned)],
                        ["verdict attack", num(v.get("attack", 0))],
                        ["verdict suspect", num(v.get("suspect", 0))],
                        ["verdict benign", num(v.get("benign", 0))],
                        ["in a campaign", num(in_campaigns)],
                    ],
                    [False, True],
                )
            )
        if self.campaigns:
            s.blocks.append(self.ranking_table())
            timeline = self.overview_timeline()
            if timeline:
                s.blocks.append(timeline)
        return s

    def row_counts(self) -> list[RowCounts]:
        """Per input table: rows read, scored (accepted) and quarantined, from run.json.

        Accepts run.json's ``counts`` flat (``rows_read``, ``rows_accepted``,
        ``rows_quarantined``, ``by_reason``: the exchanges) or per table as ingest
        records them (``{"exchanges": {"read", "accepted", "quarantined", "by_reason"}, ...}``).
        """
        run = self.res.run
        counts = run.get("counts") if isinstance(run.get("counts"), dict) else run
        if isinstance(run.get("ingest"), dict) and isinstance(run["ingest"].get("exchanges"), dict):
            counts = run["ingest"]  # scan keeps ingest's per-table counts here: accounts too
        out: list[RowCounts] = []
        if any(k in counts for k in ("rows_read", "rows_accepted", "rows_scored", "rows_quarantined")):
            by_reason = counts.get("by_reason") or counts.get("quarantined_by_reason") or {}
            if isinstance(by_reason.get("exchanges"), dict):  # by_reason split by table
                by_reason = by_reason["exchanges"]
            out.append(
                RowCounts(
                    "exchanges",
                    _int(counts.get("rows_read")),
                    _int(counts.get("rows_accepted", counts.get("rows_scored"))),
                    _int(counts.get("rows_quarantined")),
                    _int_dict(by_reason),
                )
            )
        for table in ("exchanges", "accounts"):
            c = counts.get(table)
            if isinstance(c, dict) and not any(r.table == table for r in out):
                out.append(
                    RowCounts(
                        table,
                        _int(c.get("read", c.get("rows_read"))),
                        _int(c.get("accepted", c.get("rows_accepted"))),
                        _int(c.get("quarantined", c.get("rows_quarantined"))),
                        _int_dict(c.get("by_reason")),
                    )
                )
        if not out and self.quarantine is not None:  # no run record: the quarantine file still says something
            out.append(RowCounts("exchanges", None, None, self.quarantine.rows, {}))
        return out

    def rows_blocks(self) -> list[Table | Para]:
        counts = self.row_counts()
        if not counts:
            return [Para("Row counts are unknown: run.json is missing or has no counts.", "warn")]
        rows = [[c.table, num(c.read), num(c.accepted), num(c.quarantined)] for c in counts]
        out: list[Table | Para] = [
            Table(
                "Input rows",
                ["input", "rows read", "rows scored", "rows quarantined"],
                rows,
                [False, True, True, True],
            )
        ]
        for c in counts:
            if None in (c.read, c.accepted, c.quarantined):
                out.append(Para(f"Row counts for {c.table} are incomplete in run.json.", "warn"))
            elif c.read == c.accepted + c.quarantined:
                out.append(
                    Para(
                        f"{c.table.capitalize()}: rows read ({c.read:,}) = rows scored ({c.accepted:,}) "
                        f"+ rows quarantined ({c.quarantined:,})."
                    )
                )
            else:
                out.append(
                    Para(
                        f"{c.table.capitalize()}: rows read ({c.read:,}) do not equal rows scored ({c.accepted:,}) "
                        f"+ rows quarantined ({c.quarantined:,}); {c.read - c.accepted - c.quarantined:,} rows are "
                        "unaccounted for.",
                        "warn",
                    )
                )
        reasons = [[c.table, reason, num(n)] for c in counts for reason, n in sorted(c.by_reason.items())]
        if reasons:
            out.append(
                Table(
                    "Quarantined rows by reason", ["input", "reason", "rows"], reasons, [False, False, True]
                )
            )
        return out

    def ranking_table(self) -> Table:
        rows = [
            [
                str(i + 1),
                c.campaign_id,
                num(c.accounts),
                num(c.exchanges),
                pct(c.share_of_traffic),
                day(c.first_seen),
                day(c.last_seen),
                num(c.days),
                f"{c.confidence:.2f} ({confidence_word(c.confidence)})",
                and_list(targeted(c.capabilities, self.population_caps)) if c.capabilities else "n/a",
            ]
            for i, c in enumerate(self.campaigns)
        ]
        headers = [
            "rank",
            "campaign",
            "accounts",
            "exchanges",
            "share of traffic",
            "first seen",
            "last seen",
            "days",
            "confidence",
            "targeting",
        ]
        numeric = [True, False, True, True, True, True, True, True, False, False]
        return Table("Campaigns, largest first", headers, rows, numeric)

    def overview_timeline(self) -> Figure | None:
        d = self.daily
        if not d.days:
            return None
        shown = [c.campaign_id for c in self.campaigns[:OVERVIEW_SERIES] if c.campaign_id in d.campaigns]
        rest = [cid for cid in d.campaigns if cid not in shown]
        series = {cid: [d.campaigns[cid].get(x, (0, 0))[0] for x in d.days] for cid in shown}
        if rest:
            series["other campaigns"] = [
                sum(d.campaigns[cid].get(x, (0, 0))[0] for cid in rest) for x in d.days
            ]
        benign = [d.benign.get(x, (0, 0))[0] for x in d.days] if d.benign else None
        chart = charts.timeline(
            "All traffic per day: benign and campaigns", d.days, benign, series, stacked=True
        )
        headers = ["day", "benign exchanges", *[f"{name} exchanges" for name in series]]
        rows = [
            [day(x), num(benign[i]) if benign else "n/a", *[num(v[i]) for v in series.values()]]
            for i, x in enumerate(d.days)
        ]
        return Figure(chart, Table("Exchanges per day", headers, rows, [False] + [True] * (len(headers) - 1)))

    def baseline(self) -> Section:
        s = Section("Benign baseline", "baseline")
        p = self.res.population
        if not p:
            s.blocks.append(Para("population.json is missing: no benign baseline to compare with.", "warn"))
            return s
        rows = [
            [name, num(_int(p[key]))]
            for key, name in (("accounts", "accounts"), ("exchanges", "exchanges"), ("days", "days"))
            if p.get(key) is not None
        ]
        for key, name in (
            ("exchanges_per_account", "exchanges per account"),
            ("exchanges_per_account_per_day", "exchanges per account per day"),
        ):
            if p.get(key) is not None:
                rows.append([name, num(_number(p[key]))])
        if p.get("cot_share") is not None:
            rows.append(["share eliciting chain-of-thought", pct(_number(p["cot_share"]))])
        if p.get("first_seen") or p.get("last_seen"):
            rows.append(
                ["period", f"{_iso_moment(p.get('first_seen'))} to {_iso_moment(p.get('last_seen'))}"]
            )
        note = p.get("benign_baseline_note")
        s.blocks.append(
            Para(
                "The baseline traffic, the yardstick for what is ordinary"
                + (f" (population.json: {note})." if note else ".")
            )
        )
        s.blocks.append(Table("Baseline traffic", ["measure", "value"], rows, [False, True]))
        if self.population_caps:
            caps = sorted(self.population_caps.items(), key=lambda kv: (-kv[1], kv[0]))
            s.blocks.append(
                Table(
                    "Capability mix of the baseline",
                    ["capability", "share of exchanges"],
                    [[capability_name(k), pct(v)] for k, v in caps],
                    [False, True],
                )
            )
        return s

    # ---- one campaign ----

    def campaign(self, i: int, c: Campaign) -> Section:
        s = Section(f"Campaign {i + 1}: {c.campaign_id}", f"campaign-{i + 1}")
        s.blocks.append(Para(lead_sentence(c, self.population_caps), "lead"))
        s.blocks.append(Para(self.verdict_words(c)))
        s.blocks.append(self.key_figures(c))
        if c.evidence or c.signal_families:
            items = list(c.evidence) + (
                [f"Signal families: {', '.join(c.signal_families)}."] if c.signal_families else []
            )
            s.blocks.append(Bullets("Evidence", items))
        measured = traits(
            c,
            self.population_caps,
            _number(self.res.population.get("cot_share")),
            self.signups.get(c.campaign_id),
        )
        if measured:
            s.blocks.append(Bullets("What stands out, measured", measured))
        charted = i < MAX_CHARTED
        if not charted:
            s.blocks.append(
                Para(
                    f"Charts are drawn for the {MAX_CHARTED} largest campaigns; this one is given as tables.",
                    "note",
                )
            )
        s.blocks.append(self.capabilities(c, charted))
        timeline = self.campaign_timeline(c, charted)
        if timeline:
            s.blocks.append(timeline)
        s.blocks += self.infrastructure(c)
        s.blocks += self.registration(c, charted)
        s.blocks += self.prompting(c)
        s.blocks.append(self.indicators(c))
        if self.accounts and self.accounts.top.get(c.campaign_id):
            s.blocks.append(self.top_accounts(c))
        if i == self._largest_by_accounts():
            graph = self.graph(c)
            if graph:
                s.blocks.append(graph)
        return s

    def verdict_words(self, c: Campaign) -> str:
        words = f"Confidence {c.confidence:.2f} ({confidence_word(c.confidence)})."
        if c.history and c.history.summary:
            words += f" {c.history.summary}"
        elif c.history:
            words += f" Tracking: {c.history.status} campaign, seen in {c.history.scans} scan(s)."
        if c.attribution and c.attribution.actor:
            words += f" Attributed to {c.attribution.actor} with confidence {c.attribution.confidence:.2f}."
            if c.attribution.explanation:
                words += f" {c.attribution.explanation}"
        elif c.attribution:
            words += " Not attributed to a known actor."
        return words

    def key_figures(self, c: Campaign) -> Table:
        cot_pop = _number(self.res.population.get("cot_share"))
        rows = [
            ["accounts", num(c.accounts)],
            ["exchanges", num(c.exchanges)],
            ["first seen", moment(c.first_seen)],
            ["last seen", moment(c.last_seen)],
            ["days (first to last, inclusive)", num(c.days)],
            ["exchanges per account", num(float(c.exchanges_per_account))],
            ["exchanges per account per day", num(float(c.exchanges_per_account_per_day))],
            ["share of all traffic", pct(c.share_of_traffic)],
            [
                "share eliciting chain-of-thought",
                pct(c.cot_share) + (f" (benign: {pct(cot_pop)})" if cot_pop is not None else ""),
            ],
        ]
        note = ""
        if self.accounts is not None:
            listed = self.accounts.members.get(c.campaign_id, 0)
            rows.append(["mean account score", score(self.accounts.mean_score.get(c.campaign_id))])
            if listed != c.accounts:
                note = f"accounts.parquet lists {listed:,} accounts in this campaign, campaigns.json says {c.accounts:,}."
        return Table("Key figures", ["measure", "value"], rows, [False, True], note)

    def capabilities(self, c: Campaign, charted: bool) -> Table | Figure:
        names = sorted(
            set(c.capabilities) | set(self.population_caps), key=lambda k: (-c.capabilities.get(k, 0.0), k)
        )
        rows = []
        for k in names:
            share, base = c.capabilities.get(k, 0.0), self.population_caps.get(k)
            lift = f"{share / base:.1f}x" if base else "n/a"
            rows.append([capability_name(k), pct(share), pct(base), lift])
        table = Table(
            "Capabilities: campaign against benign population",
            ["capability", "campaign", "population", "ratio"],
            rows,
            [False, True, True, True],
        )
        if not charted or not names:
            return table
        chart = charts.capability_bars(
            f"Capability mix: {c.campaign_id} against benign traffic", c.capabilities, self.population_caps
        )
        return Figure(chart, table)

    def campaign_timeline(self, c: Campaign, charted: bool) -> Table | Figure | None:
        per = self.daily.campaigns.get(c.campaign_id) or {
            d: (v.exchanges, v.accounts) for v in c.daily if (d := figures.to_date(v.day))
        }
        if not per:
            return None
        days = [x for x in self.daily.days if c.first_seen.date() <= x <= c.last_seen.date()] or sorted(per)
        values = [per.get(x, (0, 0)) for x in days]
        benign = [self.daily.benign.get(x, (0, 0))[0] for x in days] if self.daily.benign else None
        rows = [
            [
                day(x),
                num(v[0]),
                num(v[1]),
                num(v[0] / v[1]) if v[1] else "n/a",
                num(benign[j]) if benign else "n/a",
            ]
            for j, (x, v) in enumerate(zip(days, values, strict=True))
        ]
        headers = [
            "day",
            "campaign exchanges",
            "campaign accounts",
            "exchanges per active account",
            "benign exchanges",
        ]
        table = Table("Daily volume", headers, rows, [False, True, True, True, True])
        if not charted:
            return table
        chart = charts.timeline(
            f"Daily volume: {c.campaign_id} against benign traffic",
            days,
            benign,
            {c.campaign_id: [v[0] for v in values]},
            stacked=False,
        )
        return Figure(chart, table)

    def infrastructure(self, c: Campaign) -> list[Table]:
        inf = c.infrastructure
        out = [
            Table(
                "Infrastructure",
                ["measure", "value"],
                [
                    ["client addresses", num(inf.addresses)],
                    ["network prefixes (/24, /48)", num(inf.prefixes)],
                    ["autonomous systems", num(inf.asns)],
                    ["exchanges from datacenters", pct(inf.datacenter_share)],
                    ["exchanges from VPN or proxy services", pct(inf.vpn_share)],
                    ["exchanges from Tor", pct(inf.tor_share)],
                ],
                [False, True],
            )
        ]
        for caption, counts in (
            ("Top network prefixes", inf.top_prefixes),
            ("Top autonomous systems", inf.top_asns),
            ("Countries", inf.countries),
            ("User agents", inf.user_agents),
        ):
            if counts:
                out.append(_count_table(caption, counts, "exchanges"))
        return out

    def registration(self, c: Campaign, charted: bool) -> list[Table | Figure | Para]:
        r = c.registration
        rows = [
            ["accounts with a registration record", num(r.accounts_with_record)],
            ["first sign-up", moment(r.created_first)],
            ["last sign-up", moment(r.created_last)],
            ["sign-up span (hours)", num(r.signup_span_hours)],
            ["disposable e-mail domains", pct(r.disposable_email_share)],
            ["accounts sharing a payment instrument", num(r.shared_payment_accounts)],
            ["distinct payment instruments", num(r.distinct_payment_fingerprints)],
        ]
        out: list[Table | Figure | Para] = [
            Table("Registration pattern", ["measure", "value"], rows, [False, True])
        ]
        if r.email_domains:
            domains = (
                [Count(value=REDACTED_DOMAIN, count=d.count, share=d.share) for d in r.email_domains]
                if self.redact
                else r.email_domains
            )
            out.append(_count_table("E-mail domains", domains, "accounts"))
        times = self.signups.get(c.campaign_id)
        if times:
            b = charts.signup_bins(times)
            outside = [f"{n:,} earlier" for n in [b.before] if n] + [f"{n:,} later" for n in [b.after] if n]
            note = f"from {self.signup_source}; periods without sign-ups omitted" + (
                f"; outside the burst window: {', '.join(outside)}" if outside else ""
            )
            table = Table(
                f"Sign-ups per {b.unit}",
                [f"{b.unit} starting (UTC)", "accounts created"],
                [[moment(t), num(n)] for t, n in b.bins if n],
                [False, True],
                note,
            )
            if charted:
                out.append(Figure(charts.signup_histogram(f"Sign-up burst: {c.campaign_id}", b), table))
            else:
                out.append(table)
        elif charted and r.accounts_with_record:
            out.append(
                Para(
                    "No sign-up histogram: per-account registration times are neither in the results "
                    "nor in a readable accounts input.",
                    "note",
                )
            )
        return out

    def prompting(self, c: Campaign) -> list[Table | Quotes]:
        out: list[Table | Quotes] = []
        if c.template_hashes:
            out.append(_count_table("Prompt templates", c.template_hashes, "exchanges"))
        if c.models:
            out.append(_count_table("Models asked", c.models, "exchanges"))
        if c.sample_prompts:
            prompts = c.sample_prompts[:PROMPTS_SHOWN]
            if self.redact:
                items = [REDACTED_PROMPT for _ in prompts]
            else:
                items = [clean(p, PROMPT_CHARS, one_line=False) for p in prompts]
            out.append(
                Quotes(
                    "Sample prompts",
                    items,
                    f"verbatim, cut at {PROMPT_CHARS} characters; control characters shown as [U+XXXX]",
                )
            )
        return out

    def indicators(self, c: Campaign) -> Table:
        rows = []
        for ind in c.indicators:
            value = REDACTED_DOMAIN if self.redact and ind.type == "email-domain" else ind.value
            rows.append(
                [ind.type, clean(value, VALUE_CHARS), num(ind.count), day(ind.first_seen), day(ind.last_seen)]
            )
        return Table(
            "Indicators a partner could match on",
            ["type", "value", "exchanges", "first seen", "last seen"],
            rows,
            [False, False, True, False, False],
            "" if rows else "none recorded",
        )

    def top_accounts(self, c: Campaign) -> Table:
        top = self.accounts.top[c.campaign_id] if self.accounts else []
        rows = [
            [r["account_id"], score(r["score"]), r["verdict"], clean(r.get("reasons"), REASON_CHARS)]
            for r in top
        ]
        return Table(
            "Highest-scoring accounts",
            ["account", "score", "verdict", "reasons"],
            rows,
            [False, True, False, False],
        )

    def _largest_by_accounts(self) -> int:
        if not self.campaigns:
            return -1
        sizes = [c.accounts for c in self.campaigns]
        return sizes.index(max(sizes))

    def graph(self, c: Campaign) -> Figure | None:
        data = figures.campaign_edges(self.res, c.campaign_id)
        if data is None or not data.pairs:
            return None
        drawing = charts.account_graph(f"Account graph: {c.campaign_id}", data, c.accounts)
        rows = [
            ["accounts in the campaign", num(drawing.nodes_total)],
            ["accounts drawn", num(drawing.nodes_drawn)],
            ["linked account pairs", num(data.total_pairs)],
            ["links drawn (each account's strongest)", num(drawing.links_drawn)],
            ["connected groups among those drawn", num(drawing.components_drawn)],
        ]
        rows += [[f"pairs linked by {k}", num(n)] for k, n in sorted(data.by_kind.items())]
        note = "largest campaign by accounts; line width = link strength; sampled from the best-connected accounts when large"
        return Figure(drawing.chart, Table("Account graph", ["measure", "value"], rows, [False, True], note))

    # ---- the rest ----

    def flagged_outside(self) -> Section | None:
        a = self.accounts
        if a is None or not a.flagged_outside:
            return None
        s = Section("Flagged accounts outside campaigns", "flagged")
        s.blocks.append(
            Para(
                f"{a.flagged_outside:,} account(s) scored attack or suspect without being linked to a campaign; the highest-scoring:"
            )
        )
        rows = [
            [r["account_id"], score(r["score"]), r["verdict"], clean(r.get("reasons"), REASON_CHARS)]
            for r in a.flagged_outside_top
        ]
        s.blocks.append(
            Table(
                "Highest-scoring accounts outside campaigns",
                ["account", "score", "verdict", "reasons"],
                rows,
                [False, True, False, False],
            )
        )
        return s

    def quarantine_section(self) -> Section | None:
        q = self.quarantine
        if q is None:
            return None
        s = Section("Quarantined input", "quarantine")
        s.blocks.append(
            Para(f"{q.rows:,} input record(s) were set aside, each with its reason (quarantine.parquet).")
        )
        if q.by_reason:
            keys = [k for k in q.by_reason[0] if k != "rows"]
            s.blocks.append(
                Table(
                    "Quarantined records by reason",
                    [*keys, "rows"],
                    [[str(r[k]) for k in keys] + [num(r["rows"])] for r in q.by_reason],
                    [False] * len(keys) + [True],
                )
            )
        if q.examples:
            keys = list(q.examples[0])
            s.blocks.append(
                Table(
                    "First quarantined records",
                    keys,
                    [[str(r[k]) if r[k] is not None else "" for k in keys] for r in q.examples],
                )
            )
        return s

    def about(self) -> Section:
        s = Section("About this report", "about")
        if self.res.missing:
            s.blocks.append(
                Para(
                    "Missing from the results directory (the report shows what the others hold): "
                    + ", ".join(sorted(self.res.missing))
                    + ".",
                    "warn",
                )
            )
        if self.res.problems:
            s.blocks.append(Bullets("Problems reading the results", self.res.problems))
        s.blocks.append(
            Para(
                "Every text that came from traffic (prompts, user agents, e-mail domains, reasons) is shown escaped and cut "
                "to length; invisible and direction-changing characters appear as [U+XXXX]. "
                + (
                    "Prompts and e-mail addresses are redacted in this copy."
                    if self.redact
                    else "This copy is not redacted; `distillwatch report DIR --redact` makes one that is."
                ),
                "note",
            )
        )
        return s


def build(res: Results, redact: bool = False) -> Document:
    return _Builder(res, redact).document()


def _count_table(caption: str, counts: list[Count], unit: str) -> Table:
    rows = [[clean(c.value, VALUE_CHARS), num(c.count), pct(c.share)] for c in counts[:LISTED]]
    note = f"top {LISTED} of {len(counts)}" if len(counts) > LISTED else ""
    return Table(caption, ["value", unit, "share"], rows, [False, True, True], note)


def _iso_moment(v: Any) -> str:
    """An ISO 8601 time from JSON as 'YYYY-MM-DD HH:MM UTC' (the text itself, cleaned, if it is not one)."""
    try:
        t = datetime.fromisoformat(str(v))
    except ValueError:
        return clean(v, 40) or "n/a"
    return moment(t.astimezone(UTC) if t.tzinfo else t.replace(tzinfo=UTC))


def _int(v: Any) -> int | None:
    try:
        return None if v is None else int(v)
    except (TypeError, ValueError):
        return None


def _int_dict(v: Any) -> dict[str, int]:
    if not isinstance(v, dict):
        return {}
    return {str(k): n for k, x in v.items() if (n := _int(x)) is not None}


def _number(v: Any) -> float | None:
    try:
        return None if v is None else float(v)
    except (TypeError, ValueError):
        return None


def _float_dict(v: Any) -> dict[str, float]:
    if not isinstance(v, dict):
        return {}
    out = {}
    for k, x in v.items():
        f = _number(x)
        if f is not None:
            out[str(k)] = f
    return out
