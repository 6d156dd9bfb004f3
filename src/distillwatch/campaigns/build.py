"""Campaign records (``campaigns/model.py``) measured the way a report to a regulator would be.

Every figure is an engine query over the exchanges joined with the campaign
membership: volume, dates, rates, share of traffic, capabilities and CoT share
(over the prompt sample), infrastructure, registration and indicators.
Indicators never carry account ids, e-mail addresses or raw prompts; sample
prompts are bounded and stripped of control characters (attacker-controlled
text: the report escapes it again where it shows it).
"""

from __future__ import annotations

import re

import ibis
import ibis.expr.types as ir
import pyarrow as pa
from ibis import _

from distillwatch.campaigns.model import (
    Campaign,
    Count,
    DailyVolume,
    Indicator,
    Infrastructure,
    Registration,
)
from distillwatch.features.content import CAPABILITIES

TOP = 10  # values listed per campaign for each infrastructure / indicator kind
SAMPLE_PROMPTS = 5
# Exchanges ranked per campaign before their text is read; the first SAMPLE_PROMPTS of them with a prompt are quoted.
SAMPLE_CANDIDATES = 4 * SAMPLE_PROMPTS
# Expected candidates of a campaign sorted, over SAMPLE_CANDIDATES (see ``_candidates``).
CANDIDATE_OVERSAMPLE = 4
PROMPT_CHARS = 300
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def bounded_text(text: str, limit: int = PROMPT_CHARS) -> str:
    """Attacker-controlled text made safe to store and show: no control or bidi characters, bounded."""
    clean = _CONTROL.sub(" ", text)
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


def _rows(t: ir.Table) -> list[dict]:
    return t.to_pyarrow().to_pylist()


