"""Conversation affinity through the gateway, turn by turn with the openai SDK."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from tests.e2e.harness import Stack, start_stack

CODE = "Write a Python function that parses an ISO date and returns the weekday, with tests."
SIMPLE = "What is the capital of France?"
HARD = (
    "Design a sharded, replicated job queue in Rust with exactly-once delivery, "
    "crash recovery and a full test plan."
)


class Conversation:
    """One conversation's turns, each answer appended before the next ask."""

    def __init__(self, stack: Stack, session: str) -> None:
        self.client = stack.client(default_headers={"X-Session-Id": session})
        self.messages: list[dict[str, Any]] = []

    async def turn(self, text: str) -> tuple[str, str | None]:
        """(the model that answered, what affinity did)."""
        self.messages.append({"role": "user", "content": text})
        raw = await self.client.chat.completions.with_raw_response.create(
            model="auto", messages=self.messages
        )
        answer = raw.parse().choices[0].message.content
        self.messages.append({"role": "assistant", "content": answer})
        return raw.headers["x-router-model"], raw.headers.get("x-router-affinity")


async def test_a_conversation_keeps_its_model_escalates_and_never_downgrades(
    stack: Stack,
) -> None:
    chat = Conversation(stack, "conv-1")
    assert await chat.turn(CODE) == ("medium", "new")
    assert await chat.turn(SIMPLE) == ("medium", "kept")
    assert await chat.turn(HARD) == ("coder", "escalated")
    assert await chat.turn(SIMPLE) == ("coder", "kept")
    # Another conversation with the same simple ask gets the cheapest model.
    assert await Conversation(stack, "conv-2").turn(SIMPLE) == ("small", "new")
    rows = await stack.rows()
    assert [(r.chosen_model, r.affinity) for r in rows if r.conversation == "plain:conv-1"] == [
        ("medium", "new"),
        ("medium", "kept"),
        ("coder", "escalated"),
        ("coder", "kept"),
    ]
    async with stack.http() as http:
        debug = (await http.get("/debug")).json()
    (router,) = [a for a in debug["supervisor"]["actors"] if a["name"] == "router"]
    affinity = router["summary"]["affinity"]
    assert affinity["conversations"] == 2
    assert affinity["decisions"] == {"new": 2, "kept": 2, "escalated": 1}
    assert "conv-1" not in str(debug)


async def test_a_failing_model_moves_the_conversation_for_good(stack: Stack) -> None:
    chat = Conversation(stack, "conv-fail")
    assert await chat.turn(CODE) == ("medium", "new")
    stack.sim("local").set_knobs("medium", error_status=500)
    # The pinned model fails: the turn fails over to a model at least as good, not "small".
    assert await chat.turn(SIMPLE) == ("coder", "kept")
    stack.sim("local").reset_knobs("medium")
    assert await chat.turn(SIMPLE) == ("coder", "kept")


async def test_affinity_can_be_turned_off(nursery: trio.Nursery, tmp_path: Path) -> None:
    off = await start_stack(nursery, tmp_path / "off", routing={"affinity_max": 0})
    chat = Conversation(off, "conv-off")
    assert await chat.turn(CODE) == ("medium", None)
    assert await chat.turn(SIMPLE) == ("small", None)
