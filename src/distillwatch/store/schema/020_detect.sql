-- Detection (owned by the detect stage): one row per scan, its account verdicts and campaigns.
-- Ids are the tracked campaign ids (after intel tracking), so history queries join across scans.

CREATE TABLE IF NOT EXISTS detect_runs (
    run_id        VARCHAR PRIMARY KEY,
    started_at    TIMESTAMPTZ NOT NULL,
    finished_at   TIMESTAMPTZ,
    results_dir   VARCHAR,
    inputs        JSON,               -- paths of the exchanges / accounts read
    config        JSON,               -- the detection configuration in effect
    counts        JSON,               -- rows read / accepted / quarantined, by reason
    accounts      BIGINT,
    campaigns     BIGINT,
    attack        BIGINT,             -- accounts with verdict attack
    suspect       BIGINT,
    thresholds    JSON,               -- calibrated score thresholds and the target FPR
    timings       JSON,               -- seconds per stage
    status        VARCHAR NOT NULL    -- running | ok | failed
);

CREATE TABLE IF NOT EXISTS detect_accounts (
    run_id      VARCHAR NOT NULL,
    account_id  VARCHAR NOT NULL,
    score       DOUBLE NOT NULL,
    verdict     VARCHAR NOT NULL,
    campaign_id VARCHAR,
    reasons     VARCHAR NOT NULL,
    PRIMARY KEY (run_id, account_id)
);

CREATE TABLE IF NOT EXISTS detect_campaigns (
    run_id      VARCHAR NOT NULL,
    campaign_id VARCHAR NOT NULL,
    accounts    BIGINT,
    exchanges   BIGINT,
    first_seen  TIMESTAMPTZ,
    last_seen   TIMESTAMPTZ,
    confidence  DOUBLE,
    record      JSON NOT NULL,        -- the full Campaign record (campaigns/model.py)
    PRIMARY KEY (run_id, campaign_id)
);
