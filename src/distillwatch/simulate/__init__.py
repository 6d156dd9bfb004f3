"""distillwatch.simulate: simulated API traffic with distillation campaigns and ground truth.

    from distillwatch.simulate import preset, simulate
    summary = simulate(preset("reported-campaign", scale=0.01, evasion="strong", seed=7), "out/")

Writes ``exchanges.parquet``, ``accounts.parquet`` and ``labels.parquet`` in
the input contract (``distillwatch.contract``).  See ``docs/simulator.md``.
The detector never imports this package, and this package imports no
detection code.
"""

from distillwatch.simulate.config import (
    EVASION_LEVELS,
    PRESETS,
    BenignConfig,
    CampaignConfig,
    ModelRelease,
    SimulationConfig,
    campaign,
    preset,
    tactics,
)
from distillwatch.simulate.engine import Summary
from distillwatch.simulate.engine import run as simulate
from distillwatch.simulate.population import GROUPS

__all__ = [
    "EVASION_LEVELS",
    "GROUPS",
    "PRESETS",
    "BenignConfig",
    "CampaignConfig",
    "ModelRelease",
    "SimulationConfig",
    "Summary",
    "campaign",
    "preset",
    "simulate",
    "tactics",
]
