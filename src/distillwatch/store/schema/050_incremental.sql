-- Incremental scans (owned by distillwatch.incremental): per-partition partial aggregates, the content
-- sample, and account / campaign state.  Every table is keyed by account_id (and the partition that
-- produced the row, so a partition can be dropped or reprocessed on its own).  Features for a window are
-- merged from these tables; no row of the exchanges is read twice.  See docs/incremental.md.

CREATE SEQUENCE IF NOT EXISTS inc_part_seq START 1;

-- One row per processed partition (a file dropped into a watched directory, or a [since, until) slice).
CREATE TABLE IF NOT EXISTS inc_partitions (
    part_id       BIGINT PRIMARY KEY,
    source        VARCHAR NOT NULL,      -- path of the input read
    since         TIMESTAMPTZ,           -- slice bounds (null: the whole input)
    until         TIMESTAMPTZ,
    size_bytes    BIGINT,
    mtime         DOUBLE,
    content_hash  VARCHAR,               -- sha256 of the input file (watch: each file once)
    min_ts        TIMESTAMPTZ,           -- first and last accepted exchange
    max_ts        TIMESTAMPTZ,
    counts        JSON NOT NULL,         -- read / accepted / quarantined / duplicates / outside the slice
    retained_path VARCHAR,               -- the validated, address-enriched rows, kept for campaign summaries
    run_id        VARCHAR,               -- the detect run this increment produced
    processed_at  TIMESTAMPTZ NOT NULL
);

-- Request ids already accepted (exactly-once: a re-sent row is counted as a duplicate and skipped).
CREATE TABLE IF NOT EXISTS inc_request_ids (
    request_id VARCHAR NOT NULL,
    part_id    BIGINT NOT NULL
);

-- Per (partition, account): sums, extremes and inter-arrival moments within the partition.
CREATE TABLE IF NOT EXISTS inc_account_part (
    part_id           BIGINT NOT NULL,
    account_id        VARCHAR NOT NULL,
    n                 BIGINT NOT NULL,
    first_ts          TIMESTAMPTZ,
    last_ts           TIMESTAMPTZ,
    first_sec         DOUBLE,
    last_sec          DOUBLE,
    gap_n             BIGINT NOT NULL,       -- gaps between consecutive exchanges inside the partition
    gap_mean          DOUBLE,
    gap_m2            DOUBLE,                -- sum of squared deviations from gap_mean
    input_tokens      BIGINT,
    output_tokens     BIGINT,
    tool_n            BIGINT NOT NULL,
    conversation_rows BIGINT NOT NULL,
    datacenter_n      BIGINT NOT NULL,
    vpn_n             BIGINT NOT NULL,
    tor_n             BIGINT NOT NULL,
    PRIMARY KEY (part_id, account_id)
);

-- Per (partition, account, UTC epoch hour): exchange counts (hour histograms, active days, streaks,
-- synchronised activity, daily volume).
CREATE TABLE IF NOT EXISTS inc_account_hour (
    part_id    BIGINT NOT NULL,
    account_id VARCHAR NOT NULL,
    ehour      BIGINT NOT NULL,   -- floor(epoch seconds / 3600)
    daynum     BIGINT NOT NULL,
    hour       INTEGER NOT NULL,
    n          BIGINT NOT NULL
);

-- Per (partition, account, kind, value): the distinct values an account used (ip, prefix, asn,
-- user_agent, country, provider, org, model, conversation) with counts and first/last use.
CREATE TABLE IF NOT EXISTS inc_account_value (
    part_id    BIGINT NOT NULL,
    account_id VARCHAR NOT NULL,
    kind       VARCHAR NOT NULL,
    value      VARCHAR NOT NULL,
    n          BIGINT NOT NULL,
    first_sec  DOUBLE,
    first_ts   TIMESTAMPTZ
);

-- The content sample: each account's bottom-k request ids by md5(request_id) (as the batch scan samples).
CREATE TABLE IF NOT EXISTS inc_sample (
    account_id  VARCHAR,
    request_id  VARCHAR,
    rid_md5     VARCHAR,
    part_id     BIGINT,
    sec         DOUBLE,
    daynum      BIGINT,
    n_tools     BIGINT,
    prompt_key  BIGINT  ,
    system_key  BIGINT  
);

-- Per-text facts of the prompts and system prompts that entered the sample (computed once).
CREATE TABLE IF NOT EXISTS inc_prompt_facts (
    prompt_key    BIGINT   PRIMARY KEY,
    capability    VARCHAR,
    cot           BOOLEAN,
    template_hash VARCHAR
);
CREATE TABLE IF NOT EXISTS inc_system_facts (
    system_key BIGINT   PRIMARY KEY,
    system_cot BOOLEAN
);
CREATE TABLE IF NOT EXISTS inc_prompt_bands (
    prompt_key BIGINT   NOT NULL,
    band       BIGINT NOT NULL
);

-- The latest record of every account (from the accounts files given with the increments).
CREATE TABLE IF NOT EXISTS inc_accounts (   -- contract.ACCOUNTS_SCHEMA, in its order
    account_id          VARCHAR PRIMARY KEY,
    created_at          TIMESTAMPTZ,
    email               VARCHAR,
    signup_ip           VARCHAR,
    payment_fingerprint VARCHAR,
    country             VARCHAR,
    org_id              VARCHAR,
    tier                VARCHAR
);

-- Account and campaign state, updated in place by every increment.
CREATE TABLE IF NOT EXISTS inc_account_state (
    account_id           VARCHAR PRIMARY KEY,
    first_seen           TIMESTAMPTZ,
    last_seen            TIMESTAMPTZ,
    score                DOUBLE,
    verdict              VARCHAR,
    campaign_id          VARCHAR,
    first_flagged_attack TIMESTAMPTZ,   -- data time (the increment's upper bound) of the first attack verdict
    first_flagged_suspect TIMESTAMPTZ,
    updated_run          VARCHAR
);
CREATE TABLE IF NOT EXISTS inc_campaign_state (
    campaign_id   VARCHAR PRIMARY KEY,
    first_flagged TIMESTAMPTZ,
    last_flagged  TIMESTAMPTZ,
    accounts      BIGINT,
    exchanges     BIGINT,
    confidence    DOUBLE,
    updated_run   VARCHAR
);

-- Set on partitions folded by compaction (incremental/compact.py) into the partition named here.
ALTER TABLE inc_partitions ADD COLUMN IF NOT EXISTS compacted_into BIGINT;
