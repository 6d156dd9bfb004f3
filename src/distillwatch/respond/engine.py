"""Applying a policy to every account at once.

Each rule's conditions become one boolean mask over the accounts (pyarrow compute), the
masks form a matrix (accounts x rules), and the winning rule per account is an argmax
over severities: no Python loop over accounts, so a million accounts take about as long
as a handful of numpy passes.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distillwatch.respond.policy import ACTIONS, SEVERITY, Policy, When

# Columns the engine reads; missing attribute columns are treated as unknown (null).
SUBJECT_COLUMNS: dict[str, pa.DataType] = {
    "account_id": pa.string(),
    "score": pa.float64(),
    "verdict": pa.string(),
    "campaign_id": pa.string(),
    "campaign_confidence": pa.float64(),
    "tier": pa.string(),
    "org_id": pa.string(),
    "created_at": pa.timestamp("us", tz="UTC"),
}

ACTION_COLUMNS = pa.schema(
    [
        pa.field("account_id", pa.string(), nullable=False),
        pa.field("action", pa.string(), nullable=False),
        pa.field("policy_action", pa.string(), nullable=False),
        pa.field("reason_codes", pa.list_(pa.string()), nullable=False),
        pa.field("ttl_seconds", pa.int32()),
        pa.field("throttle_rpm", pa.float64()),
        pa.field("throttle_burst", pa.int32()),
        pa.field("withhold_reasoning", pa.bool_()),
        pa.field("max_output_tokens", pa.int32()),
    ]
)


def _np(mask: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(mask, False).to_numpy(zero_copy_only=False), dtype=bool)


def _isin(col: pa.ChunkedArray, values: list[str]) -> np.ndarray:
    return _np(pc.is_in(col, value_set=pa.array(values, pa.string())))


def condition_mask(when: When, t: pa.Table, now: datetime) -> np.ndarray:
    """True where every condition of ``when`` holds (unknown attributes never satisfy a condition)."""
    m = np.ones(t.num_rows, dtype=bool)
    if when.verdict is not None:
        m &= _isin(t["verdict"], when.verdict)
    if when.min_score is not None:
        m &= _np(pc.greater_equal(t["score"], when.min_score))
    if when.max_score is not None:
        m &= _np(pc.less_equal(t["score"], when.max_score))
    if when.in_campaign is not None:
        in_campaign = _np(pc.is_valid(t["campaign_id"]))
        m &= in_campaign if when.in_campaign else ~in_campaign
    if when.min_campaign_confidence is not None:
        m &= _np(pc.greater_equal(t["campaign_confidence"], when.min_campaign_confidence))
    if when.tier is not None:
        m &= _isin(t["tier"], when.tier)
    if when.not_tier is not None:
        # An account with no tier is "not enterprise": only a known listed tier excludes.
        m &= ~_isin(t["tier"], when.not_tier)
    if when.org is not None:
        m &= _isin(t["org_id"], when.org)
    if when.min_account_age_days is not None or when.max_account_age_days is not None:
        created = t["created_at"].to_numpy(zero_copy_only=False).astype("datetime64[us]")
        known = ~np.isnat(created)
        now64 = np.datetime64(_utc_naive(now), "us")
        age_days = np.where(known, (now64 - created) / np.timedelta64(1, "D"), np.nan)
        if when.min_account_age_days is not None:
            m &= known & (age_days >= when.min_account_age_days)
        if when.max_account_age_days is not None:
            m &= known & (age_days <= when.max_account_age_days)
    return m


def _utc_naive(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo is not None else ts


def lists_from_mask(matrix: np.ndarray, names: list[str]) -> pa.ListArray:
    """Row i's list holds names[j] for every True matrix[i, j], in column order."""
    rows, cols = np.nonzero(matrix)  # row-major: sorted by row, then column
    counts = np.bincount(rows, minlength=matrix.shape[0])
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    values = pa.array(np.asarray(names, dtype=object)[cols] if len(cols) else [], pa.string())
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values)


def normalise_subjects(t: pa.Table) -> pa.Table:
    """Select and type the engine's columns, adding absent attribute columns as nulls."""
    cols = {}
    for name, typ in SUBJECT_COLUMNS.items():
        cols[name] = pc.cast(t[name], typ) if name in t.column_names else pa.nulls(t.num_rows, typ)
    return pa.table(cols)


