-- Store-wide metadata: which layout version created this file.
CREATE TABLE IF NOT EXISTS store_meta (key VARCHAR PRIMARY KEY, value VARCHAR);
INSERT OR IGNORE INTO store_meta VALUES ('created_by', 'distillwatch');
