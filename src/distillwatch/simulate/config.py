"""What a simulation run is made of: pydantic models, evasion levels and presets.

A run is a benign population (with its hard, legitimate groups) plus zero or
more distillation campaigns.  Every campaign knob the issue names is a field
here; ``docs/simulator.md`` explains what real behaviour each one models.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator

Evasion = Literal["none", "moderate", "strong"]
EVASION_LEVELS: tuple[str, ...] = ("none", "moderate", "strong")

# Task families of the prompt generator.  Campaigns target a subset.
FAMILIES: tuple[str, ...] = (
    "chat",
    "writing",
    "coding",
    "debugging",
    "math",
    "analysis",
    "translation",
    "roleplay",
    "agentic",
    "long_horizon",
)


class Registration(BaseModel):
    """How the campaign's accounts came to exist."""

    pattern: Literal["burst", "aged"] = Field(
        "burst", description="burst: registered in waves just before use; aged: bought or farmed accounts with history"
    )
    waves: int = Field(4, ge=1, description="registration waves (burst pattern)")
    wave_hours: float = Field(3.0, gt=0, description="each wave's accounts register within this many hours")
    lead_days: float = Field(2.0, ge=0, description="days between a wave and the first use of its accounts")
    email_style: Literal["disposable", "patterned", "natural"] = Field(
        "disposable", description="disposable domains; one local-part pattern on webmail; or like everyone else"
    )
    accounts_per_payment: int = Field(
        40, ge=1, description="accounts sharing one payment instrument (1 = a unique card per account)"
    )
    signup_from_egress: bool = Field(True, description="sign-up address comes from the same proxy egress as the traffic")


class Infrastructure(BaseModel):
    """Where the campaign's requests come from."""

    kind: Literal["datacenter", "residential"] = "datacenter"
    countries: list[str] = Field(default_factory=lambda: ["US"], description="exit countries (geography spoofing)")
    pool_size: int = Field(400, ge=1, description="distinct exit addresses the operator rents")
    rotation: Literal["per_request", "per_session", "sticky"] = Field(
        "per_request", description="a new exit per request, per conversation, or one exit per account for days"
    )
    sticky_days: int = Field(7, ge=1, description="days an account keeps its exit (sticky rotation)")
    ipv6_share: float = Field(0.0, ge=0, le=1, description="share of exits that are IPv6 (where the pool has them)")
    shared_client: bool = Field(True, description="one client stack (user agent) across all accounts")
    home_country: str = Field("CN", description="where the operator really sits (a region the provider does not serve)")
    leak_share: float = Field(
        0.0, ge=0, le=1, description="share of requests sent from the operator's own network, bypassing the proxy"
    )


class Prompting(BaseModel):
    """What the campaign asks for and how its prompts are produced."""

    capabilities: dict[str, float] = Field(
        default_factory=lambda: {"coding": 0.35, "agentic": 0.25, "long_horizon": 0.2, "debugging": 0.1, "math": 0.1},
        description="task family -> share of the campaign's own (non-resold) conversations",
    )
    templates: int = Field(6, ge=1, description="distinct task templates the generator fills")
    paraphrase: Literal["none", "light", "full"] = Field(
        "none", description="none: fixed wording; light: a few variants per frame; full: written like ordinary users"
    )
    cot_share: float = Field(0.9, ge=0, le=1, description="share of requests that elicit chain-of-thought")
    cot_in_system: float = Field(0.0, ge=0, le=1, description="of those, share placing the instruction in the system prompt")
    turns: float = Field(1.0, ge=1, description="mean turns per conversation (long-horizon tasks add more)")
    tools: int = Field(12, ge=0, description="tool definitions sent with agentic requests (0: none)")
    tools_vary: bool = Field(False, description="tool count varies per request like real agents")
    tools_always: bool = Field(True, description="the harvest harness sends its tool schema with every request")


