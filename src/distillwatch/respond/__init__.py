"""distillwatch.respond: verdicts into actions, the audit trail, sign-up risk, the decision service.

- ``policy.load_policy(path) -> Policy``: the YAML policy (``examples/policy.yaml``).
- ``engine.apply_policy(policy, subjects, now) -> pa.Table``: actions for all accounts at once.
- ``decide.decide(results, policy, db, accounts_path=..., dry_run=...) -> DecideOutcome``:
  ``distillwatch decide``; writes ``actions.parquet``, records the run, diffs, audits.
- ``records``: the store tables (``store/schema/030_respond.sql``), overrides
  (``add_override``), the audit trail (``query_audit``), the version marker.
- ``signup.score_signups(...)``: registration risk (``distillwatch signup-risk``, ``POST /v1/signup``).
- ``snapshot.SnapshotHolder``: the in-memory decisions the service and in-process deciders serve.
- ``service.create_app(db, policy, tokens) -> DecisionService``: ``distillwatch serve``.

See docs/respond.md.
"""
