"""The actor kernel: actors, mailboxes, watches, supervision, breakers, backoff. Knows nothing of LLMs."""
