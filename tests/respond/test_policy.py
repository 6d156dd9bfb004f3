from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from distillwatch.respond.engine import apply_policy
from distillwatch.respond.policy import PolicyError, load_policy
from tests.respond.helpers import NOW


def _write(tmp_path, text: str):
    p = tmp_path / "policy.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def test_default_policy_loads_and_example_policy_loads():
    assert load_policy().rules
    example = Path(__file__).parents[2] / "examples" / "policy.yaml"
    assert load_policy(example).name


def test_misspelt_key_is_an_error_naming_file_and_field(tmp_path):
    p = _write(
        tmp_path,
        "version: 1\nrules:\n  - name: r\n    when: {verdcit: [attack]}\n    action: block\n    reason_code: X\n",
    )
    with pytest.raises(PolicyError) as err:
        load_policy(p)
    assert str(p) in str(err.value) and "rules.0.when.verdcit" in str(err.value)


@pytest.mark.parametrize(
    "rule, needle",
    [
        ("{name: r, action: throttle, reason_code: X}", "throttle needs"),
        ("{name: r, action: explode, reason_code: X}", "rules.0.action"),
        ("{name: r, action: block, reason_code: 'bad code!'}", "reason_code"),
        ("{name: r, when: {verdict: [evil]}, action: block, reason_code: X}", "unknown verdict"),
    ],
)
def test_invalid_rules_are_refused(tmp_path, rule, needle):
    with pytest.raises(PolicyError, match=needle):
        load_policy(_write(tmp_path, f"rules:\n  - {rule}\n"))


def test_not_a_mapping_and_bad_yaml(tmp_path):
    with pytest.raises(PolicyError, match="mapping"):
        load_policy(_write(tmp_path, "- a\n- b\n"))
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy(_write(tmp_path, "rules: [\n"))
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "missing.yaml")


POLICY = """
version: 1
allowlist: {accounts: [vip], orgs: [org-uni]}
exemptions:
  - {name: ent, when: {tier: [enterprise]}, max_action: flag, reason_code: EXEMPT}
rules:
  - {name: block, when: {verdict: [attack], in_campaign: true, min_campaign_confidence: 0.8}, action: block, reason_code: BLOCK, ttl_seconds: 60}
  - {name: verify, when: {verdict: [attack]}, action: verify, reason_code: VERIFY}
  - {name: young, when: {verdict: [suspect], max_account_age_days: 7}, action: throttle, reason_code: YOUNG, throttle: {requests_per_minute: 5}}
  - {name: degrade, when: {min_score: 0.5, max_score: 0.8}, action: degrade, reason_code: DEGRADE, degrade: {max_output_tokens: 256}}
"""


def test_most_severe_rule_wins_all_reasons_listed_and_caps_apply(tmp_path):
    policy = load_policy(_write(tmp_path, POLICY))
    ts = pa.timestamp("us", tz="UTC")
    subjects = pa.table(
        {
            "account_id": ["a", "b", "c", "d", "vip", "e", "f"],
            "score": [0.95, 0.9, 0.6, 0.6, 0.99, 0.1, 0.95],
            "verdict": ["attack", "attack", "suspect", "suspect", "attack", "benign", "attack"],
            "campaign_id": ["C1", None, None, None, "C1", None, "C1"],
            "campaign_confidence": [0.9, None, None, None, 0.9, None, 0.9],
            "tier": ["free", "free", "free", None, "free", "free", "enterprise"],
            "org_id": [None, None, None, None, None, None, None],
            "created_at": pa.array([NOW - timedelta(days=d) for d in (1, 1, 3, 30, 1, 1, 1)], ts),
        }
    )
    out = {r["account_id"]: r for r in apply_policy(policy, subjects, NOW).to_pylist()}
    assert out["a"]["action"] == "block" and out["a"]["reason_codes"] == ["BLOCK", "VERIFY"]
    assert out["a"]["ttl_seconds"] == 60
    assert out["b"]["action"] == "verify" and out["b"]["ttl_seconds"] == policy.default_ttl_seconds
    # young suspect: throttle (sev 2) loses to degrade (sev 3); both codes listed
    assert out["c"]["action"] == "degrade" and out["c"]["reason_codes"] == ["YOUNG", "DEGRADE"]
    assert out["c"]["max_output_tokens"] == 256 and out["c"]["throttle_rpm"] is None
    assert out["d"]["action"] == "degrade" and out["d"]["reason_codes"] == ["DEGRADE"]
    assert out["vip"]["action"] == "allow" and out["vip"]["policy_action"] == "block"
    assert "ALLOWLISTED" in out["vip"]["reason_codes"]
    assert out["e"]["action"] == "allow" and out["e"]["reason_codes"] == []
    assert (
        out["f"]["action"] == "flag"
        and out["f"]["policy_action"] == "block"
        and "EXEMPT" in out["f"]["reason_codes"]
    )


def test_unknown_attributes_never_satisfy_a_condition(tmp_path):
    policy = load_policy(_write(tmp_path, POLICY))
    subjects = pa.table({"account_id": ["x"], "score": [0.6], "verdict": ["suspect"], "campaign_id": [None]})
    (row,) = apply_policy(policy, subjects, NOW).to_pylist()
    # no created_at: the age rule cannot hold; the score rule still does
    assert row["reason_codes"] == ["DEGRADE"]
