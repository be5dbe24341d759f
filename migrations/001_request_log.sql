-- One row per request the gateway answered (or failed to answer), written by the ledger.
-- ts is unix seconds (wall clock); request_id makes re-written batches idempotent.
CREATE TABLE request_log (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    request_id TEXT NOT NULL UNIQUE,
    client TEXT,
    requested_model TEXT,
    chosen_model TEXT,
    backend TEXT,
    tier TEXT,
    classification TEXT,
    reason TEXT,
    status INTEGER NOT NULL,
    stream INTEGER NOT NULL,
    latency_ms REAL,
    ttfb_ms REAL,
    tokens_in INTEGER,
    tokens_out INTEGER,
    usage_estimated INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL NOT NULL DEFAULT 0,
    error TEXT
);

-- Spend per day/month sums a ts range; the debug and metrics views list recent rows.
CREATE INDEX request_log_ts ON request_log (ts);
CREATE INDEX request_log_chosen_model ON request_log (chosen_model);
