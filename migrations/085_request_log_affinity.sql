-- What conversation affinity did to each auto decision: new, kept, escalated or moved
-- (NULL where it did not apply: rules, explicit models, no conversation).
ALTER TABLE request_log ADD COLUMN affinity TEXT;
