-- The agent harness that sent each request, the conversation it belongs to (model
-- affinity), and the output cap the chosen model could give when it was below the ask.
ALTER TABLE request_log ADD COLUMN harness TEXT;
ALTER TABLE request_log ADD COLUMN conversation TEXT;
ALTER TABLE request_log ADD COLUMN output_cap INTEGER;
