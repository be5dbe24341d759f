"""Pure parts of the simulator: knob layering and validation, tokens, tool arguments."""

from __future__ import annotations

import json

import pytest
import trio

from llmswitch.sim import KnobError, ModelKnobs, SimBackend, UnknownModelError
from llmswitch.sim.openai_wire import ChunkEncoder
from llmswitch.sim.reply import sample_arguments
from llmswitch.sim.tokens import count_prompt_tokens, split_tokens


def test_model_overrides_layer_over_the_default() -> None:
    sim = SimBackend(["a", "b"], knobs=ModelKnobs(ttft_s=0.5), model_knobs={"a": {"reply": "hi"}})

    sim.set_knobs(tokens_per_s=10)  # default change reaches both models
    sim.set_knobs("b", tokens_per_s=99)

    assert sim.knobs_for("a") == ModelKnobs(ttft_s=0.5, tokens_per_s=10, reply="hi")
    assert sim.knobs_for("b") == ModelKnobs(ttft_s=0.5, tokens_per_s=99)
    sim.reset_knobs("b")
    assert sim.knobs_for("b") == ModelKnobs(ttft_s=0.5, tokens_per_s=10)
    sim.reset_knobs()
    assert sim.knobs_for("a") == ModelKnobs(ttft_s=0.5, reply="hi")
    assert sim.knobs_for("b") == ModelKnobs(ttft_s=0.5)


def test_override_context_restores_knobs() -> None:
    sim = SimBackend(["a"])
    with sim.override("a", error_status=500) as knobs:
        assert knobs.error_status == 500
        assert sim.knobs_for("a").error_status == 500
    assert sim.knobs_for("a") == ModelKnobs()


@pytest.mark.parametrize(
    "changes",
    [
        {"ttft_s": -1},
        {"tokens_per_s": float("nan")},
        {"error_rate": 1.5},
        {"error_status": 200},
        {"error_status": True},
        {"cut_after": -1},
        {"hang": 1},
        {"reply": 5},
        {"retry_after_s": "soon"},
        {"no_such_knob": 1},
    ],
)
def test_invalid_knobs_are_rejected_and_leave_state_alone(changes: dict[str, object]) -> None:
    sim = SimBackend(["a"])
    with pytest.raises(KnobError):
        sim.set_knobs("a", **changes)
    with pytest.raises(KnobError):
        sim.set_knobs(None, **changes)
    assert sim.knobs_for("a") == ModelKnobs()


def test_unknown_model_knobs() -> None:
    sim = SimBackend(["a"])
    with pytest.raises(UnknownModelError):
        sim.set_knobs("zzz", hang=True)
    with pytest.raises(UnknownModelError):
        SimBackend(["a"], model_knobs={"zzz": {}})


def test_models_can_come_and_go() -> None:
    sim = SimBackend(["a"])
    sim.add_model("b", reply="from b")
    assert list(sim.models) == ["a", "b"]
    assert sim.knobs_for("b").reply == "from b"
    sim.remove_model("a")
    assert list(sim.models) == ["b"]
    assert not sim.has_model("a")
    assert sim.resolve_model("b:latest") == "b"


async def test_wait_until_wakes_on_notify() -> None:
    sim = SimBackend(["a"])
    woke = trio.Event()

    async def waiter() -> None:
        await sim.wait_until(lambda s: s.total == 2)
        woke.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        sim.stats.total = 1
        sim.notify()
        await trio.testing.wait_all_tasks_blocked()
        assert not woke.is_set()
        sim.stats.total = 2
        sim.notify()
    assert woke.is_set()


@pytest.mark.parametrize("text", ["", "one", "a b  c", "  lead", "trail  ", "x\ny\n", " \n "])
def test_split_tokens_round_trips(text: str) -> None:
    assert "".join(split_tokens(text)) == text


def test_token_estimates() -> None:
    assert split_tokens("echo: hi there") == ["echo:", " hi", " there"]
    messages = [{"role": "user", "content": "a b c"}, {"role": "assistant", "content": None}]
    assert count_prompt_tokens(messages) == 3 + 3 + 3


def test_sample_arguments_follow_the_schema() -> None:
    schema = {
        "type": "object",
        "properties": {
            "q": {"type": "string"},
            "n": {"type": "integer"},
            "f": {"type": ["number", "null"]},
            "mode": {"enum": ["fast", "slow"]},
            "tags": {"type": "array", "items": {"type": "boolean"}},
            "opt": {"type": "object", "properties": {"deep": {"const": 7}}},
        },
    }
    assert sample_arguments(schema) == {
        "q": "sample",
        "n": 1,
        "f": 1.5,
        "mode": "fast",
        "tags": [True],
        "opt": {"deep": 7},
    }
    assert sample_arguments({**schema, "required": ["n"]}) == {"n": 1}
    assert sample_arguments({}) == {}


def test_chunk_encoder_escapes_content() -> None:
    encoder = ChunkEncoder("chatcmpl-1", 123, "m", include_usage=True)
    event = encoder.content('say "hi"\n\u00e9')
    assert event.startswith(b"data: ") and event.endswith(b"\n\n")
    chunk = json.loads(event[len(b"data: ") :])
    assert chunk["choices"][0]["delta"] == {"content": 'say "hi"\n\u00e9'}
    assert chunk["usage"] is None
    assert chunk["id"] == "chatcmpl-1" and chunk["model"] == "m"
