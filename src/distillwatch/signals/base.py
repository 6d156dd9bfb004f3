"""The signal contract: a small, self-describing detector (Sigma-style metadata as data).

An *account signal* computes, for every account, a value in 0..1 (how strongly
this evidence points at a harvesting account) and a reason in words with the
numbers.  A *pair signal* emits shared keys (an address, a template hash, a
registration window...); accounts sharing a key are linked by a typed, weighted
edge in the account graph (``distillwatch.link``).

Adding a signal touches one file: write a module in ``distillwatch/signals/``
that defines a subclass and decorates it with ``@register``.  It is picked up by
``load_signals()``, listed by ``distillwatch signals``, configurable in YAML by
its ``id``.  Partner indicators (threat intelligence) plug in the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, Field

Family = Literal["behaviour", "content", "infrastructure", "registration", "coordination"]
FAMILIES: tuple[str, ...] = ("behaviour", "content", "infrastructure", "registration", "coordination")

# MITRE ATLAS: the technique distillation is (extract a model through its inference API),
# how it is reached and what it is for.
ATLAS_EXTRACT = "AML.T0024.002"
ATLAS_API_ACCESS = "AML.T0040"
ATLAS_PROXY_MODEL = "AML.T0005"
ATLAS_REFERENCE = "https://atlas.mitre.org/techniques/AML.T0024.002"


class SignalMeta(BaseModel):
    """What a signal is, for analysts (listed by ``distillwatch signals``) and for the report."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str
    description: str = Field(description="why it fires and how to tune it")
    family: Family
    kind: Literal["account", "pair"] = "account"
    inputs: list[str] = Field(description="contract fields (or enrichment facts) it reads")
    severity: Literal["informational", "low", "medium", "high"] = "medium"
    false_positives: list[str] = []
    tags: list[str] = [ATLAS_EXTRACT]
    references: list[str] = [ATLAS_REFERENCE]
    weight: float = Field(1.0, ge=0.0, description="default weight in the account score (or edge weight)")
    harvest: bool = Field(
        True,
        description=(
            "evidence on its own that the account harvests (content and behaviour families); False for a signal "
            "that measures what the account shares with other accounts, which grows with the population: among "
            "290,000 accounts most people's prompts follow some template another account also sends"
        ),
    )
    params: dict[str, Any] = Field({}, description="default tunable parameters (overridden in the config)")


@dataclass
class SignalContext:
    """What a signal may read.  ``features`` rows are the accounts, in ``account_ids`` order."""

    features: pa.Table
    hours: np.ndarray
    population: dict
    con: Any = None  # the Ibis backend
    ex: ir.Table | None = None  # exchanges with per-address facts
    facts: ir.Table | None = None  # sampled exchanges with per-text facts
    prompt_bands: ir.Table | None = None  # (account_id, band) near-duplicate keys
    account_records: ir.Table | None = None  # accounts with e-mail / payment facts
    store: Any = None  # the DuckDB store connection, when the scan has one
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return self.features.num_rows

    def col(self, name: str, fill: float = np.nan) -> np.ndarray:
        """A feature column as float64 numpy (nulls -> ``fill``)."""
        if name not in self.features.column_names:
            return np.full(self.n, fill)
        arr = pc.cast(self.features.column(name), pa.float64())
        return pc.fill_null(arr, fill).to_numpy(zero_copy_only=False).astype(np.float64)

    def text(self, name: str) -> pa.Array:
        if name not in self.features.column_names:
            return pa.nulls(self.n, pa.string())
        return self.features.column(name).combine_chunks().cast(pa.string())

    def quantile(self, name: str, q: float) -> float:
        values = self.col(name)
        values = values[~np.isnan(values)]
        return float(np.quantile(values, q)) if len(values) else math.nan


@dataclass
class SignalResult:
    """Per-account output: ``value`` in 0..1, the ``raw`` measurement, a ``reason`` (null = no reason)."""

    value: np.ndarray
    raw: np.ndarray
    reason: pa.Array


class Signal:
    """Base class of account signals: subclasses set ``meta`` and implement ``compute``."""

    meta: ClassVar[SignalMeta]

    def compute(self, ctx: SignalContext, params: dict[str, Any]) -> SignalResult:  # pragma: no cover
        raise NotImplementedError


