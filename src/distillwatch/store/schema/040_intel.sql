-- Threat intelligence (owned by the intel stage): campaign history across scans,
-- known actors and their fingerprints, and indicators imported from partners.
-- Fingerprints are stored as JSON (intel/fingerprint.py: Fingerprint); they hold
-- template hashes and MinHash sketches, never raw prompts, e-mails or account ids.

-- One row per campaign per scan that saw it.  A returning campaign keeps its id,
-- so "how many scans", "first seen" and "how it grew" are queries over this table.
CREATE TABLE IF NOT EXISTS intel_campaign_runs (
    campaign_id  VARCHAR NOT NULL,     -- the tracked id (stable across scans)
    run_id       VARCHAR NOT NULL,
    scan_id      VARCHAR,              -- the id the scan first gave it in this run
    recorded_at  TIMESTAMPTZ NOT NULL,
    first_seen   TIMESTAMPTZ,
    last_seen    TIMESTAMPTZ,
    accounts     BIGINT,
    exchanges    BIGINT,
    match_score  DOUBLE,               -- similarity to the previous run's fingerprint (null when new)
    fingerprint  JSON NOT NULL,
    PRIMARY KEY (campaign_id, run_id)
);

-- Analyst-maintained actors ("who is behind it"): a name and a set of fingerprints.
CREATE TABLE IF NOT EXISTS intel_actors (
    name        VARCHAR PRIMARY KEY,
    description VARCHAR,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS intel_actor_fingerprints (
    actor       VARCHAR NOT NULL,
    source      VARCHAR NOT NULL,      -- e.g. "label", "results:/path", "partner:NAME"
    campaign_id VARCHAR,
    added_at    TIMESTAMPTZ NOT NULL,
    fingerprint JSON NOT NULL
);

-- Indicators received from partners (distillwatch intel import).  One row per
-- matchable value; `kind` is ipv4-prefix | ipv6-prefix | asn | email-domain | template-hash.
CREATE TABLE IF NOT EXISTS intel_partner_indicators (
    partner      VARCHAR NOT NULL,
    indicator_id VARCHAR NOT NULL,     -- the STIX id, so a re-import updates in place
    kind         VARCHAR NOT NULL,
    value        VARCHAR NOT NULL,
    name         VARCHAR,              -- the indicator's name, bounded
    confidence   INTEGER,              -- STIX confidence 0..100 when given
    valid_from   TIMESTAMPTZ,
    valid_until  TIMESTAMPTZ,
    imported_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (partner, indicator_id, kind, value)
);

CREATE TABLE IF NOT EXISTS intel_imports (
    partner     VARCHAR NOT NULL,
    source      VARCHAR NOT NULL,
    bundle_id   VARCHAR,
    imported_at TIMESTAMPTZ NOT NULL,
    objects     BIGINT,
    indicators  BIGINT,
    stored      BIGINT,
    skipped     JSON                   -- reason -> count
);

-- The partner campaign an indicator `indicates` (its STIX id), so accounts matching
-- the same partner campaign can be linked.  Added after the first layout: idempotent.
ALTER TABLE intel_partner_indicators ADD COLUMN IF NOT EXISTS campaign_ref VARCHAR;
