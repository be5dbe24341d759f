-- Routing settings edited at run time (by the CLI or the admin API), read by the router.
-- updated_at is unix seconds (wall clock); the router polls the largest one to notice edits.

-- Tier-1 rules that replace (same name) or add to the configured ones; rule is the JSON
-- of a RuleConfig, name is authoritative.
CREATE TABLE router_rules (
    name TEXT PRIMARY KEY,
    rule TEXT NOT NULL,
    updated_at REAL NOT NULL
);

-- Other settings (the active profile, ...): one JSON value per key.
CREATE TABLE router_settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at REAL NOT NULL
);

-- One row: when rules or settings last changed. A deleted row leaves no updated_at behind,
-- so deletes are stamped here for the router to notice them too.
CREATE TABLE router_changes (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    changed_at REAL NOT NULL
);
