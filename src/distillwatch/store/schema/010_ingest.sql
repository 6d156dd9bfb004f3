-- Ingest (owned by the ingest stage): the history of runs and what each one read.
-- Every command that reads input (ingest, scan, ...) records one row in `runs`,
-- so "rows read = accepted + quarantined, by reason" stays answerable later.

CREATE TABLE IF NOT EXISTS runs (
    run_id                VARCHAR PRIMARY KEY,
    command               VARCHAR NOT NULL,     -- ingest | scan | ...
    started_at            TIMESTAMPTZ NOT NULL,
    finished_at           TIMESTAMPTZ,
    status                VARCHAR NOT NULL,     -- running | ok | failed
    inputs                JSON,                 -- {"exchanges": [paths], "accounts": [paths]}
    options               JSON,                 -- IngestOptions as given
    outputs               JSON,                 -- paths of the accepted Parquet and the quarantine
    exchanges_read        BIGINT,
    exchanges_accepted    BIGINT,
    exchanges_quarantined BIGINT,
    accounts_read         BIGINT,
    accounts_accepted     BIGINT,
    accounts_quarantined  BIGINT,
    by_reason             JSON,                 -- {"exchanges": {reason: n}, "accounts": {reason: n}}
    counts                JSON,                 -- the full IngestResult.counts
    error                 VARCHAR               -- one line, when status = failed
);

-- One row per input file per run: where the data came from and how it was read.
CREATE TABLE IF NOT EXISTS ingest_sources (
    run_id      VARCHAR NOT NULL,
    table_name  VARCHAR NOT NULL,               -- exchanges | accounts
    source      VARCHAR NOT NULL,               -- file path as given
    format      VARCHAR NOT NULL,               -- parquet | jsonl | json | csv
    adapter     VARCHAR NOT NULL,               -- contract | chat | otel
    bytes       BIGINT,
    rows_read   BIGINT,
    PRIMARY KEY (run_id, table_name, source)
);
