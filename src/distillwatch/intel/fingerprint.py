"""Campaign fingerprints: what makes a campaign recognisable, and how alike two are.

A fingerprint holds only what can be shared and stored without exposing anyone:
template hashes and a MinHash sketch of the prompt templates (never raw prompts),
the capability profile, infrastructure (network prefixes, ASNs, hashed user
agents), registration habits (e-mail domains and local-part shapes, sign-up
rate and hours) and a timing signature (hour-of-day profile, rate per account-day).

`compare(a, b)` gives a similarity in 0..1 per evidence type and an overall
similarity, the weighted mean of the types both sides carry (`EVIDENCE_WEIGHTS`).
Templates and infrastructure weigh most because they are specific to one
operator; capability mix and timing weigh least because every harvest campaign
wants code and runs around the clock, so they separate campaigns poorly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime

import numpy as np
from pydantic import BaseModel, Field

from distillwatch.campaigns.model import Campaign

FINGERPRINT_VERSION = 1

# Overall similarity = sum(weight * similarity) over the evidence types both
# fingerprints carry, divided by the sum of those weights.
EVIDENCE_WEIGHTS: dict[str, float] = {
    "templates": 0.35,
    "infrastructure": 0.25,
    "registration": 0.20,
    "timing": 0.10,
    "capabilities": 0.10,
}

# Free-mail providers are where millions of honest customers sign up: an indicator on
# them would flag everyone (never exported), and two campaigns both using them are not
# alike for it (left out of the registration evidence).
COMMON_MAIL = frozenset(
    (
        "gmail.com googlemail.com outlook.com hotmail.com live.com msn.com yahoo.com icloud.com me.com aol.com "
        "proton.me protonmail.com pm.me gmx.com gmx.de gmx.net mail.ru yandex.ru yandex.com qq.com 163.com 126.com "
        "naver.com web.de zoho.com mail.com ymail.com fastmail.com tutanota.com "
        "yahoo.co.jp yahoo.co.uk yahoo.fr yahoo.de hotmail.co.uk hotmail.fr live.co.uk outlook.jp "
        "t-online.de orange.fr free.fr laposte.net libero.it daum.net hanmail.net sina.com foxmail.com "
        "rediffmail.com seznam.cz wp.pl o2.pl rambler.ru bk.ru list.ru inbox.ru"
    ).split()
)

# Lists kept per fingerprint are bounded so that a huge campaign stays a small record.
MAX_ITEMS = 200


class Fingerprint(BaseModel):
    """A campaign's shareable signature.  Distributions map a value to its share (0..1)."""

    version: int = FINGERPRINT_VERSION
    campaign_id: str | None = None
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    accounts: int = 0
    exchanges: int = 0
    templates: dict[str, float] = Field({}, description="normalised-template hash -> share of exchanges")
    template_sketch: list[int] = Field(
        [], max_length=1024, description="MinHash of the union of its templates' word shingles"
    )
    capabilities: dict[str, float] = {}
    cot_share: float | None = None
    prefixes: dict[str, float] = Field({}, description="/24 or /48 prefix -> share of exchanges")
    asns: dict[str, float] = {}
    user_agents: dict[str, float] = Field({}, description="sha256 prefix of the user agent -> share")
    email_domains: dict[str, float] = Field({}, description="domain -> share of accounts")
    email_patterns: dict[str, float] = Field({}, description="local-part shape -> share of accounts")
    disposable_email_share: float | None = None
    signup_rate_per_hour: float | None = Field(
        None, description="accounts registered per hour of the sign-up span"
    )
    signup_hours: list[float] = Field(
        [], max_length=24, description="24 shares of sign-ups by UTC hour, empty when unknown"
    )
    hour_profile: list[float] = Field(
        [], max_length=24, description="24 shares of exchanges by UTC hour, empty when unknown"
    )
    exchanges_per_account_day: float | None = None


class Similarity(BaseModel):
    """How alike two fingerprints are, per evidence type (None: one side lacks it)."""

    by_type: dict[str, float | None]
    overall: float
    details: dict[str, str] = Field({}, description="evidence type -> what was shared, in words")

    def explain(self) -> str:
        parts = []
        for kind in EVIDENCE_WEIGHTS:
            value = self.by_type.get(kind)
            if value is None:
                parts.append(f"{kind}: no data")
            else:
                detail = self.details.get(kind, "")
                parts.append(f"{kind} {value:.2f}" + (f" ({detail})" if detail else ""))
        return "; ".join(parts)


