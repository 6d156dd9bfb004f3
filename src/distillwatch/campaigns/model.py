"""The campaign record: what `scan` writes to DIR/campaigns.json.

Detection fills it; the report, the response policy and threat intelligence
read it.  Fields required by shared/SCHEMA.md are marked; everything else is an
optional addition (add freely, never rename or drop).
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class Count(BaseModel):
    """A value seen in a campaign with how many of its exchanges (or accounts) carry it."""

    value: str
    count: int
    share: float = Field(description="count / the campaign's exchanges (or accounts, for registration)")


class Infrastructure(BaseModel):
    addresses: int = Field(description="distinct client addresses")
    prefixes: int = Field(description="distinct /24 (IPv4) or /48 (IPv6) prefixes")
    asns: int = Field(0, description="distinct autonomous systems, when known")
    top_prefixes: list[Count] = []
    top_asns: list[Count] = []
    countries: list[Count] = []
    user_agents: list[Count] = []
    datacenter_share: float = 0.0
    vpn_share: float = 0.0
    tor_share: float = 0.0


class Registration(BaseModel):
    accounts_with_record: int = 0
    created_first: datetime | None = None
    created_last: datetime | None = None
    signup_span_hours: float | None = None
    email_domains: list[Count] = []
    disposable_email_share: float = 0.0
    shared_payment_accounts: int = Field(0, description="accounts whose payment fingerprint another account in the campaign shares")
    distinct_payment_fingerprints: int = 0


class Indicator(BaseModel):
    """Something a partner could match on.  Never an account id, e-mail or raw prompt."""

    type: str = Field(description="ipv4-prefix | ipv6-prefix | ip | asn | email-domain | template-hash | user-agent")
    value: str
    count: int = 0
    first_seen: datetime | None = None
    last_seen: datetime | None = None


class DailyVolume(BaseModel):
    day: str  # ISO date
    exchanges: int
    accounts: int


class CampaignHistory(BaseModel):
    """How this campaign relates to earlier scans (filled by intel.track)."""

    status: str = Field(description="new | returning")
    first_seen: datetime | None = Field(None, description="first exchange in any scan that saw it")
    first_run_id: str | None = None
    scans: int = Field(1, description="scans that saw it, this one included")
    previous_run_id: str | None = None
    match_score: float | None = Field(None, description="fingerprint similarity to its previous sighting")
    accounts_before: int | None = None
    exchanges_before: int | None = None
    account_growth: float | None = Field(None, description="accounts now / accounts at the previous sighting")
    new_prefixes: list[str] = []
    new_asns: list[str] = []
    new_templates: list[str] = []
    new_email_domains: list[str] = []
    summary: str = ""


class ActorCandidate(BaseModel):
    actor: str
    confidence: float = Field(ge=0.0, le=1.0, description="overall fingerprint similarity")
    similarity: dict[str, float] = Field({}, description="evidence type -> similarity 0..1")
    explanation: str = ""


class Attribution(BaseModel):
    """Which known actor is behind the campaign (filled by intel.attribution)."""

    actor: str | None = Field(None, description="best candidate at or above the threshold; None = unattributed")
    confidence: float = 0.0
    threshold: float = 0.0
    labelled: bool = Field(False, description="an analyst labelled this campaign by hand")
    candidates: list[ActorCandidate] = []
    explanation: str = ""


class Campaign(BaseModel):
    # required by the contract (shared/SCHEMA.md)
    campaign_id: str
    accounts: int
    exchanges: int
    first_seen: datetime
    last_seen: datetime
    days: int = Field(description="calendar days from first to last exchange, inclusive")
    exchanges_per_account: float
    capabilities: dict[str, float] = Field(description="capability name -> share of the campaign's exchanges")
    infrastructure: Infrastructure
    confidence: float = Field(ge=0.0, le=1.0)
    indicators: list[Indicator]
    # additions
    exchanges_per_account_per_day: float = 0.0
    share_of_traffic: float = 0.0
    cot_share: float = Field(0.0, description="share of exchanges eliciting chain-of-thought")
    registration: Registration = Registration()
    evidence: list[str] = Field([], description="why this is a campaign, in words an analyst can check")
    signal_families: list[str] = []
    template_hashes: list[Count] = []
    sample_prompts: list[str] = Field([], description="a few prompts, bounded in length; attacker-controlled text")
    daily: list[DailyVolume] = []
    models: list[Count] = []
    history: CampaignHistory | None = None  # intel: tracking across scans
    attribution: Attribution | None = None  # intel: candidate actors


def write_campaigns(path, campaigns: list[Campaign]) -> None:
    import json

    with open(path, "w", encoding="utf-8") as fh:
        json.dump([c.model_dump(mode="json") for c in campaigns], fh, indent=2, ensure_ascii=False)


def read_campaigns(path) -> list[Campaign]:
    import json

    with open(path, encoding="utf-8") as fh:
        return [Campaign.model_validate(c) for c in json.load(fh)]
