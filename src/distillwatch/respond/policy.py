"""The response policy: which verdicts, scores and account attributes lead to which action.

A policy is a YAML file validated by the pydantic models below (``examples/policy.yaml``
documents every field; ``respond/default_policy.yaml`` is used when none is given).

How a decision is reached, for one account (applied to all accounts at once, vectorised,
by ``respond.engine``):

1. Every rule whose ``when`` conditions all hold *matches*; all conditions of a rule are
   ANDed, an absent condition always holds, and a condition on an attribute the account
   lacks (no tier, no registration time) does not hold.
2. The most severe matching action wins (``ACTIONS`` is ordered from mild to severe); its
   rule supplies the parameters (rate, degradation, TTL).  Every matching rule adds its
   reason code, so an analyst sees all the reasons, not only the winning one.
3. Exemptions cap the action (a customer on the enterprise tier may be flagged for review
   but never blocked automatically); the allowlist caps it at ``allow``.

Registrations (``signup-risk``) use the ``signup`` section: the same "most severe match
wins" rule over allow / verify / deny.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from distillwatch.contract import VERDICTS

# Ordered mild -> severe; the index is the severity.
ACTIONS: tuple[str, ...] = ("allow", "flag", "throttle", "degrade", "verify", "block")
SEVERITY: dict[str, int] = {a: i for i, a in enumerate(ACTIONS)}
Action = Literal["allow", "flag", "throttle", "degrade", "verify", "block"]

SIGNUP_ACTIONS: tuple[str, ...] = ("allow", "verify", "deny")
SignupAction = Literal["allow", "verify", "deny"]

NETWORK_KINDS = ("datacenter", "vpn", "tor")

_CODE_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"


class _Strict(BaseModel):
    # A misspelt key in a policy must be an error, not a silently ignored rule.
    model_config = ConfigDict(extra="forbid")


class Throttle(_Strict):
    requests_per_minute: float = Field(gt=0, description="sustained rate the gateway allows")
    burst: int = Field(10, ge=1, description="requests allowed at once above the rate")


class Degrade(_Strict):
    withhold_reasoning: bool = Field(True, description="strip reasoning traces / thinking from answers")
    max_output_tokens: int | None = Field(1024, ge=1, description="cap on output length; None = no cap")


class When(_Strict):
    """Conditions of a rule; all that are given must hold."""

    verdict: list[str] | None = Field(None, description="any of attack, suspect, benign")
    min_score: float | None = Field(None, ge=0, le=1)
    max_score: float | None = Field(None, ge=0, le=1)
    in_campaign: bool | None = Field(None, description="true: the account belongs to a campaign")
    min_campaign_confidence: float | None = Field(None, ge=0, le=1)
    tier: list[str] | None = Field(None, description="the account's tier is one of these")
    not_tier: list[str] | None = None
    org: list[str] | None = Field(None, description="the account's org_id is one of these")
    min_account_age_days: float | None = Field(None, ge=0)
    max_account_age_days: float | None = Field(None, ge=0)

    @field_validator("verdict")
    @classmethod
    def _known_verdicts(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            unknown = sorted(set(v) - set(VERDICTS))
            if unknown:
                raise ValueError(f"unknown verdict(s) {unknown}; expected any of {list(VERDICTS)}")
        return v


class Rule(_Strict):
    name: str = Field(min_length=1, max_length=80)
    when: When = When()
    action: Action
    reason_code: str = Field(pattern=_CODE_PATTERN)
    ttl_seconds: int | None = Field(
        None, ge=1, description="how long a gateway may cache it; default: policy's"
    )
    throttle: Throttle | None = None
    degrade: Degrade | None = None

    @model_validator(mode="after")
    def _parameters_fit_action(self) -> Rule:
        if self.action == "throttle" and self.throttle is None:
            raise ValueError(
                f"rule {self.name!r}: action throttle needs `throttle: {{requests_per_minute: N}}`"
            )
        if self.action == "degrade" and self.degrade is None:
            self.degrade = Degrade()
        return self


class Exemption(_Strict):
    """Caps the action for accounts that match; e.g. enterprise customers are never auto-blocked."""

    name: str = Field(min_length=1, max_length=80)
    when: When
    max_action: Action
    reason_code: str = Field(pattern=_CODE_PATTERN)


class Allowlist(_Strict):
    accounts: list[str] = []
    orgs: list[str] = []
    reason_code: str = Field("ALLOWLISTED", pattern=_CODE_PATTERN)


class SignupWhen(_Strict):
    """Conditions on a registration (see ``respond.signup`` for how each is computed)."""

    disposable_email: bool | None = Field(None, description="e-mail domain on a disposable list")
    min_local_part_burst: int | None = Field(
        None, ge=1, description="recent sign-ups on the same domain with the same local-part shape"
    )
    network: list[Literal["datacenter", "vpn", "tor"]] | None = Field(
        None, description="sign-up address is any of these kinds"
    )
    min_shared_address: int | None = Field(
        None, ge=1, description="other recent sign-ups from the same address"
    )
    min_shared_prefix: int | None = Field(
        None, ge=1, description="other recent sign-ups from the same /24 or /48"
    )
    payment_shared_with_flagged: bool | None = Field(
        None, description="payment fingerprint also used by an account under action"
    )
    min_burst: int | None = Field(
        None, ge=1, description="sign-ups from the same prefix within the burst window, this one included"
    )
    min_shared_payment: int | None = Field(
        None, ge=1, description="other recent sign-ups with the same payment fingerprint"
    )
    campaign_indicator: bool | None = Field(
        None, description="address prefix or e-mail domain is an indicator of a known campaign"
    )


class SignupRule(_Strict):
    name: str = Field(min_length=1, max_length=80)
    when: SignupWhen
    action: SignupAction
    reason_code: str = Field(pattern=_CODE_PATTERN)


class SignupPolicy(_Strict):
    window_hours: float = Field(24.0, gt=0, description="how far back 'recent sign-ups' reach")
    burst_window_minutes: float = Field(60.0, gt=0)
    rules: list[SignupRule] = []


class ServiceSettings(_Strict):
    allow_ttl_seconds: int = Field(300, ge=1, description="how long a gateway may cache an allow")
    unknown_account_action: Action = Field("allow", description="action for an account with no decision")
    campaign_prefix_action: Action | None = Field(
        "flag",
        description="action for an account with no decision calling from a known campaign's network prefix",
    )
    campaign_prefix_min_confidence: float = Field(
        0.8, ge=0, le=1, description="only prefixes of campaigns this sure"
    )


class Policy(_Strict):
    version: Literal[1] = 1
    name: str = Field("default", max_length=80)
    dry_run: bool = Field(False, description="decide and record, but the service does not enforce")
    default_ttl_seconds: int = Field(3600, ge=1)
    default_throttle: Throttle = Field(
        Throttle(requests_per_minute=30),
        description="rate used when an exemption lowers an action to throttle",
    )
    default_degrade: Degrade = Degrade()
    score_bands: list[float] = Field(
        [0.5, 0.7, 0.9], description="edges of the score bands used in evidence fingerprints (clearing)"
    )
    allowlist: Allowlist = Allowlist()
    exemptions: list[Exemption] = []
    rules: list[Rule] = []
    signup: SignupPolicy = SignupPolicy()
    service: ServiceSettings = ServiceSettings()

    @field_validator("score_bands")
    @classmethod
    def _sorted_bands(cls, v: list[float]) -> list[float]:
        if any(not 0 < b < 1 for b in v) or v != sorted(set(v)):
            raise ValueError("score_bands must be strictly increasing values between 0 and 1")
        return v

    @model_validator(mode="after")
    def _unique_names(self) -> Policy:
        names = [r.name for r in self.rules]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"rule names must be unique; repeated: {dupes}")
        return self

    def digest(self) -> str:
        """A short hash of the policy's content, recorded with every decision run."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:16]


class PolicyError(ValueError):
    """The policy file cannot be read or is invalid; the message names the file and field."""


DEFAULT_POLICY_FILE = Path(__file__).with_name("default_policy.yaml")


def load_policy(path: str | Path | None = None) -> Policy:
    """Read and validate a policy file (the shipped default when ``path`` is None)."""
    source = Path(path) if path is not None else DEFAULT_POLICY_FILE
    try:
        raw = yaml.safe_load(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyError(f"{source}: cannot read policy: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise PolicyError(f"{source}: not valid YAML: {exc}") from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise PolicyError(
            f"{source}: a policy is a mapping of keys (version, rules, ...), got {type(raw).__name__}"
        )
    try:
        return Policy.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}" for err in exc.errors()
        )
        raise PolicyError(f"{source}: invalid policy: {problems}") from exc
