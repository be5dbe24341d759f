"""The message that hands an actor a reloaded config (see :mod:`llmswitch.reloader`)."""

from __future__ import annotations

from dataclasses import dataclass

from llmswitch.config import Config
from llmswitch.runtime.mailbox import Request


@dataclass(eq=False)
class Reconfigure(Request[None]):
    """Adopt ``config``; the reply says the actor now runs on it.

    It comes through the mailbox like any other message, so the actor switches between
    two messages, never inside one; each keeps the state of what did not change
    (breakers, buckets, spend, holds, health).
    """

    config: Config
