-- Which instance of a fleet served each request (host:port, /worker when several), so one
-- PostgreSQL log (store.url) tells the fleet's members apart; NULL for rows from before.
ALTER TABLE request_log ADD COLUMN instance TEXT;