class PairSignal:
    """Base class of pair signals: ``keys`` returns an engine table (account_id, key) of shared keys.

    Accounts with the same key are linked.  ``params["max_group"]`` caps the
    group size that becomes a clique: larger groups (a university NAT, a popular
    client library) are linked sparsely and weakly, as weak evidence.
    """

    meta: ClassVar[SignalMeta]

    def keys(self, ctx: SignalContext, params: dict[str, Any]) -> ir.Table | None:  # pragma: no cover
        raise NotImplementedError


REGISTRY: dict[str, Signal | PairSignal] = {}


def register(cls: type[Signal] | type[PairSignal]) -> type[Signal] | type[PairSignal]:
    """Class decorator: adds one instance of the signal to the registry under its id."""
    sid = cls.meta.id
    if sid in REGISTRY and type(REGISTRY[sid]) is not cls:
        raise ValueError(f"two signals share the id {sid!r}: {type(REGISTRY[sid]).__name__} and {cls.__name__}")
    REGISTRY[sid] = cls()
    return cls


# ---------------------------------------------------------------- helpers for signal authors


def ramp(raw: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """0 at or below ``lo``, 1 at or above ``hi``, linear between (reversed when lo > hi); NaN -> 0."""
    if hi == lo:
        out = (raw >= hi).astype(np.float64)
    else:
        out = np.clip((raw - lo) / (hi - lo), 0.0, 1.0)
    return np.nan_to_num(out, nan=0.0)


def support(n: np.ndarray, full: float) -> np.ndarray:
    """Confidence from sample size: n / full, capped at 1 (a signal on 3 exchanges counts little)."""
    return np.clip(np.nan_to_num(n, nan=0.0) / max(full, 1.0), 0.0, 1.0)


def pct(values: np.ndarray) -> pa.Array:
    """Shares as whole-percent strings ("96%")."""
    return pc.binary_join_element_wise(
        pc.cast(pa.array(np.round(np.nan_to_num(values) * 100).astype(np.int64)), pa.string()), pa.scalar("%"), ""
    )


def num(values: np.ndarray, digits: int = 0) -> pa.Array:
    """Numbers as strings with ``digits`` decimals."""
    v = np.round(np.nan_to_num(values), digits)
    if digits == 0:
        return pc.cast(pa.array(v.astype(np.int64)), pa.string())
    return pc.cast(pa.array(v), pa.string())


def words(*parts: str | pa.Array) -> pa.Array:
    """Element-wise concatenation of literal strings and string arrays (one reason per account)."""
    n = next((len(p) for p in parts if isinstance(p, pa.Array)), 0)
    arrays = [p if isinstance(p, pa.Array) else pa.array([p] * n, pa.string()) for p in parts]
    return pc.binary_join_element_wise(*arrays, "")


def only_where(reason: pa.Array, value: np.ndarray, floor: float = 0.5) -> pa.Array:
    """Keeps the reason only where the value is at least ``floor`` (null elsewhere)."""
    return pc.if_else(pa.array(value >= floor), reason, pa.scalar(None, pa.string()))


def threshold(values: np.ndarray, spec: float | str) -> float:
    """A threshold given as a number or as a population percentile of ``values`` (``"p95"``).

    Percentiles let a signal adapt to the traffic it runs on: "more than 95% of
    accounts" means something in every population, a fixed number does not.
    """
    if isinstance(spec, str):
        if not (spec.startswith("p") and spec[1:].replace(".", "", 1).isdigit()):
            raise ValueError(f"threshold {spec!r}: use a number or a percentile such as 'p95'")
        finite = values[~np.isnan(values)]
        return float(np.quantile(finite, float(spec[1:]) / 100.0)) if len(finite) else math.nan
    return float(spec)


def join_present(parts: list[pa.Array], sep: str = "; ") -> pa.Array:
    """Element-wise join of string arrays, skipping nulls and empty strings (never drops a row)."""
    if not parts:
        return pa.array([], pa.string())
    acc = pc.fill_null(parts[0], "")
    for part in parts[1:]:
        part = pc.fill_null(part, "")
        both = pc.and_(pc.not_equal(acc, ""), pc.not_equal(part, ""))
        joined = pc.binary_join_element_wise(acc, part, sep)
        acc = pc.if_else(both, joined, pc.if_else(pc.equal(acc, ""), part, acc))
    return acc
