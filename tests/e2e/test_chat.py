"""Chat completions through the real gateway, with the official openai SDK as client."""

from __future__ import annotations

import openai
import pytest

from tests.e2e.harness import Stack

HELLO = [{"role": "user", "content": "hello there"}]


async def test_non_stream_answer_names_the_model_and_leaves_a_ledger_row(stack: Stack) -> None:
    raw = await stack.client().chat.completions.with_raw_response.create(
        model="auto", messages=HELLO
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "echo: hello there"
    assert completion.model == "small"
    assert raw.headers["x-router-model"] == "small"
    # A plain greeting is tier 1's: the default rules send it to the small local model.
    assert raw.headers["x-router-tier"] == "rules"
    assert raw.headers["x-router-rule"] == "greeting"
    rows = await stack.rows()
    assert [(r.request_id, r.chosen_model, r.status) for r in rows] == [
        (raw.headers["x-request-id"], "small", 200)
    ]
    assert rows[0].tokens_in and rows[0].tokens_out and not rows[0].usage_estimated
    assert (rows[0].tier, rows[0].rule) == ("rules", "greeting")
    assert rows[0].reason == "rule greeting: route_self → small"


async def test_stream_relays_deltas_and_hides_usage_the_client_did_not_ask_for(
    stack: Stack,
) -> None:
    stream = await stack.client().chat.completions.create(
        model="small", messages=HELLO, stream=True
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: hello there"
    assert all(c.usage is None for c in chunks)
    (row,) = await stack.rows()
    assert row.stream and row.status == 200 and row.tokens_out and not row.usage_estimated
    assert row.ttfb_ms is not None and row.ttfb_ms <= row.latency_ms


@pytest.mark.parametrize("stream", [False, True])
async def test_an_upstream_without_usage_gets_an_estimate_marked_in_the_ledger(
    stack: Stack, stream: bool
) -> None:
    stack.sim("local").set_knobs(no_usage=True)
    answer = await stack.client().chat.completions.with_raw_response.create(
        model="small", messages=HELLO, stream=stream
    )
    await answer.http_response.aread()
    (row,) = await stack.rows()
    assert row.status == 200 and row.usage_estimated
    # About four characters a token, of the prompt ("hello there") and of the answer's
    # text ("echo: hello there"), not of the JSON around it.
    assert (row.tokens_in, row.tokens_out) == (2, 4)


async def test_stream_usage_is_relayed_when_asked(stack: Stack) -> None:
    stream = await stack.client().chat.completions.create(
        model="small", messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    usages = [c.usage for c in chunks if c.usage is not None]
    assert len(usages) == 1 and usages[0].completion_tokens > 0


async def test_client_parameters_pass_through_untouched(stack: Stack) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "lookup",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    await stack.client().chat.completions.create(
        model="small",
        messages=HELLO,
        temperature=0.3,
        max_tokens=50,
        stop=["x"],
        seed=7,
        user="u1",
        tools=tools,
        tool_choice="auto",
        response_format={"type": "text"},
    )
    seen = stack.sim("local").last_request()
    assert seen is not None
    body = seen.body
    assert body["model"] == "small"
    for key, value in {
        "temperature": 0.3,
        "max_tokens": 50,
        "stop": ["x"],
        "seed": 7,
        "user": "u1",
        "tools": tools,
        "tool_choice": "auto",
    }.items():
        assert body[key] == value


async def test_aliases_and_model_list(stack: Stack) -> None:
    completion = await stack.client().chat.completions.create(model="fast", messages=HELLO)
    assert completion.model == "small"
    models = await stack.client().models.list()
    ids = [m.id for m in models.data]
    assert ids == [
        "auto",
        "auto:eco",
        "auto:balanced",
        "auto:premium",
        "small",
        "medium",
        "coder",
        "big",
    ]


async def test_unknown_model_is_404(stack: Stack) -> None:
    with pytest.raises(openai.NotFoundError) as err:
        await stack.client().chat.completions.create(model="nope", messages=HELLO)
    assert err.value.code == "model_not_found"
    (row,) = await stack.rows()
    assert row.status == 404 and row.requested_model == "nope"
