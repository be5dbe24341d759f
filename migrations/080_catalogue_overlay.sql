-- The catalogue overlay `llmswitch prices sync` writes: per model name, the JSON of the
-- catalogue fields read from a price list (providers/catalogue.py Entry). It wins over the
-- catalogue shipped in the package; anything set in the config wins over it.
CREATE TABLE catalogue_overlay (
    name TEXT PRIMARY KEY,
    entry TEXT NOT NULL,
    source TEXT NOT NULL,
    synced_at REAL NOT NULL
);