def _by_campaign(rows: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in rows:
        out.setdefault(r["campaign_id"], []).append(r)
    return out


def _top(t: ir.Table, column: str, k: int = TOP) -> dict[str, list[dict]]:
    """Top ``k`` values of ``column`` per campaign with exchange counts (and first/last seen).

    ``t``: one row per exchange, or a table of counts (``n``, with ``first`` and ``last`` seen) of some finer
    grouping than (campaign, ``column``).
    """
    t = t.filter(t[column].notnull())
    if "n" in t.columns:
        agg = {"count": _.n.sum(), "first": _.first.min(), "last": _.last.max()}
    else:
        agg = {"count": _.count(), **({"first": _.ts.min(), "last": _.ts.max()} if "ts" in t.columns else {})}
    g = t.group_by(["campaign_id", column]).aggregate(**agg)
    w = ibis.window(group_by="campaign_id", order_by=[ibis.desc("count"), column])
    g = g.mutate(r=ibis.row_number().over(w))
    return _by_campaign(_rows(g.filter(g.r < k).order_by(["campaign_id", "r"])))


def build_campaigns(
    con,
    ex: ir.Table,
    facts: ir.Table,
    records: ir.Table,
    membership: pa.Table,
    evidence: dict[str, list[str]],
    families: dict[str, list[str]],
    confidence: dict[str, float],
    total_exchanges: int,
    texts: ir.Table | None = None,
) -> list[Campaign]:
    """One record per campaign id in ``membership`` (account_id, campaign_id).

    ``ex`` needs no free text; ``texts`` (default ``ex``) is where the sample prompts are quoted from.
    """
    if membership.num_rows == 0:
        return []
    m = con.create_table("dw_membership", membership, temp=True, overwrite=True)
    mex = ex.join(m, "account_id")
    mfacts = facts.join(m, "account_id")
    mrec = records.join(m, "account_id")

    # Two passes over the campaigns' exchanges, each into a small table every figure is then summed from: at full
    # scale the exchanges are a view over the input (29M campaign rows of 90M), and each figure read them anew.
    # Per (campaign, account, day, user agent, model): volume, dates, daily activity, the address-fact shares.
    days = con.create_table(
        "dw_campaign_days",
        mex.group_by(["campaign_id", "account_id", "daynum", mex.ts.date().name("day"), "user_agent", "model"]).aggregate(
            n=_.count(),
            first=_.ts.min(),
            last=_.ts.max(),
            datacenter=_.is_datacenter.fill_null(False).cast("int64").sum(),
            vpn=_.is_vpn.fill_null(False).cast("int64").sum(),
            tor=_.is_tor.fill_null(False).cast("int64").sum(),
        ),
        temp=True,
        overwrite=True,
    )
    # Per (campaign, address and its prefix, AS, country): the infrastructure.
    addresses = con.create_table(
        "dw_campaign_addresses",
        mex.group_by(["campaign_id", "ip", "prefix", "asn", "country"]).aggregate(n=_.count(), first=_.ts.min(), last=_.ts.max()),
        temp=True,
        overwrite=True,
    )
    sums = days.group_by("campaign_id").aggregate(
        accounts=_.account_id.nunique(),
        exchanges=_.n.sum(),
        first_seen=_.first.min(),
        last_seen=_.last.max(),
        datacenter=_.datacenter.sum(),
        vpn=_.vpn.sum(),
        tor=_.tor.sum(),
    )
    distinct = addresses.group_by("campaign_id").aggregate(
        addresses=_.ip.nunique(), prefixes=_.prefix.nunique(), asns=_.asn.nunique()
    )
    totals = {r["campaign_id"]: r for r in _rows(sums.left_join(distinct, "campaign_id"))}
    for t in totals.values():
        # The share of exchanges from data-centre, VPN and Tor addresses (the flag of each exchange's address).
        for k in ("datacenter", "vpn", "tor"):
            t[k] = t[k] / t["exchanges"]
    account_days = {
        r["campaign_id"]: r["n"]
        for r in _rows(days.select("campaign_id", "account_id", "daynum").distinct().group_by("campaign_id").aggregate(n=_.count()))
    }
    daily = _by_campaign(
        _rows(
            days.group_by(["campaign_id", "day"])
            .aggregate(exchanges=_.n.sum(), accounts=_.account_id.nunique())
            .order_by(["campaign_id", "day"])
        )
    )
    caps = _by_campaign(
        _rows(mfacts.filter(mfacts.capability.notnull()).group_by(["campaign_id", "capability"]).aggregate(n=_.count()))
    )
    cot = {r["campaign_id"]: r["c"] for r in _rows(mfacts.group_by("campaign_id").aggregate(c=_.cot.cast("float64").mean()))}
    templates = _top(mfacts, "template_hash")
    tops = {col: _top(addresses, col) for col in ("prefix", "asn", "country", "ip")}
    tops |= {col: _top(days, col) for col in ("user_agent", "model")}
    reg = {
        r["campaign_id"]: r
        for r in _rows(
            mrec.group_by("campaign_id").aggregate(
                with_record=_.created_at.notnull().cast("int64").sum(),
                created_first=_.created_at.min(),
                created_last=_.created_at.max(),
                disposable=_.email_disposable.fill_null(False).cast("float64").mean(),
                shared_payment=(_.payment_accounts >= 2).cast("int64").sum(),
                payments=_.payment_fingerprint.nunique(),
            )
        )
    }
    domains = _by_campaign(
        _rows(
            mrec.filter(mrec.email_domain.notnull())
            .group_by(["campaign_id", "email_domain"])
            .aggregate(count=_.count())
            .order_by(["campaign_id", ibis.desc("count"), "email_domain"])
        )
    )
    samples = _sample_prompts(con, ex, ex if texts is None else texts, m, {cid: int(t["exchanges"]) for cid, t in totals.items()})

    out = []
    for cid in sorted(totals):
        t = totals[cid]
        n_ex, n_acc = int(t["exchanges"]), int(t["accounts"])
        days = (t["last_seen"].date() - t["first_seen"].date()).days + 1
        cap_rows = caps.get(cid, [])
        cap_total = sum(r["n"] for r in cap_rows) or 1
        capabilities = {c: 0.0 for c in CAPABILITIES}
        for r in cap_rows:
            capabilities[r["capability"]] = r["n"] / cap_total
        rg = reg.get(cid, {})
        span = None
        if rg.get("created_first") and rg.get("created_last"):
            span = (rg["created_last"] - rg["created_first"]).total_seconds() / 3600.0
        dom_rows = domains.get(cid, [])
        n_rec = sum(r["count"] for r in dom_rows) or 1
        infra = Infrastructure(
            addresses=int(t["addresses"]),
            prefixes=int(t["prefixes"]),
            asns=int(t["asns"] or 0),
            top_prefixes=_counts(tops["prefix"].get(cid, []), "prefix", n_ex),
            top_asns=_counts(tops["asn"].get(cid, []), "asn", n_ex),
            countries=_counts(tops["country"].get(cid, []), "country", n_ex),
            user_agents=_counts(tops["user_agent"].get(cid, []), "user_agent", n_ex, bound=True),
            datacenter_share=float(t["datacenter"] or 0.0),
            vpn_share=float(t["vpn"] or 0.0),
            tor_share=float(t["tor"] or 0.0),
        )
        registration = Registration(
            accounts_with_record=int(rg.get("with_record") or 0),
            created_first=rg.get("created_first"),
            created_last=rg.get("created_last"),
            signup_span_hours=span,
            email_domains=[Count(value=bounded_text(r["email_domain"], 100), count=int(r["count"]), share=r["count"] / n_rec) for r in dom_rows[:TOP]],
            disposable_email_share=float(rg.get("disposable") or 0.0),
            shared_payment_accounts=int(rg.get("shared_payment") or 0),
            distinct_payment_fingerprints=int(rg.get("payments") or 0),
        )
        sample_total = sum(r["n"] for r in cap_rows) or 1
        out.append(
            Campaign(
                campaign_id=cid,
                accounts=n_acc,
                exchanges=n_ex,
                first_seen=t["first_seen"],
                last_seen=t["last_seen"],
                days=days,
                exchanges_per_account=n_ex / max(n_acc, 1),
                exchanges_per_account_per_day=n_ex / max(account_days.get(cid, 1), 1),
                share_of_traffic=n_ex / max(total_exchanges, 1),
                capabilities=capabilities,
                cot_share=float(cot.get(cid) or 0.0),
                infrastructure=infra,
                registration=registration,
                confidence=float(min(max(confidence.get(cid, 0.0), 0.0), 1.0)),
                indicators=_indicators(tops, templates.get(cid, []), dom_rows, cid),
                evidence=evidence.get(cid, []),
                signal_families=families.get(cid, []),
                template_hashes=_counts(templates.get(cid, []), "template_hash", sample_total),
                sample_prompts=samples.get(cid, []),
                daily=[DailyVolume(day=r["day"].isoformat(), exchanges=int(r["exchanges"]), accounts=int(r["accounts"])) for r in daily.get(cid, [])],
                models=_counts(tops["model"].get(cid, []), "model", n_ex, bound=True),
            )
        )
    return out


def _counts(rows: list[dict], column: str, total: int, bound: bool = False) -> list[Count]:
    out = []
    for r in rows:
        value = str(r[column])
        out.append(Count(value=bounded_text(value, 200) if bound else value, count=int(r["count"]), share=r["count"] / max(total, 1)))
    return out


def _prefix_type(prefix: str) -> str:
    return "ipv6-prefix" if ":" in prefix else "ipv4-prefix"


def _indicators(tops: dict, templates: list[dict], domains: list[dict], cid: str) -> list[Indicator]:
    """Matchable values (never account ids, e-mail addresses or raw prompts)."""
    inds: list[Indicator] = []
    for r in tops["prefix"].get(cid, []):
        inds.append(Indicator(type=_prefix_type(r["prefix"]), value=r["prefix"], count=int(r["count"]), first_seen=r["first"], last_seen=r["last"]))
    for r in tops["asn"].get(cid, []):
        inds.append(Indicator(type="asn", value=str(r["asn"]), count=int(r["count"]), first_seen=r["first"], last_seen=r["last"]))
    for r in domains[:TOP]:
        inds.append(Indicator(type="email-domain", value=bounded_text(r["email_domain"], 100), count=int(r["count"])))
    for r in templates:
        inds.append(Indicator(type="template-hash", value=str(r["template_hash"]), count=int(r["count"])))
    for r in tops["user_agent"].get(cid, [])[:3]:
        inds.append(Indicator(type="user-agent", value=bounded_text(r["user_agent"], 200), count=int(r["count"]), first_seen=r["first"], last_seen=r["last"]))
    return inds


def _sample_prompts(con, rows: ir.Table, texts: ir.Table, m: ir.Table, exchanges: dict[str, int]) -> dict[str, list[str]]:
    """A few prompts per campaign, deterministic (smallest request-id hash among its exchanges with a prompt), bounded.

    The ranking reads request ids only, from ``rows`` (no free text): the first ``SAMPLE_CANDIDATES`` of each
    campaign are kept, then their text is read from ``texts`` in one pass.  A prompt is optional, so a campaign
    whose candidates carry fewer than ``SAMPLE_PROMPTS`` prompts is ranked again over its exchanges that have one
    (the same choice, at the cost of reading its prompts twice).  ``exchanges``: each campaign's exchanges in
    ``rows``.  Request ids are unique per account (ingest guarantees it).
    """
    candidates = _candidates(con, rows, m, exchanges)
    found = _by_campaign(_quote(candidates, texts))
    ranked = {r["campaign_id"]: r["n"] for r in _rows(candidates.group_by("campaign_id").aggregate(n=_.count()))}
    out = {cid: [r["prompt"] for r in found.get(cid, []) if r["prompt"] is not None] for cid in ranked}
    short = [cid for cid, n in ranked.items() if len(out[cid]) < SAMPLE_PROMPTS and n == SAMPLE_CANDIDATES]
    if short:
        with_prompt = texts.filter(texts.prompt.notnull())
        again = _first_by_request_hash(with_prompt, m.filter(m.campaign_id.isin(short)), SAMPLE_PROMPTS)
        for cid, picked in _by_campaign(_quote(again, texts)).items():
            out[cid] = [r["prompt"] for r in picked]
    return {cid: [bounded_text(p) for p in prompts[:SAMPLE_PROMPTS]] for cid, prompts in out.items() if prompts}


def _candidates(con, rows: ir.Table, m: ir.Table, exchanges: dict[str, int]) -> ir.Table:
    """Each campaign's first ``SAMPLE_CANDIDATES`` exchanges by request-id hash (``_first_by_request_hash``).

    Sorting all of a campaign's exchanges (29M at the reported campaign's full scale) to keep 20 cost more than
    every other figure together.  The hash is uniform over its range, so the exchanges whose hash lies below a
    cut-off that lets through ``CANDIDATE_OVERSAMPLE`` x ``SAMPLE_CANDIDATES`` of a campaign's exchanges on
    average hold its first ``SAMPLE_CANDIDATES`` whenever at least that many pass (fewer pass with probability
    about 1e-15); only those are sorted.  A campaign for which fewer pass is ranked over all its exchanges, so
    the result never depends on the hash being uniform, only the cost does.  Both engines hash to a signed
    64-bit integer (DuckDB's ``hash``; Spark's ``xxhash64``, see ``distillwatch.spark``).
    """
    share = {cid: CANDIDATE_OVERSAMPLE * SAMPLE_CANDIDATES / max(n, 1) for cid, n in exchanges.items()}
    # The hash as ibis orders it: a signed 64-bit integer; null: every exchange of the campaign is a candidate.
    below = [int(-(2**63) + q * 2.0**64) if q < 1.0 else None for q in share.values()]
    cuts = con.create_table(
        "dw_sample_cuts", pa.table({"campaign_id": list(share), "below": pa.array(below, pa.int64())}), temp=True, overwrite=True
    )
    keyed = rows.select("account_id", "request_id").join(m.join(cuts, "campaign_id"), "account_id")
    passed = keyed.filter(keyed.below.isnull() | (keyed.request_id.hash() < keyed.below)).drop("below")
    first = con.create_table(
        "dw_sample_candidates", _first_by_request_hash(passed, m, SAMPLE_CANDIDATES, joined=True), temp=True, overwrite=True
    )
    found = {r["campaign_id"]: r["n"] for r in _rows(first.group_by("campaign_id").aggregate(n=_.count()))}
    short = [cid for cid, n in exchanges.items() if found.get(cid, 0) < min(n, SAMPLE_CANDIDATES)]
    if not short:
        return first
    again = _first_by_request_hash(rows, m.filter(m.campaign_id.isin(short)), SAMPLE_CANDIDATES)
    return con.create_table(
        "dw_sample_candidates_all", first.filter(~first.campaign_id.isin(short)).union(again), temp=True, overwrite=True
    )


def _first_by_request_hash(t: ir.Table, m: ir.Table, k: int, joined: bool = False) -> ir.Table:
    """(account_id, request_id, campaign_id, r): each campaign's first ``k`` exchanges of ``t`` by request-id hash.

    ``joined``: ``t`` is already (account_id, request_id, campaign_id).  The ranking window carries request ids
    only: one that carried the prompts sorted every campaign exchange with its text.
    """
    rows = t if joined else t.select("account_id", "request_id").join(m, "account_id")
    w = ibis.window(group_by="campaign_id", order_by=[rows.request_id.hash(), rows.request_id])
    ranked = rows.mutate(r=ibis.row_number().over(w))
    return ranked.filter(ranked.r < k)


def _quote(picked: ir.Table, texts: ir.Table) -> list[dict]:
    """The prompts (null where there is none) of the ``picked`` exchanges, by campaign and rank."""
    text = texts.select("account_id", "request_id", prompt=texts.prompt.substr(0, PROMPT_CHARS * 2))
    j = picked.join(text, [picked.account_id == text.account_id, picked.request_id == text.request_id])
    s = j.select(campaign_id=picked.campaign_id, r=picked.r, prompt=text.prompt)
    return _rows(s.order_by(["campaign_id", "r"]))