class Timing(BaseModel):
    pattern: Literal["flat", "operator", "human"] = Field(
        "flat", description="flat 24 h; the operator's working hours in one zone; each account's own local rhythm"
    )
    operator_utc_offset: float = Field(8.0, description="operator's time zone, hours from UTC (operator pattern)")
    rate_sigma: float = Field(0.15, ge=0, description="lognormal spread of per-account daily volume")
    active_day_share: float = Field(1.0, gt=0, le=1, description="probability an account is used on a day of its life")
    staggered: bool = Field(False, description="accounts join and leave over the campaign instead of all at once")
    turn_gap_seconds: float = Field(6.0, gt=0, description="mean gap between turns of one conversation")


class Mixing(BaseModel):
    genuine_share: float = Field(
        0.0, ge=0, lt=1, description="share of conversations that are genuine resold customer traffic"
    )


class Pivot(BaseModel):
    enabled: bool = True
    delay_hours: float = Field(12.0, ge=0, description="hours after a new model's release before the switch")


class CampaignConfig(BaseModel):
    campaign_id: str
    accounts: int = Field(ge=1)
    exchanges: int = Field(ge=1)
    start: date
    end: date = Field(description="last day, inclusive")
    registration: Registration = Registration()
    infrastructure: Infrastructure = Infrastructure()
    prompting: Prompting = Prompting()
    timing: Timing = Timing()
    mixing: Mixing = Mixing()
    pivot: Pivot = Pivot()

    @model_validator(mode="after")
    def _dates(self) -> CampaignConfig:
        if self.end < self.start:
            raise ValueError(f"campaign {self.campaign_id}: end {self.end} is before start {self.start}")
        unknown = set(self.prompting.capabilities) - set(FAMILIES)
        if unknown:
            raise ValueError(f"campaign {self.campaign_id}: unknown capabilities {sorted(unknown)}; use {FAMILIES}")
        return self

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


class ModelRelease(BaseModel):
    name: str
    released: datetime
    share_cap: float = Field(0.6, description="share of benign traffic the model reaches once adopted")


class BenignConfig(BaseModel):
    """The legitimate population, including the groups that look suspicious but are not."""

    accounts: int = Field(ge=1, description="ordinary accounts (trap groups come on top)")
    exchanges: int = Field(ge=1, description="target benign exchanges over the window, all groups together")
    vpn_share: float = Field(0.05, ge=0, le=1, description="share of ordinary-looking accounts behind a VPN or relay")
    universities: int = 1
    university_accounts: int = Field(300, description="accounts per university")
    coding_companies: int = 2
    coding_accounts: int = Field(40, description="accounts per company running coding agents")
    batch_eval_accounts: int = Field(3, description="customers running benchmark evaluations")
    batch_eval_prompts: int = Field(3000, description="prompts in one benchmark run")
    resellers: int = 1
    reseller_accounts: int = Field(120, description="end-user accounts per legitimate gateway org")
    missing_account_records: float = Field(
        0.01, ge=0, le=0.2, description="share of benign accounts absent from accounts.parquet (as in real exports)"
    )


class SimulationConfig(BaseModel):
    preset: str
    seed: int = 0
    evasion: Evasion = "none"
    start: date
    end: date = Field(description="last day, inclusive")
    benign: BenignConfig
    campaigns: list[CampaignConfig] = []
    models: list[ModelRelease]
    rows_per_group: int = Field(250_000, ge=1000, description="Parquet row group size (bounds memory)")

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @model_validator(mode="after")
    def _inside(self) -> SimulationConfig:
        for c in self.campaigns:
            if c.start < self.start or c.end > self.end:
                raise ValueError(f"campaign {c.campaign_id} runs {c.start}..{c.end}, outside {self.start}..{self.end}")
        return self


def _utc(d: date, hour: int = 0) -> datetime:
    return datetime(d.year, d.month, d.day, hour, tzinfo=UTC)


