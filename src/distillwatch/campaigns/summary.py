"""A basic report.md written by the scan when the report stage is not installed."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

from distillwatch.campaigns.build import bounded_text
from distillwatch.campaigns.model import read_campaigns


def _md(text: str) -> str:
    """Attacker-controlled text in Markdown: bounded, control characters removed, markup escaped."""
    out = bounded_text(text, 200)
    for ch in "\\`*_[]<>|#":
        out = out.replace(ch, "\\" + ch)
    return out


def write_basic_report(results_dir: str | Path) -> Path:
    out = Path(results_dir)
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    campaigns = read_campaigns(out / "campaigns.json")
    accounts = pq.read_table(out / "accounts.parquet", columns=["verdict"])
    counts = run.get("counts", {})
    lines = [
        "# distillwatch scan",
        "",
        f"Run `{run['run_id']}`. Rows read: {counts.get('rows_read')}; scored: {counts.get('rows_accepted')}; "
        f"quarantined: {counts.get('rows_quarantined')} (read = scored + quarantined).",
        "",
        f"Accounts: {accounts.num_rows}; attack: {pc.sum(pc.equal(accounts['verdict'], 'attack')).as_py() or 0}; "
        f"suspect: {pc.sum(pc.equal(accounts['verdict'], 'suspect')).as_py() or 0}. "
        f"Thresholds calibrated to a target false-positive rate of {run['thresholds']['target_fpr']}.",
        "",
        "| campaign | accounts | exchanges | first seen | last seen | days | per account | confidence |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for c in campaigns:
        lines.append(
            f"| {_md(c.campaign_id)} | {c.accounts} | {c.exchanges} | {c.first_seen:%Y-%m-%d} | {c.last_seen:%Y-%m-%d} "
            f"| {c.days} | {c.exchanges_per_account:.0f} | {c.confidence:.2f} |"
        )
    for c in campaigns:
        lines += ["", f"## {_md(c.campaign_id)}", ""]
        lines += [f"- {_md(e)}" for e in c.evidence]
        top = sorted(c.capabilities.items(), key=lambda kv: -kv[1])[:3]
        lines.append("- capabilities: " + ", ".join(f"{k.replace('_', ' ')} {v:.0%}" for k, v in top))
        lines.append(f"- chain-of-thought elicitation: {c.cot_share:.0%} of sampled exchanges")
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
