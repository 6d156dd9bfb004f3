-- Response (owned by the respond stage): decision runs, the decision for every account
-- under action, analyst overrides, registrations scored, and the audit trail.
-- Values are always bound as parameters or inserted from Arrow tables; never concatenated.

-- One row per `distillwatch decide`.
CREATE TABLE IF NOT EXISTS respond_runs (
    run_id        VARCHAR PRIMARY KEY,
    decided_at    TIMESTAMPTZ NOT NULL,
    actor         VARCHAR NOT NULL,
    results_dir   VARCHAR,
    scan_run_id   VARCHAR,              -- run.json's id, when present
    policy_name   VARCHAR,
    policy_digest VARCHAR,
    dry_run       BOOLEAN NOT NULL,     -- dry runs are recorded but never served
    accounts      BIGINT,               -- accounts in the results
    actions       JSON                  -- action -> count
);

-- The decision per account per run: accounts with an action, and accounts whose action
-- an allowlist, exemption or analyst clearing lowered (so the reason stays visible).
CREATE TABLE IF NOT EXISTS respond_decisions (
    run_id            VARCHAR NOT NULL,
    account_id        VARCHAR NOT NULL,
    action            VARCHAR NOT NULL,
    policy_action     VARCHAR NOT NULL, -- what the rules alone asked for
    reason_codes      VARCHAR[] NOT NULL,
    campaign_id       VARCHAR,
    score             DOUBLE,
    verdict           VARCHAR,
    ttl_seconds       INTEGER,
    throttle_rpm      DOUBLE,
    throttle_burst    INTEGER,
    withhold_reasoning BOOLEAN,
    max_output_tokens INTEGER,
    evidence_band     INTEGER,          -- score band index (policy.score_bands)
    evidence_signals  VARCHAR[],        -- signal ids behind the verdict
    evidence_campaign VARCHAR[],        -- the campaign's indicators (bounded)
    evidence_fp       VARCHAR,          -- hash of the three above
    PRIMARY KEY (run_id, account_id)
);

-- Analyst overrides.  kind: clear (allow until new evidence), set (force an action),
-- revoke (end the account's earlier overrides).
CREATE TABLE IF NOT EXISTS respond_overrides (
    override_id       VARCHAR PRIMARY KEY,
    account_id        VARCHAR NOT NULL,
    kind              VARCHAR NOT NULL,
    action            VARCHAR,
    analyst           VARCHAR NOT NULL,
    note              VARCHAR NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL,
    expires_at        TIMESTAMPTZ,
    active            BOOLEAN NOT NULL,
    ended_at          TIMESTAMPTZ,
    ended_reason      VARCHAR,
    evidence_band     INTEGER,
    evidence_signals  VARCHAR[],
    evidence_campaign VARCHAR[],
    evidence_fp       VARCHAR
);

-- Registrations scored by `signup-risk` (so "shared with recent sign-ups" spans batches).
CREATE TABLE IF NOT EXISTS respond_signups (
    account_id          VARCHAR,
    created_at          TIMESTAMPTZ,
    scored_at           TIMESTAMPTZ NOT NULL,
    email_domain        VARCHAR,
    local_pattern       VARCHAR,
    signup_ip           VARCHAR,
    ip_prefix           VARCHAR,
    payment_fingerprint VARCHAR,
    action              VARCHAR NOT NULL,
    reason_codes        VARCHAR[] NOT NULL
);

-- Every action taken and every override: who, when, why.
CREATE TABLE IF NOT EXISTS respond_audit (
    audit_id        VARCHAR PRIMARY KEY,
    at_time         TIMESTAMPTZ NOT NULL,
    kind            VARCHAR NOT NULL,   -- decision | decide-run | override | clear-superseded | signup
    actor           VARCHAR NOT NULL,
    account_id      VARCHAR,
    action          VARCHAR,
    previous_action VARCHAR,
    change          VARCHAR,            -- new | changed | expired (decisions)
    reason_codes    VARCHAR[],
    why             VARCHAR,
    run_id          VARCHAR,
    dry_run         BOOLEAN
);

-- What sign-up scoring needs from the latest decision run: payment fingerprints of
-- accounts under action (never the accounts' e-mails) and the campaigns' indicators.
CREATE TABLE IF NOT EXISTS respond_flagged_payments (
    run_id              VARCHAR NOT NULL,
    payment_fingerprint VARCHAR NOT NULL,
    accounts            BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS respond_campaign_indicators (
    run_id      VARCHAR NOT NULL,
    campaign_id VARCHAR NOT NULL,
    kind        VARCHAR NOT NULL,       -- ipv4-prefix | ipv6-prefix | email-domain | asn | ...
    value       VARCHAR NOT NULL,
    confidence  DOUBLE
);
