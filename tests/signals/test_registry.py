"""The signal contract: metadata, configuration, values in 0..1 with reasons."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from distillwatch.signals import (
    FAMILIES,
    AccountSignals,
    PairSignal,
    Signal,
    SignalContext,
    compute_account_signals,
    load_signals,
)
from distillwatch.signals.base import join_present, ramp, threshold
from distillwatch.signals.config import ConfigError, load_config


def test_every_signal_describes_itself() -> None:
    signals = load_signals()
    assert len(signals) >= 20
    for sid, sig in signals.items():
        m = sig.meta
        assert m.id == sid
        assert m.family in FAMILIES
        assert len(m.description) > 40 and m.inputs and m.tags
        assert isinstance(sig, PairSignal) == (m.kind == "pair")
        assert isinstance(sig, (Signal, PairSignal))


def test_default_config_loads_and_errors_name_file_and_field(tmp_path: Path) -> None:
    cfg = load_config()
    assert cfg.score.target_fpr == 0.001
    bad = tmp_path / "bad.yaml"
    bad.write_text("signals:\n  no_such_signal: {enabled: false}\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: field signals.no_such_signal"):
        load_config(bad)
    bad.write_text("signals:\n  flat_24h: {params: {nope: 1}}\n")
    with pytest.raises(ConfigError, match=r"signals.flat_24h.params.nope"):
        load_config(bad)
    bad.write_text("link:\n  min_accounts: one\n")
    with pytest.raises(ConfigError, match=r"field link.min_accounts"):
        load_config(bad)
    bad.write_text("signals: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_disable_and_reweight(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("signals:\n  flat_24h: {enabled: false}\n  datacenter_egress: {weight: 2.5}\n")
    cfg = load_config(p)
    ctx = _ctx()
    out = compute_account_signals(ctx, cfg)
    assert "flat_24h" not in out.ids
    assert out.weights[out.ids.index("datacenter_egress")] == 2.5


def _ctx() -> SignalContext:
    n = 4
    cols = {
        "account_id": pa.array([f"a{i}" for i in range(n)]),
        "exchanges": pa.array([500.0, 500.0, 3.0, 50.0]),
        "quiet_share": pa.array([0.33, 0.0, 0.33, 0.01]),
        "datacenter_share": pa.array([1.0, 0.0, 1.0, 0.0]),
        "sample_n": pa.array([64.0, 64.0, 3.0, 40.0]),
        "cot_share": pa.array([0.9, 0.0, 1.0, 0.0]),
    }
    return SignalContext(features=pa.table(cols), hours=np.zeros((n, 24)), population={"cot_share": 0.02})


def test_values_bounded_reasons_in_words() -> None:
    out = compute_account_signals(_ctx(), load_config())
    assert out.values.shape == (4, len(out.ids))
    assert np.all((out.values >= 0) & (out.values <= 1))
    i = out.ids.index("flat_24h")
    assert out.values[0, i] == 1.0 and out.values[1, i] == 0.0
    assert out.values[2, i] < 0.1  # three exchanges are no evidence of a rhythm
    assert "33%" in out.reasons[i][0].as_py()
    assert out.reasons[i][1].as_py() is None
    cot = out.ids.index("cot_elicitation")
    assert "90%" in out.reasons[cot][0].as_py()


def test_family_scores_noisy_or_caps_weight() -> None:
    s = AccountSignals(ids=["x", "y"], families=["content", "content"], weights=np.array([1.0, 0.5]),
                       values=np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]), raw=np.zeros((3, 2)), reasons=[])
    fam = s.family_scores()["content"]
    assert fam[0] == pytest.approx(1.0)
    assert fam[1] == pytest.approx(0.5)  # a weight-0.5 signal contributes at most one half
    assert fam[2] == pytest.approx(1 - 0.5 * 0.75)


def test_harvest_scores_leave_out_what_an_account_shares() -> None:
    s = AccountSignals(ids=["cot", "shared"], families=["content", "content"], weights=np.ones(2),
                       values=np.array([[0.2, 1.0], [0.9, 0.0]]), raw=np.zeros((2, 2)), reasons=[],
                       harvest=[True, False])
    assert s.family_scores()["content"] == pytest.approx([1.0, 0.9])
    assert s.harvest_scores()["content"] == pytest.approx([0.2, 0.9])
    # Which registered signals say so: only the one that measures sharing with other accounts.
    from distillwatch.signals import load_signals

    assert [sid for sid, sig in load_signals().items() if not sig.meta.harvest] == ["shared_templates"]


def test_helpers() -> None:
    assert list(ramp(np.array([0.0, 0.5, 1.0, np.nan]), 0.0, 1.0)) == [0.0, 0.5, 1.0, 0.0]
    assert list(ramp(np.array([2.0, 1.0]), 2.0, 1.0)) == [0.0, 1.0]  # reversed ramp
    assert threshold(np.arange(101.0), "p90") == pytest.approx(90.0)
    with pytest.raises(ValueError):
        threshold(np.arange(3.0), "ninety")
    joined = join_present([pa.array(["a", None, None]), pa.array([None, None, "c"]), pa.array(["b", None, ""])])
    assert joined.to_pylist() == ["a; b", "", "c"]


def test_member_fit_measures_signals_then_profile_features() -> None:
    from distillwatch.signals import PROFILE_FEATURES

    out = compute_account_signals(_ctx(), load_config())
    assert out.profile_extra is not None and out.profile_extra.shape == (4, len(PROFILE_FEATURES))
    assert np.isnan(out.profile_extra).all()  # the test features carry no capability mix or pivot: not measured
    both = out.profile_measurements()
    assert both.shape == (4, len(out.ids) + len(PROFILE_FEATURES))
    assert np.array_equal(both[:, : len(out.ids)], out.raw, equal_nan=True)
