"""The detection configuration: which signals run, their weights and parameters, and the
linking and scoring settings.  YAML, validated with pydantic; ``default.yaml`` ships with
the package and documents every knob.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class SignalSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    weight: float | None = Field(None, ge=0.0, description="None = the signal's own default")
    params: dict[str, Any] = {}


class LinkSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seed: int = 0
    resolution: float = Field(1.0, gt=0.0, description="Leiden modularity resolution: higher = smaller communities")
    min_edge_weight: float = Field(0.05, ge=0.0, description="combined pair weight below which an edge is dropped")
    merge_ratio: float = Field(
        0.5, gt=0.0, description="merge communities whose mutual edge density reaches this share of their inner density"
    )
    extend_attachment: float = Field(
        0.1,
        ge=0.0,
        description="an outside account that fits a campaign's profile joins it when tied to it this firmly (x a median member)",
    )
    min_accounts: int = Field(3, ge=2, description="smallest community that can be a campaign")
    family_coverage: float = Field(
        0.5, gt=0.0, le=1.0, description="evidence (0..1) a family needs to count towards a campaign"
    )
    link_share: float = Field(
        0.4, ge=0.0, le=1.0, description="part of a family's evidence that comes from links (the rest: members' signals)"
    )
    org_discount: float = Field(
        1.0, ge=0.0, le=1.0, description="discount for members declared under one customer organisation"
    )
    min_families: int = Field(2, ge=1, description="independent families of evidence a campaign needs")
    harvest_level: float = Field(
        0.3, ge=0.0, le=1.0, description="mean content or behaviour signal of the members a campaign needs"
    )
    max_edges_written: int = Field(200_000, ge=0, description="edges.parquet holds at most this many campaign edges")


class ScoreSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target_fpr: float = Field(0.001, gt=0.0, lt=0.5, description="benign accounts flagged `attack`, at most")
    suspect_fpr_factor: float = Field(10.0, ge=1.0, description="the suspect threshold targets target_fpr x this")
    own_evidence_cap: float = Field(
        0.6, gt=0.0, le=1.0, description="most an account's own evidence can contribute without a campaign"
    )
    permutations: int = Field(60, ge=5, description="shuffles of the population per campaign size (null distribution)")
    seed: int = 0
    profile_bins: int = Field(8, ge=2, le=100, description="population-quantile bins per signal in the member-fit profile")
    profile_iterations: int = Field(
        3, ge=1, le=20, description="rounds re-weighting members by their fit when learning a campaign's profile"
    )
    profile_decorrelation: float = Field(
        4.0, ge=0.0, le=64.0,
        description="member fit: a measurement's term is divided by the sum of max(0, r)^this over the others (0: off)",
    )
    profile_refits: int = Field(
        1, ge=0, le=5, description="rounds learning each campaign's profile again from the accounts that fit it"
    )
    merge_overlap: float = Field(
        0.5, gt=0.0, le=1.0, description="campaigns sharing this share of the smaller one's fitting accounts are merged"
    )


class DetectionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    signals: dict[str, SignalSettings] = {}
    link: LinkSettings = LinkSettings()
    score: ScoreSettings = ScoreSettings()
    sample_per_account: int = Field(64, ge=1, le=10_000, description="prompts per account given per-text enrichment")


class ConfigError(ValueError):
    """The configuration file cannot be used (the message names the file and the field)."""


DEFAULT_CONFIG = Path(__file__).with_name("default.yaml")


def load_config(path: str | Path | None = None) -> DetectionConfig:
    """Reads ``path`` (or the shipped default) and checks it, including that every signal id exists."""
    from distillwatch.signals import load_signals

    source = Path(path) if path is not None else DEFAULT_CONFIG
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read ({exc.strerror or exc})") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    try:
        config = DetectionConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{source}: field {where}: {first['msg']}") from exc
    known = load_signals()
    unknown = sorted(set(config.signals) - set(known))
    if unknown:
        raise ConfigError(f"{source}: field signals.{unknown[0]}: no such signal (see `distillwatch signals`)")
    for sid, settings in config.signals.items():
        extra = sorted(set(settings.params) - set(known[sid].meta.params))
        if extra:
            raise ConfigError(f"{source}: field signals.{sid}.params.{extra[0]}: not a parameter of this signal")
    return config


def effective(config: DetectionConfig, signal) -> tuple[bool, float, dict[str, Any]]:
    """(enabled, weight, params) of a signal under ``config`` (defaults filled in)."""
    s = config.signals.get(signal.meta.id, SignalSettings())
    return s.enabled, signal.meta.weight if s.weight is None else s.weight, {**signal.meta.params, **s.params}