def tactics(level: Evasion, *, countries: list[str], operator_utc_offset: float) -> dict[str, BaseModel]:
    """The campaign knobs each evasion level turns on (documented in docs/simulator.md)."""
    if level == "none":
        return {
            "registration": Registration(
                pattern="burst", waves=3, wave_hours=2, email_style="disposable", accounts_per_payment=40
            ),
            "infrastructure": Infrastructure(
                kind="datacenter", countries=countries, pool_size=300, rotation="per_request", shared_client=True,
                leak_share=0.003,
            ),
            "prompting": Prompting(templates=6, paraphrase="none", cot_share=0.95, cot_in_system=0.0, turns=1.0),
            "timing": Timing(pattern="flat", rate_sigma=0.1, active_day_share=1.0, turn_gap_seconds=4),
            "mixing": Mixing(genuine_share=0.0),
        }
    if level == "moderate":
        return {
            "registration": Registration(
                pattern="burst", waves=12, wave_hours=20, lead_days=5, email_style="patterned", accounts_per_payment=6
            ),
            "infrastructure": Infrastructure(
                kind="residential", countries=countries, pool_size=6000, rotation="per_session", ipv6_share=0.1,
                shared_client=False, leak_share=0.0005,
            ),
            "prompting": Prompting(
                templates=24, paraphrase="light", cot_share=0.7, cot_in_system=0.6, turns=2.0, tools_vary=False,
                tools_always=False,
            ),
            "timing": Timing(
                pattern="operator", operator_utc_offset=operator_utc_offset, rate_sigma=0.35, active_day_share=0.9,
                staggered=True, turn_gap_seconds=20,
            ),
            "mixing": Mixing(genuine_share=0.1),
        }
    return {
        "registration": Registration(
            pattern="aged", email_style="natural", accounts_per_payment=1, signup_from_egress=False
        ),
        "infrastructure": Infrastructure(
            kind="residential", countries=countries, pool_size=1, rotation="sticky", sticky_days=10, ipv6_share=0.25,
            shared_client=False,
        ),
        "prompting": Prompting(
            templates=60, paraphrase="full", cot_share=0.35, cot_in_system=0.5, turns=2.5, tools_vary=True, tools_always=False
        ),
        "timing": Timing(pattern="human", rate_sigma=0.6, active_day_share=0.8, staggered=True, turn_gap_seconds=70),
        "mixing": Mixing(genuine_share=0.35),
    }


def campaign(
    campaign_id: str,
    accounts: int,
    exchanges: int,
    start: date,
    end: date,
    level: Evasion,
    *,
    countries: list[str],
    operator_utc_offset: float = 8.0,
    capabilities: dict[str, float] | None = None,
) -> CampaignConfig:
    parts = tactics(level, countries=countries, operator_utc_offset=operator_utc_offset)
    if capabilities is not None:
        parts["prompting"] = parts["prompting"].model_copy(update={"capabilities": capabilities})
    return CampaignConfig(
        campaign_id=campaign_id, accounts=max(1, accounts), exchanges=max(1, exchanges), start=start, end=end, **parts
    )


PRESETS: tuple[str, ...] = ("demo", "reported-campaign", "earlier-campaigns")


def _scaled(n: float, scale: float, floor: int = 1) -> int:
    return max(floor, round(n * scale))


