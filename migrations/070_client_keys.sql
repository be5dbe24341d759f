-- Client keys created at run time (`llmswitch keys create`, POST /admin/keys). Only the
-- SHA-256 of a key is stored; policy is the JSON of its KeyPolicy (limits, lists, budgets).
CREATE TABLE client_keys (
    name TEXT PRIMARY KEY,
    key_sha256 TEXT NOT NULL UNIQUE,
    policy TEXT NOT NULL,
    created_at REAL NOT NULL
);
