"""Evaluation against labels: precision, recall, false-positive rate, per campaign, per benign group, AUROC.

``evaluate(results_dir, labels)`` reads ``DIR/accounts.parquet`` and a labels
table (contract LABELS_SCHEMA: account_id, is_attack, campaign_id, optional
group) and returns the metrics written to ``DIR/metrics.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq


class EvaluationError(ValueError):
    """Inputs cannot be evaluated (the message names the file and the field)."""


def _rates(flag: np.ndarray, truth: np.ndarray) -> dict[str, float | int | None]:
    tp = int(np.sum(flag & truth))
    fp = int(np.sum(flag & ~truth))
    fn = int(np.sum(~flag & truth))
    tn = int(np.sum(~flag & ~truth))
    return {
        "precision": tp / (tp + fp) if tp + fp else None,
        "recall": tp / (tp + fn) if tp + fn else None,
        "fpr": fp / (fp + tn) if fp + tn else None,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
    }


def auroc(score: np.ndarray, truth: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties)."""
    pos, neg = int(truth.sum()), int((~truth).sum())
    if pos == 0 or neg == 0:
        return None
    ranks = pd.Series(score).rank(method="average").to_numpy()
    return float((ranks[truth].sum() - pos * (pos + 1) / 2) / (pos * neg))


def _read_labels(path: Path) -> pd.DataFrame:
    try:
        labels = pq.read_table(path).to_pandas()
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same clear message
        raise EvaluationError(f"{path}: cannot read labels as Parquet ({exc})") from exc
    for col in ("account_id", "is_attack"):
        if col not in labels.columns:
            raise EvaluationError(f"{path}: field {col} is missing (labels need account_id, is_attack, campaign_id)")
    if labels["is_attack"].isna().any():
        row = int(np.flatnonzero(labels["is_attack"].isna().to_numpy())[0]) + 1
        raise EvaluationError(f"{path}: row {row}, field is_attack: null")
    if "campaign_id" not in labels.columns:
        labels["campaign_id"] = None
    if "group" not in labels.columns:
        labels["group"] = np.where(labels["is_attack"], "campaign", "benign")
    return labels


def evaluate(results_dir: str | Path, labels_path: str | Path) -> dict[str, Any]:
    results_dir, labels_path = Path(results_dir), Path(labels_path)
    acc_path = results_dir / "accounts.parquet"
    if not acc_path.exists():
        raise EvaluationError(f"{acc_path}: not found (run `distillwatch scan ... --out {results_dir}` first)")
    res = pq.read_table(acc_path, columns=["account_id", "score", "verdict", "campaign_id"]).to_pandas()
    labels = _read_labels(labels_path).rename(columns={"campaign_id": "true_campaign"})
    df = res.merge(labels[["account_id", "is_attack", "true_campaign", "group"]], on="account_id", how="left")
    unlabelled = int(df["is_attack"].isna().sum())
    df = df[df["is_attack"].notna()].copy()
    truth = df["is_attack"].astype(bool).to_numpy()
    attack = (df["verdict"] == "attack").to_numpy()
    flagged = df["verdict"].isin(["attack", "suspect"]).to_numpy()

    main = _rates(attack, truth)
    metrics: dict[str, Any] = {
        "accounts": int(len(df)),
        "attack_accounts": int(truth.sum()),
        "unlabelled_accounts": unlabelled,
        "precision": main["precision"],
        "recall": main["recall"],
        "fpr": main["fpr"],
        "counts": {k: main[k] for k in ("tp", "fp", "fn", "tn")},
        "with_suspect": _rates(flagged, truth),
        "auroc": auroc(df["score"].to_numpy(dtype=float), truth),
    }

    per_campaign = {}
    for cid, g in df[truth].groupby("true_campaign", dropna=False):
        found = g["campaign_id"].dropna()
        per_campaign[str(cid)] = {
            "accounts": int(len(g)),
            "recall": float((g["verdict"] == "attack").mean()),
            "recall_with_suspect": float(g["verdict"].isin(["attack", "suspect"]).mean()),
            "detected_as": {str(k): int(v) for k, v in found.value_counts().items()},
        }
    metrics["per_campaign"] = per_campaign

    purity = {}
    for cid, g in df[df["campaign_id"].notna()].groupby("campaign_id"):
        top = g["true_campaign"].fillna("(benign)").value_counts()
        purity[str(cid)] = {
            "accounts": int(len(g)),
            "purity": float(top.iloc[0] / len(g)),
            "dominant": str(top.index[0]),
            "benign_members": int((~g["is_attack"].astype(bool)).sum()),
        }
    metrics["campaign_purity"] = purity

    per_group = {}
    for grp, g in df[~truth].groupby("group", dropna=False):
        per_group[str(grp)] = {
            "accounts": int(len(g)),
            "attack": int((g["verdict"] == "attack").sum()),
            "suspect": int((g["verdict"] == "suspect").sum()),
            "fpr": float((g["verdict"] == "attack").mean()),
        }
    metrics["per_group"] = per_group
    return metrics


def write_metrics(results_dir: str | Path, metrics: dict[str, Any]) -> Path:
    path = Path(results_dir) / "metrics.json"
    path.write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    return path


__all__ = ["EvaluationError", "auroc", "evaluate", "write_metrics"]
