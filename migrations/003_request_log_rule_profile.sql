-- Which tier-1 rule matched and which profile shaped the choice, for every request.
ALTER TABLE request_log ADD COLUMN rule TEXT;
ALTER TABLE request_log ADD COLUMN profile TEXT;