def hash_text(value: str) -> str:
    """A short stable digest for attacker-controlled text we must compare but never show."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _bounded(dist: Mapping[str, float]) -> dict[str, float]:
    top = sorted(dist.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_ITEMS]
    return {k: float(v) for k, v in top}


def from_campaign(c: Campaign) -> Fingerprint:
    """The fingerprint a campaign record alone supports (no exchanges needed).

    Hour profile, template sketch, e-mail shapes and sign-up hours need the raw
    tables; `profile.enrich_fingerprints` adds them when those are at hand.
    """
    n = max(c.exchanges, 1)
    prefixes = {x.value: x.share for x in c.infrastructure.top_prefixes}
    asns = {x.value.upper().removeprefix("AS"): x.share for x in c.infrastructure.top_asns}
    templates = {x.value: x.share for x in c.template_hashes}
    domains = {
        x.value.lower(): x.share for x in c.registration.email_domains if x.value.lower() not in COMMON_MAIL
    }
    # Indicators often list more values than the "top" lists; fold them in.
    for ind in c.indicators:
        share = ind.count / n
        if ind.type in ("ipv4-prefix", "ipv6-prefix"):
            prefixes.setdefault(ind.value, share)
        elif ind.type == "asn":
            asns.setdefault(ind.value.upper().removeprefix("AS"), share)
        elif ind.type == "template-hash":
            templates.setdefault(ind.value, share)
        elif ind.type == "email-domain" and ind.value.lower() not in COMMON_MAIL:
            domains.setdefault(ind.value.lower(), ind.count / max(c.accounts, 1))
    reg = c.registration
    rate = None
    if reg.accounts_with_record and reg.signup_span_hours is not None:
        # An hour floor keeps a burst of sign-ups in one minute from becoming an infinite rate.
        rate = reg.accounts_with_record / max(reg.signup_span_hours, 1.0)
    return Fingerprint(
        campaign_id=c.campaign_id,
        first_seen=c.first_seen,
        last_seen=c.last_seen,
        accounts=c.accounts,
        exchanges=c.exchanges,
        templates=_bounded(templates),
        capabilities=dict(c.capabilities),
        cot_share=c.cot_share,
        prefixes=_bounded(prefixes),
        asns=_bounded(asns),
        user_agents=_bounded({hash_text(x.value): x.share for x in c.infrastructure.user_agents}),
        email_domains=_bounded(domains),
        disposable_email_share=reg.disposable_email_share if reg.accounts_with_record else None,
        signup_rate_per_hour=rate,
        exchanges_per_account_day=c.exchanges_per_account_per_day or None,
    )


# --- similarity of the parts ---------------------------------------------------------------


def distribution_similarity(a: Mapping[str, float], b: Mapping[str, float]) -> float | None:
    """Half weighted Jaccard (are the shares alike), half overlap coefficient (is the smaller set inside the larger).

    The overlap half keeps a campaign that grew (added prefixes or templates) close
    to its earlier self; the weighted half keeps two campaigns that share only a
    minor value apart.  None when either side is empty: absence is not evidence.
    """
    if not a or not b:
        return None
    keys = set(a) | set(b)
    mins = sum(min(a.get(k, 0.0), b.get(k, 0.0)) for k in keys)
    maxs = sum(max(a.get(k, 0.0), b.get(k, 0.0)) for k in keys)
    weighted = mins / maxs if maxs > 0 else 0.0
    overlap = len(set(a) & set(b)) / min(len(a), len(b))
    return 0.5 * weighted + 0.5 * overlap


def profile_similarity(a: list[float], b: list[float]) -> float | None:
    """Histogram intersection of two normalised profiles (1 - total variation distance)."""
    if len(a) == 0 or len(b) == 0 or len(a) != len(b):
        return None
    pa_, pb_ = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if pa_.sum() <= 0 or pb_.sum() <= 0:
        return None
    return float(np.minimum(pa_ / pa_.sum(), pb_ / pb_.sum()).sum())


def sketch_similarity(a: list[int], b: list[int]) -> float | None:
    """MinHash estimate of the Jaccard similarity of the two shingle sets."""
    if not a or not b or len(a) != len(b):
        return None
    return float(np.mean(np.asarray(a, dtype=np.uint64) == np.asarray(b, dtype=np.uint64)))


def ratio_similarity(a: float | None, b: float | None) -> float | None:
    """min/max of two positive rates: 1 when equal, 0.5 when one is double the other."""
    if a is None or b is None or a <= 0 or b <= 0:
        return None
    return min(a, b) / max(a, b)


def closeness(a: float | None, b: float | None) -> float | None:
    if a is None or b is None:
        return None
    return 1.0 - min(abs(a - b), 1.0)


def _weighted(parts: list[tuple[float, float | None]]) -> float | None:
    """Weighted mean of the parts that are known; None when none is."""
    known = [(w, s) for w, s in parts if s is not None]
    total = sum(w for w, _ in known)
    if total <= 0:
        return None
    return sum(w * s for w, s in known) / total


def _shared(a: Mapping[str, float], b: Mapping[str, float], label: str, limit: int = 3) -> str:
    common = sorted(set(a) & set(b), key=lambda k: -(a[k] + b[k]))
    if not a or not b:
        return ""
    head = ", ".join(common[:limit])
    return f"{len(common)} of {min(len(a), len(b))} {label} shared" + (f": {head}" if head else "")


def compare(a: Fingerprint, b: Fingerprint) -> Similarity:
    """Similarity per evidence type and overall (see EVIDENCE_WEIGHTS)."""
    details: dict[str, str] = {}

    tmpl_dist = distribution_similarity(a.templates, b.templates)
    tmpl_sketch = sketch_similarity(a.template_sketch, b.template_sketch)
    # Exact hashes miss paraphrased templates; the sketch catches them.  Either is strong evidence.
    known = [s for s in (tmpl_dist, tmpl_sketch) if s is not None]
    templates = max(known) if known else None
    if templates is not None:
        bits = [_shared(a.templates, b.templates, "template hashes")] if tmpl_dist is not None else []
        if tmpl_sketch is not None:
            bits.append(f"shingle overlap ~{tmpl_sketch:.0%}")
        details["templates"] = "; ".join(x for x in bits if x)

    pfx = distribution_similarity(a.prefixes, b.prefixes)
    asn = distribution_similarity(a.asns, b.asns)
    ua = distribution_similarity(a.user_agents, b.user_agents)
    infrastructure = _weighted([(0.5, pfx), (0.35, asn), (0.15, ua)])
    if infrastructure is not None:
        bits = [_shared(a.prefixes, b.prefixes, "prefixes"), _shared(a.asns, b.asns, "ASNs")]
        if ua is not None:
            bits.append(_shared(a.user_agents, b.user_agents, "user agents", limit=0))
        details["infrastructure"] = "; ".join(x for x in bits if x)

    dom = distribution_similarity(a.email_domains, b.email_domains)
    shape = distribution_similarity(a.email_patterns, b.email_patterns)
    disp = closeness(a.disposable_email_share, b.disposable_email_share)
    rate = ratio_similarity(a.signup_rate_per_hour, b.signup_rate_per_hour)
    hours = profile_similarity(a.signup_hours, b.signup_hours)
    registration = _weighted([(0.4, dom), (0.2, shape), (0.1, disp), (0.15, rate), (0.15, hours)])
    if registration is not None:
        bits = [_shared(a.email_domains, b.email_domains, "e-mail domains")]
        if rate is not None:
            bits.append(f"sign-up rate {a.signup_rate_per_hour:.1f} vs {b.signup_rate_per_hour:.1f}/h")
        details["registration"] = "; ".join(x for x in bits if x)

    hp = profile_similarity(a.hour_profile, b.hour_profile)
    pace = ratio_similarity(a.exchanges_per_account_day, b.exchanges_per_account_day)
    timing = _weighted([(0.6, hp), (0.4, pace)])
    if timing is not None:
        bits = []
        if hp is not None:
            bits.append(f"hour-of-day profiles overlap {hp:.0%}")
        if pace is not None:
            bits.append(
                f"{a.exchanges_per_account_day:.0f} vs {b.exchanges_per_account_day:.0f} exchanges per account-day"
            )
        details["timing"] = "; ".join(bits)

    caps = profile_similarity(*_aligned(a.capabilities, b.capabilities))
    capabilities = _weighted([(0.8, caps), (0.2, closeness(a.cot_share, b.cot_share))])
    if caps is not None:
        details["capabilities"] = f"capability mixes overlap {caps:.0%}"

    by_type = {
        "templates": templates,
        "infrastructure": infrastructure,
        "registration": registration,
        "timing": timing,
        "capabilities": capabilities,
    }
    overall = _weighted([(EVIDENCE_WEIGHTS[k], v) for k, v in by_type.items()]) or 0.0
    return Similarity(by_type=by_type, overall=round(overall, 4), details=details)


def _aligned(a: Mapping[str, float], b: Mapping[str, float]) -> tuple[list[float], list[float]]:
    keys = sorted(set(a) | set(b))
    return [a.get(k, 0.0) for k in keys], [b.get(k, 0.0) for k in keys]
