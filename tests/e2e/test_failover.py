"""A failing candidate is replaced before the first byte; after it, never spliced."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest
import trio

from tests.e2e.harness import closed_port, model, start_stack

HELLO = [{"role": "user", "content": "hello there"}]


async def test_dead_backend_fails_over_to_the_next_candidate(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    dead = {"name": "dead", "base_url": f"http://127.0.0.1:{closed_port()}/v1", "locality": "local"}
    models = [model("gone", "dead", 30, fallbacks=["medium"]), model("medium", "local", 45)]
    stack = await start_stack(nursery, tmp_path, models=models, extra_backends=[dead])
    raw = await stack.client().chat.completions.with_raw_response.create(
        model="gone", messages=HELLO
    )
    assert raw.parse().choices[0].message.content == "echo: hello there"
    assert raw.headers["x-router-model"] == "medium"
    (row,) = await stack.rows()
    assert (row.chosen_model, row.backend, row.status) == ("medium", "local", 200)


async def test_upstream_500_fails_over_and_all_failing_is_the_exhaustion_answer(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    stack = await start_stack(nursery, tmp_path)
    stack.sim("local").set_knobs("small", error_status=500)
    completion = await stack.client().chat.completions.create(model="small", messages=HELLO)
    assert completion.model == "medium"
    stack.sim("local").set_knobs(error_status=503)
    with pytest.raises(openai.APIStatusError) as err:
        await stack.client().chat.completions.create(model="small", messages=HELLO)
    # Nothing could serve it: the exhaustion status and Retry-After, as for no candidate.
    assert err.value.status_code == 503
    assert err.value.response.headers["retry-after"] == "120"
    assert err.value.code == "upstream_failed"
    # "small" still answers 500 (its own knob): next candidate at once. "medium" answers
    # 503, which is retried once on the same backend before giving up.
    assert [a["model"] for a in err.value.body["attempts"]] == ["small", "medium", "medium"]  # type: ignore[index]
    # The message itself names each model and why: SDKs show only the message.
    assert "small: HTTP 500" in err.value.message and "medium: HTTP 503" in err.value.message


async def test_no_candidate_left_is_the_exhaustion_status_with_reasons(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    routing = {"exhaustion_status": 429, "exhaustion_retry_after_s": 61, "metered_cloud": ["*"]}
    big = model("big", "cloud", 90, cost_input_per_mtok=1.0, cost_output_per_mtok=2.0)
    stack = await start_stack(
        nursery, tmp_path, models=[big], routing=routing, budget={"daily_usd": 0.0}
    )
    with pytest.raises(openai.RateLimitError) as err:
        await stack.client().chat.completions.create(model="auto", messages=HELLO)
    assert err.value.status_code == 429
    assert err.value.response.headers["retry-after"] == "61"
    excluded = err.value.body["excluded"]  # type: ignore[index]
    assert excluded == [{"model": "big", "why": "budget exceeded"}]
    assert "big: budget exceeded" in err.value.message
    # Named by the client, the model is refused outright rather than swapped.
    with pytest.raises(openai.PermissionDeniedError) as refused:
        await stack.client().chat.completions.create(model="big", messages=HELLO)
    assert refused.value.code == "budget_exceeded"


async def test_mid_stream_cut_ends_with_an_error_event_and_no_splice(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    stack = await start_stack(nursery, tmp_path)
    stack.sim("local").set_knobs("small", cut_after=2, reply="one two three four five six")
    stream = await stack.client().chat.completions.create(
        model="small", messages=HELLO, stream=True
    )
    received: list[str] = []
    with pytest.raises(openai.APIError, match="mid-stream"):
        async for chunk in stream:
            received.append(chunk.choices[0].delta.content or "" if chunk.choices else "")
    assert "".join(received) == "one two"
    assert stack.sim("local").stats.by_model["medium"] == 0
    (row,) = await stack.rows()
    assert row.status == 502 and row.chosen_model == "small"
    assert row.error is not None and "after first byte" in row.error
