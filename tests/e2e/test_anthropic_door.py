"""The Anthropic door with what Claude Code sends, through the real gateway.

Claude Code posts ``/v1/messages?beta=true`` with a ``role: "system"`` message after the
first user turn, ``thinking``, and ``output_config.format`` on its title request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anthropic
import pytest
import trio

from tests.e2e.test_providers import anthropic_client, backend_saw, stack_with

SCHEMA: Any = {"type": "object", "properties": {"title": {"type": "string"}}}


@pytest.mark.parametrize("wire", ["openai", "anthropic", "gemini"])
async def test_a_claude_code_request_is_served(
    nursery: trio.Nursery, tmp_path: Path, wire: str
) -> None:
    stack = await stack_with(nursery, tmp_path, wire)
    request: Any = {
        "model": "small",
        "max_tokens": 2000,
        "system": [{"type": "text", "text": "You are Claude Code."}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "hello there"}]},
            {"role": "system", "content": "Environment: linux"},
        ],
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "output_config": {"effort": "low", "format": {"type": "json_schema", "schema": SCHEMA}},
        "metadata": {"user_id": "someone"},
        "stream": True,
    }
    async with stack.http() as http:
        answer = await http.post("/v1/messages?beta=true", json=request)
    assert answer.status_code == 200, answer.text
    assert "event: message_stop" in answer.text
    body = backend_saw(stack, wire, stream=True)
    assert "You are Claude Code." in body and "Environment: linux" in body
    assert '"title"' in body  # the schema reached the backend in its wire's own terms
    if wire == "anthropic":
        assert '"output_config": {"format": {"type": "json_schema"' in body
        assert '"thinking": {"type": "enabled", "budget_tokens": 1024}' in body
    else:  # "small" is not marked `reasoning`: thinking has no place on its wire
        assert '"thinking"' not in body and "reasoning_effort" not in body
    if wire == "openai":
        assert '"response_format": {"type": "json_schema"' in body


async def test_exhaustion_stops_the_anthropic_sdk_at_once(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    """No model can serve: not overloaded_error, and the SDK does not retry."""
    stack = await stack_with(nursery, tmp_path, "openai")
    client = anthropic_client(stack).with_options(max_retries=3)
    too_long = "word " * 8000  # about 10k tokens: no model's context window holds it
    with pytest.raises(anthropic.APIStatusError) as err:
        await client.messages.create(
            model="auto", max_tokens=10, messages=[{"role": "user", "content": too_long}]
        )
    assert err.value.status_code == 503
    assert err.value.response.headers["x-should-retry"] == "false"
    assert err.value.body["error"]["type"] == "api_error"  # type: ignore[index]
    assert [r.status for r in await stack.rows()] == [503]
