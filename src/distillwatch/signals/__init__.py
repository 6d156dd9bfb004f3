"""Signals: self-describing detectors (see ``base.py`` for the contract).

``load_signals()`` imports every module of this package, so a new signal is
one new file.  ``compute_account_signals`` runs the enabled account signals;
``pair_keys`` collects the shared keys of the enabled pair signals.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from distillwatch.features.content import CAPABILITIES
from distillwatch.signals.base import (
    FAMILIES,
    REGISTRY,
    PairSignal,
    Signal,
    SignalContext,
    SignalMeta,
    SignalResult,
    register,
)
from distillwatch.signals.config import DetectionConfig, effective, load_config

_SKIP = {"base", "config"}

# Feature columns the member fit (score/profile.py) measures besides every signal's raw measurement: what a
# campaign's accounts ask for (the capability mix its operator harvests; signals only keep how far it departs
# from the population's) and how many hours after a model's release the account first used it (the pivot
# signal keeps the share of traffic moved).
PROFILE_FEATURES = (*(f"cap_{c}" for c in CAPABILITIES), "pivot_lag_hours")


def load_signals() -> dict[str, Signal | PairSignal]:
    """Every registered signal, by id (imports all modules of this package once)."""
    for info in pkgutil.iter_modules(__path__):
        if info.name not in _SKIP:
            importlib.import_module(f"{__name__}.{info.name}")
    return dict(sorted(REGISTRY.items()))


@dataclass
class AccountSignals:
    """Values (accounts x signals), weights, families and reasons of the enabled account signals."""

    ids: list[str]
    families: list[str]
    weights: np.ndarray
    values: np.ndarray  # (accounts, signals), 0..1
    raw: np.ndarray  # (accounts, signals), the measured quantities
    reasons: list[pa.Array]  # one string array per signal, null where it did not fire
    # (accounts, PROFILE_FEATURES): descriptive measurements for the member fit only (NaN = not measured)
    profile_extra: np.ndarray | None = None
    # Per signal, whether it says on its own that the account harvests (``SignalMeta.harvest``); None: all do.
    harvest: list[bool] | None = None

    def profile_measurements(self) -> np.ndarray:
        """What the member fit compares: every signal's raw measurement, then the PROFILE_FEATURES columns."""
        if self.profile_extra is None or self.profile_extra.shape[1] == 0:
            return self.raw
        return np.hstack([self.raw, self.profile_extra])

    def family_scores(self) -> dict[str, np.ndarray]:
        """Per family, a weighted noisy-OR of its signals for each account (0..1).

        1 - prod(1 - min(w_i, 1) x v_i): a strong, fully weighted signal makes
        its family strong, a signal with nothing to say (0) does not dilute the
        others, and a signal of weight 0.5 contributes at most one half.
        """
        return self._noisy_or_by_family(range(len(self.ids)))

    def harvest_scores(self) -> dict[str, np.ndarray]:
        """``family_scores`` of the signals that say on their own that an account harvests (``SignalMeta.harvest``).

        What a campaign's harvest test reads: a signal of what an account shares with others
        (``shared_templates``) rises with the population, not with harvesting; its evidence is counted by the
        links and their coverage instead.  (The link stage still picks its harvesting accounts by
        ``family_scores``: picking them by these was measured and lowered recall, docs/detection.md.)
        """
        keep = range(len(self.ids)) if self.harvest is None else [i for i, h in enumerate(self.harvest) if h]
        return self._noisy_or_by_family(keep)

    def _noisy_or_by_family(self, signals: Iterable[int]) -> dict[str, np.ndarray]:
        chosen = set(signals)
        out: dict[str, np.ndarray] = {}
        for fam in FAMILIES:
            cols = [i for i, f in enumerate(self.families) if f == fam and i in chosen]
            if not cols:
                continue
            c = np.clip(self.values[:, cols] * np.minimum(self.weights[cols], 1.0), 0.0, 1.0)
            out[fam] = 1.0 - np.prod(1.0 - c, axis=1)
        return out

    def table(self, account_ids: pa.Array) -> pa.Table:
        """signals.parquet: one row per account, one column per signal value."""
        cols = {"account_id": account_ids}
        for i, sid in enumerate(self.ids):
            cols[sid] = pa.array(self.values[:, i])
        return pa.table(cols)


def compute_account_signals(ctx: SignalContext, config: DetectionConfig) -> AccountSignals:
    ids, fams, weights, values, raws, reasons, harvest = [], [], [], [], [], [], []
    for sid, sig in load_signals().items():
        if not isinstance(sig, Signal):
            continue
        enabled, weight, params = effective(config, sig)
        if not enabled or weight == 0:
            continue
        res = sig.compute(ctx, params)
        value = np.clip(np.nan_to_num(np.asarray(res.value, dtype=np.float64), nan=0.0), 0.0, 1.0)
        if value.shape != (ctx.n,):
            raise ValueError(f"signal {sid} returned {value.shape} values for {ctx.n} accounts")
        ids.append(sid)
        fams.append(sig.meta.family)
        harvest.append(sig.meta.harvest)
        weights.append(weight)
        values.append(value)
        raws.append(np.asarray(res.raw, dtype=np.float64))
        reasons.append(res.reason)
    n = ctx.n
    return AccountSignals(
        ids=ids,
        families=fams,
        weights=np.asarray(weights, dtype=np.float64),
        values=np.column_stack(values) if values else np.zeros((n, 0)),
        raw=np.column_stack(raws) if raws else np.zeros((n, 0)),
        reasons=reasons,
        profile_extra=np.column_stack([ctx.col(c) for c in PROFILE_FEATURES]),
        harvest=harvest,
    )


def pair_keys(ctx: SignalContext, config: DetectionConfig) -> list[tuple[PairSignal, float, dict]]:
    """Enabled pair signals with their weight and parameters."""
    out = []
    for _sid, sig in load_signals().items():
        if not isinstance(sig, PairSignal):
            continue
        enabled, weight, params = effective(config, sig)
        if enabled and weight > 0:
            out.append((sig, weight, params))
    return out


__all__ = [
    "FAMILIES",
    "PROFILE_FEATURES",
    "AccountSignals",
    "DetectionConfig",
    "PairSignal",
    "Signal",
    "SignalContext",
    "SignalMeta",
    "SignalResult",
    "compute_account_signals",
    "load_config",
    "load_signals",
    "pair_keys",
    "register",
]