def apply_policy(policy: Policy, subjects: pa.Table, now: datetime) -> pa.Table:
    """The action for every account in ``subjects`` (columns: SUBJECT_COLUMNS), as ACTION_COLUMNS."""
    t = normalise_subjects(subjects)
    n = t.num_rows
    rules = policy.rules
    matrix = np.zeros((n, len(rules)), dtype=bool)
    for j, rule in enumerate(rules):
        matrix[:, j] = condition_mask(rule.when, t, now)
    sev = np.array([SEVERITY[r.action] for r in rules], dtype=np.int16)
    # Winning rule: highest severity; ties go to the rule listed first (argmax takes the first).
    scored = np.where(matrix, sev[None, :], -1) if rules else np.full((n, 0), -1)
    winner = scored.argmax(axis=1) if rules else np.zeros(n, dtype=np.int64)
    any_match = matrix.any(axis=1) if rules else np.zeros(n, dtype=bool)
    policy_sev = np.where(any_match, scored.max(axis=1) if rules else 0, 0).astype(np.int16)

    def per_rule(values: list) -> np.ndarray:
        arr = np.asarray(values + [None], dtype=object)  # last slot: "no rule matched"
        return arr[np.where(any_match, winner, len(values))]

    ttl = per_rule([r.ttl_seconds or policy.default_ttl_seconds for r in rules])
    rpm = per_rule([r.throttle.requests_per_minute if r.throttle else None for r in rules])
    burst = per_rule([r.throttle.burst if r.throttle else None for r in rules])
    withhold = per_rule([r.degrade.withhold_reasoning if r.degrade else None for r in rules])
    max_out = per_rule([r.degrade.max_output_tokens if r.degrade else None for r in rules])

    # Exemptions and the allowlist lower the action; their codes say so.
    cap = np.full(n, SEVERITY["block"], dtype=np.int16)
    cap_matrix = np.zeros((n, len(policy.exemptions) + 1), dtype=bool)
    cap_names = [e.reason_code for e in policy.exemptions] + [policy.allowlist.reason_code]
    for j, ex in enumerate(policy.exemptions):
        hit = condition_mask(ex.when, t, now)
        cap = np.where(hit, np.minimum(cap, SEVERITY[ex.max_action]), cap)
        cap_matrix[:, j] = hit & (policy_sev > SEVERITY[ex.max_action])
    allowed = np.zeros(n, dtype=bool)
    if policy.allowlist.accounts:
        allowed |= _isin(t["account_id"], policy.allowlist.accounts)
    if policy.allowlist.orgs:
        allowed |= _isin(t["org_id"], policy.allowlist.orgs)
    cap = np.where(allowed, 0, cap)
    cap_matrix[:, -1] = allowed & (policy_sev > 0)
    final_sev = np.minimum(policy_sev, cap)

    codes = lists_from_mask(
        np.concatenate([matrix, cap_matrix], axis=1), [r.reason_code for r in rules] + cap_names
    )
    actions = np.asarray(ACTIONS, dtype=object)
    # Parameters belong to the rule that produced the action; a capped action keeps only
    # the parameters that still apply (a throttle capped to flag has no rate).
    lowered = final_sev < policy_sev
    final = actions[final_sev]
    keep_rate = final == "throttle"
    keep_degrade = final == "degrade"
    # An action lowered to throttle/degrade by an exemption has no rule parameters: use the policy's defaults.
    rpm = np.where(keep_rate & np.equal(rpm, None), policy.default_throttle.requests_per_minute, rpm)
    burst = np.where(keep_rate & np.equal(burst, None), policy.default_throttle.burst, burst)
    withhold = np.where(
        keep_degrade & np.equal(withhold, None), policy.default_degrade.withhold_reasoning, withhold
    )
    max_out = np.where(
        keep_degrade & np.equal(max_out, None), policy.default_degrade.max_output_tokens, max_out
    )
    return pa.table(
        {
            "account_id": t["account_id"],
            "action": pa.array(final, pa.string()),
            "policy_action": pa.array(actions[policy_sev], pa.string()),
            "reason_codes": codes,
            "ttl_seconds": pa.array(np.where(lowered & (final == "allow"), None, ttl), pa.int32()),
            "throttle_rpm": pa.array(np.where(keep_rate, rpm, None), pa.float64()),
            "throttle_burst": pa.array(np.where(keep_rate, burst, None), pa.int32()),
            "withhold_reasoning": pa.array(np.where(keep_degrade, withhold, None), pa.bool_()),
            "max_output_tokens": pa.array(np.where(keep_degrade, max_out, None), pa.int32()),
        },
        schema=ACTION_COLUMNS,
    )
