"""Evaluation metrics against labels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import roc_auc_score

from distillwatch.evaluate import EvaluationError, auroc, evaluate, write_metrics


def _write(tmp_path: Path) -> tuple[Path, Path]:
    res = tmp_path / "res"
    res.mkdir()
    pq.write_table(pa.table({
        "account_id": ["a1", "a2", "a3", "b1", "b2", "b3", "b4"],
        "score": [0.9, 0.8, 0.3, 0.7, 0.1, 0.2, 0.05],
        "verdict": ["attack", "attack", "suspect", "attack", "benign", "benign", "benign"],
        "campaign_id": ["C001", "C001", None, "C001", None, None, None],
        "reasons": ["x"] * 7,
    }), res / "accounts.parquet")
    labels = tmp_path / "labels.parquet"
    pq.write_table(pa.table({
        "account_id": ["a1", "a2", "a3", "b1", "b2", "b3", "b4"],
        "is_attack": [True, True, True, False, False, False, False],
        "campaign_id": ["X", "X", "X", None, None, None, None],
        "group": ["campaign"] * 3 + ["university", "university", "ordinary", "ordinary"],
    }), labels)
    return res, labels


def test_metrics(tmp_path: Path) -> None:
    res, labels = _write(tmp_path)
    m = evaluate(res, labels)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["fpr"] == pytest.approx(1 / 4)
    assert m["with_suspect"]["recall"] == 1.0
    assert m["per_campaign"]["X"]["recall"] == pytest.approx(2 / 3)
    assert m["campaign_purity"]["C001"]["purity"] == pytest.approx(2 / 3)
    assert m["per_group"]["university"]["attack"] == 1
    assert m["per_group"]["ordinary"]["attack"] == 0
    path = write_metrics(res, m)
    assert set(json.loads(path.read_text())) >= {"precision", "recall", "fpr", "auroc", "per_campaign", "per_group"}


def test_auroc_matches_sklearn_with_ties() -> None:
    rng = np.random.default_rng(1)
    score = rng.integers(0, 5, 200).astype(float)
    truth = rng.random(200) < 0.3
    assert auroc(score, truth) == pytest.approx(roc_auc_score(truth, score))
    assert auroc(score, np.zeros(200, dtype=bool)) is None


def test_clear_errors(tmp_path: Path) -> None:
    res, labels = _write(tmp_path)
    with pytest.raises(EvaluationError, match="accounts.parquet: not found"):
        evaluate(tmp_path / "nowhere", labels)
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"account_id": ["a1"]}), bad)
    with pytest.raises(EvaluationError, match="field is_attack is missing"):
        evaluate(res, bad)
    pq.write_table(pa.table({"account_id": ["a1", "a2"], "is_attack": [True, None]}), bad)
    with pytest.raises(EvaluationError, match="row 2, field is_attack"):
        evaluate(res, bad)
