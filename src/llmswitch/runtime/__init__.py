"""The actor kernel: actors, mailboxes, watches, supervision, breakers, backoff.

It knows nothing of LLMs.
"""
