-- The task type of each request (the classification column keeps the complexity).
ALTER TABLE request_log ADD COLUMN task TEXT;

-- Totals per dimension per UTC hour and per UTC day (span 3600 or 86400 seconds from
-- start), kept when raw rows are pruned after store.retain_days: what /admin/stats reads,
-- whole days from day rows and the edges from hour rows, so a year answers from a few
-- thousand rows. dim is all|model|backend|client|task|profile|tier|harness|status; key is the
-- dimension's value ('' when the row has none). lat_N and ttfb_N count requests per
-- latency bucket (llmswitch.store.rollup.BUCKET_BOUNDS_MS), so percentiles survive sums.
CREATE TABLE request_rollup (
    dim TEXT NOT NULL,
    span INTEGER NOT NULL,
    start INTEGER NOT NULL,
    key TEXT NOT NULL,
    requests INTEGER NOT NULL DEFAULT 0,
    errors INTEGER NOT NULL DEFAULT 0,
    tokens_in INTEGER NOT NULL DEFAULT 0,
    tokens_out INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL NOT NULL DEFAULT 0,
    lat_0 INTEGER NOT NULL DEFAULT 0,
    lat_1 INTEGER NOT NULL DEFAULT 0,
    lat_2 INTEGER NOT NULL DEFAULT 0,
    lat_3 INTEGER NOT NULL DEFAULT 0,
    lat_4 INTEGER NOT NULL DEFAULT 0,
    lat_5 INTEGER NOT NULL DEFAULT 0,
    lat_6 INTEGER NOT NULL DEFAULT 0,
    lat_7 INTEGER NOT NULL DEFAULT 0,
    lat_8 INTEGER NOT NULL DEFAULT 0,
    lat_9 INTEGER NOT NULL DEFAULT 0,
    lat_10 INTEGER NOT NULL DEFAULT 0,
    lat_11 INTEGER NOT NULL DEFAULT 0,
    lat_12 INTEGER NOT NULL DEFAULT 0,
    lat_13 INTEGER NOT NULL DEFAULT 0,
    lat_14 INTEGER NOT NULL DEFAULT 0,
    lat_15 INTEGER NOT NULL DEFAULT 0,
    lat_16 INTEGER NOT NULL DEFAULT 0,
    lat_17 INTEGER NOT NULL DEFAULT 0,
    lat_18 INTEGER NOT NULL DEFAULT 0,
    lat_19 INTEGER NOT NULL DEFAULT 0,
    lat_20 INTEGER NOT NULL DEFAULT 0,
    lat_21 INTEGER NOT NULL DEFAULT 0,
    lat_22 INTEGER NOT NULL DEFAULT 0,
    lat_23 INTEGER NOT NULL DEFAULT 0,
    lat_24 INTEGER NOT NULL DEFAULT 0,
    lat_25 INTEGER NOT NULL DEFAULT 0,
    lat_26 INTEGER NOT NULL DEFAULT 0,
    lat_27 INTEGER NOT NULL DEFAULT 0,
    ttfb_0 INTEGER NOT NULL DEFAULT 0,
    ttfb_1 INTEGER NOT NULL DEFAULT 0,
    ttfb_2 INTEGER NOT NULL DEFAULT 0,
    ttfb_3 INTEGER NOT NULL DEFAULT 0,
    ttfb_4 INTEGER NOT NULL DEFAULT 0,
    ttfb_5 INTEGER NOT NULL DEFAULT 0,
    ttfb_6 INTEGER NOT NULL DEFAULT 0,
    ttfb_7 INTEGER NOT NULL DEFAULT 0,
    ttfb_8 INTEGER NOT NULL DEFAULT 0,
    ttfb_9 INTEGER NOT NULL DEFAULT 0,
    ttfb_10 INTEGER NOT NULL DEFAULT 0,
    ttfb_11 INTEGER NOT NULL DEFAULT 0,
    ttfb_12 INTEGER NOT NULL DEFAULT 0,
    ttfb_13 INTEGER NOT NULL DEFAULT 0,
    ttfb_14 INTEGER NOT NULL DEFAULT 0,
    ttfb_15 INTEGER NOT NULL DEFAULT 0,
    ttfb_16 INTEGER NOT NULL DEFAULT 0,
    ttfb_17 INTEGER NOT NULL DEFAULT 0,
    ttfb_18 INTEGER NOT NULL DEFAULT 0,
    ttfb_19 INTEGER NOT NULL DEFAULT 0,
    ttfb_20 INTEGER NOT NULL DEFAULT 0,
    ttfb_21 INTEGER NOT NULL DEFAULT 0,
    ttfb_22 INTEGER NOT NULL DEFAULT 0,
    ttfb_23 INTEGER NOT NULL DEFAULT 0,
    ttfb_24 INTEGER NOT NULL DEFAULT 0,
    ttfb_25 INTEGER NOT NULL DEFAULT 0,
    ttfb_26 INTEGER NOT NULL DEFAULT 0,
    ttfb_27 INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (dim, span, start, key)
) WITHOUT ROWID;

-- Rows of request_log with id <= rolled_up_id are counted in request_rollup.
CREATE TABLE request_rollup_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    rolled_up_id INTEGER NOT NULL
);
INSERT INTO request_rollup_state (id, rolled_up_id) VALUES (1, 0);