def preset(name: str, *, scale: float = 1.0, seed: int = 0, evasion: Evasion = "none") -> SimulationConfig:
    """Build a named preset.  ``scale`` multiplies accounts and exchanges together.

    Trap groups keep a floor so they stay recognisable at small scales (a
    "university" of five accounts would test nothing).
    """
    if scale <= 0:
        raise ValueError(f"--scale must be positive, got {scale}")
    if name == "demo":
        start, end = date(2026, 5, 4), date(2026, 5, 17)
        camps = [
            campaign("C-demo-1", _scaled(120, scale), _scaled(24_000, scale), date(2026, 5, 6), end, evasion,
                     countries=["US", "DE"], operator_utc_offset=8),
            campaign("C-demo-2", _scaled(60, scale), _scaled(12_000, scale), date(2026, 5, 9), date(2026, 5, 16), evasion,
                     countries=["SG", "JP"], operator_utc_offset=3,
                     capabilities={"math": 0.4, "analysis": 0.2, "coding": 0.2, "long_horizon": 0.2}),
        ]
        benign = BenignConfig(
            accounts=_scaled(2600, scale, 50), exchanges=_scaled(70_000, scale, 2000),
            university_accounts=_scaled(150, scale, 40), coding_accounts=_scaled(10, scale, 5),
            batch_eval_accounts=2, batch_eval_prompts=_scaled(2000, scale, 300), reseller_accounts=_scaled(80, scale, 20),
        )
        models = [ModelRelease(name="atlas-4", released=_utc(date(2026, 5, 12), 17))]
        return SimulationConfig(preset=name, seed=seed, evasion=evasion, start=start, end=end, benign=benign,
                                campaigns=camps, models=models, rows_per_group=100_000)
    if name == "reported-campaign":
        start, end = date(2026, 4, 22), date(2026, 6, 5)
        camps = [
            campaign("C-2026-spring", _scaled(24_975, scale), _scaled(28_800_000, scale), start, end, evasion,
                     countries=["US", "GB", "DE", "JP", "SG"], operator_utc_offset=8),
        ]
        benign = BenignConfig(
            accounts=_scaled(300_000, scale, 500), exchanges=_scaled(61_000_000, scale, 20_000),
            universities=_scaled(4, scale), university_accounts=_scaled(600, scale, 100),
            coding_companies=_scaled(12, scale, 2), coding_accounts=_scaled(150, scale, 10),
            batch_eval_accounts=_scaled(20, scale, 2), batch_eval_prompts=_scaled(14_000, scale, 2000),
            resellers=_scaled(3, scale), reseller_accounts=_scaled(1500, scale, 40),
        )
        models = [ModelRelease(name="atlas-4", released=_utc(date(2026, 5, 19), 17))]
        return SimulationConfig(preset=name, seed=seed, evasion=evasion, start=start, end=end, benign=benign,
                                campaigns=camps, models=models)
    if name == "earlier-campaigns":
        start, end = date(2025, 10, 1), date(2026, 1, 28)
        camps = [
            campaign("C-2025-a", _scaled(240, scale), _scaled(150_000, scale), date(2025, 10, 6), date(2025, 11, 2),
                     evasion, countries=["US"], operator_utc_offset=8,
                     capabilities={"math": 0.35, "analysis": 0.25, "coding": 0.2, "chat": 0.2}),
            campaign("C-2025-b", _scaled(3_800, scale), _scaled(3_400_000, scale), date(2025, 10, 20), date(2025, 12, 18),
                     evasion, countries=["US", "DE", "NL"], operator_utc_offset=3,
                     capabilities={"coding": 0.4, "agentic": 0.3, "debugging": 0.2, "analysis": 0.1}),
            campaign("C-2025-c", _scaled(20_000, scale), _scaled(13_000_000, scale), date(2025, 11, 15), date(2026, 1, 25),
                     evasion, countries=["US", "JP", "KR", "SG"], operator_utc_offset=8,
                     capabilities={"agentic": 0.3, "long_horizon": 0.3, "coding": 0.25, "math": 0.15}),
        ]
        benign = BenignConfig(
            accounts=_scaled(200_000, scale, 500), exchanges=_scaled(40_000_000, scale, 20_000),
            universities=_scaled(3, scale), university_accounts=_scaled(500, scale, 100),
            coding_companies=_scaled(10, scale, 2), coding_accounts=_scaled(120, scale, 10),
            batch_eval_accounts=_scaled(15, scale, 2), batch_eval_prompts=_scaled(10_000, scale, 2000),
            resellers=_scaled(2, scale), reseller_accounts=_scaled(1200, scale, 40),
        )
        models = [ModelRelease(name="atlas-4", released=_utc(date(2025, 12, 2), 17))]
        return SimulationConfig(preset=name, seed=seed, evasion=evasion, start=start, end=end, benign=benign,
                                campaigns=camps, models=models)
    raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")


def window_start(cfg: SimulationConfig) -> datetime:
    return _utc(cfg.start)


def day_start(cfg: SimulationConfig, day: int) -> datetime:
    return _utc(cfg.start) + timedelta(days=day)


class ConfigError(ValueError):
    """A simulation config file that cannot be used; the message names the file and the field."""


def dump_config(cfg: SimulationConfig) -> str:
    """The config as YAML: a starting point for a custom run (``simulate --print-config``)."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)


def load_config(path: Path) -> SimulationConfig:
    """Read a YAML (or JSON) simulation config, naming the file and field of any error."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read a YAML config: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config fields at the top level")
    try:
        return SimulationConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"field {'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()[:10]
        )
        raise ConfigError(f"{path}: {problems}") from exc
