"""The classifier actor in model mode, against a real simulator on loopback.

The network is real, so these run on the real clock; every model delay is a few tenths
of a second at most.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import trio

from llmswitch.actors import classifier as classifier_module
from llmswitch.actors.classifier import ClassifierActor, Classify, classify_or_default
from llmswitch.actors.pool import Clients
from llmswitch.config import parse_config
from llmswitch.routing.classify import Classification
from llmswitch.runtime.mailbox import Mailbox
from llmswitch.sim.backend import SimBackend
from llmswitch.sim.server import RunningSim, serve_sim

JUDGE_UPSTREAM = "tiny-judge"
ANSWER = json.dumps(
    {"complexity": "complex", "task_type": "code", "sensitive": False, "confidence": 0.9}
)
GREETING = "hello there, how are you today?"


def user(text: str, system: str | None = None) -> list[dict[str, Any]]:
    head = [{"role": "system", "content": system}] if system else []
    return [*head, {"role": "user", "content": text}]


@pytest.fixture
async def sim(nursery: trio.Nursery) -> RunningSim:
    backend = SimBackend([JUDGE_UPSTREAM], name="local", seed=1)
    running: RunningSim = await nursery.start(serve_sim, backend)
    return running


@dataclass
class Harness:
    actor: ClassifierActor
    mailbox: Mailbox[Classify]
    sim: SimBackend
    nursery: trio.Nursery

    async def classify(self, text: str, **kwargs: Any) -> Classification:
        return await self.mailbox.call(Classify(user(text, **kwargs)), timeout=5)

    @property
    def summary(self) -> dict[str, Any]:
        return dict(self.actor.summary())


@asynccontextmanager
async def classifier(
    sim: RunningSim,
    *,
    locality: str = "local",
    max_model_calls: int = 8,
    **routing: Any,
) -> AsyncIterator[Harness]:
    config = parse_config({
        "backends": [
            {"name": "box", "base_url": sim.openai_base_url, "locality": locality},
        ],
        "models": [{"id": "judge", "backend": "box", "upstream": JUDGE_UPSTREAM}],
        "routing": {"classifier": "model", "classifier_model": "judge", **routing},
    })  # fmt: skip
    async with Clients(config.backends) as clients, trio.open_nursery() as nursery:
        actor = ClassifierActor(config, clients, max_model_calls=max_model_calls)
        mailbox: Mailbox[Classify] = Mailbox("classifier")
        await nursery.start(actor.run, mailbox.inbox)
        yield Harness(actor, mailbox, sim.sim, nursery)
        nursery.cancel_scope.cancel()


def heuristic(text: str) -> Classification:
    return classify_or_default(user(text))


async def test_the_model_answers_and_a_repeat_is_a_cache_hit(sim: RunningSim) -> None:
    sim.sim.set_knobs(reply=ANSWER)
    async with classifier(sim) as h:
        got = await h.classify(GREETING)
        assert heuristic(GREETING).complexity == "simple"
        assert (got.complexity, got.task_type, got.confidence) == ("complex", "code", 0.9)
        assert got.reason.startswith("model")
        assert got.token_estimate == heuristic(GREETING).token_estimate

        seen = h.sim.last_request()
        assert seen is not None and seen.path == "/v1/chat/completions"
        body = seen.body
        assert body["model"] == JUDGE_UPSTREAM  # the upstream name, not the gateway's id
        assert (body["temperature"], body["max_tokens"], body["stream"]) == (0, 100, False)
        assert body["messages"][0]["role"] == "system"
        assert GREETING in body["messages"][1]["content"]

        # Same words (a different system prompt does not matter): from the cache.
        again = await h.classify(GREETING, system="You are a helpful assistant.")
        assert again.complexity == "complex"
        assert h.sim.stats.total == 1
        summary = h.summary
        assert summary["mode"] == "model" and summary["model"] == "judge"
        assert summary["model_calls"] == 1 and summary["cache_hits"] == 1
        assert summary["answered_by"] == {"model": 1, "cache": 1}
        assert summary["classified"] == {"complex": 2}
        assert summary["fallbacks"] == {}


async def test_a_hanging_model_times_out_to_the_heuristic(sim: RunningSim) -> None:
    sim.sim.set_knobs(hang=True)
    async with classifier(sim, classifier_timeout_s=0.2) as h:
        started = trio.current_time()
        got = await h.classify(GREETING)
        assert trio.current_time() - started < 1.0
        assert got == heuristic(GREETING)
        assert h.summary["fallbacks"] == {"timeout": 1}
        assert h.summary["last_error"] == "timeout: no answer within 0.2s"
        assert h.summary["cache_entries"] == 0  # a failure is not remembered


async def test_an_http_error_falls_back_to_the_heuristic(sim: RunningSim) -> None:
    sim.sim.set_knobs(error_status=500)
    async with classifier(sim) as h:
        assert await h.classify(GREETING) == heuristic(GREETING)
        assert h.summary["fallbacks"] == {"http_error": 1}
        assert h.summary["last_error"] == "http_error: HTTP 500"


async def test_a_garbage_answer_falls_back_to_the_heuristic(sim: RunningSim) -> None:
    sim.sim.set_knobs(reply="This looks like a complex coding task to me!")
    async with classifier(sim) as h:
        assert await h.classify(GREETING) == heuristic(GREETING)
        assert h.summary["fallbacks"] == {"bad_answer": 1}


async def test_an_unreachable_model_falls_back_to_the_heuristic(sim: RunningSim) -> None:
    sim.sim.remove_model(JUDGE_UPSTREAM)  # the box answers 404 model_not_found
    async with classifier(sim) as h:
        assert await h.classify(GREETING) == heuristic(GREETING)
        assert h.summary["fallbacks"] == {"http_error": 1}


async def test_slow_model_calls_do_not_serialise_the_mailbox(sim: RunningSim) -> None:
    sim.sim.set_knobs(reply=ANSWER, ttft_s=0.3)
    async with classifier(sim, max_model_calls=3) as h:
        times: dict[int, float] = {}
        results: dict[int, Classification] = {}
        started = trio.current_time()

        async def one(i: int) -> None:
            results[i] = await h.classify(f"question number {i}: what is a monad?")
            times[i] = trio.current_time() - started

        most_at_once = 0

        async def watch() -> None:
            nonlocal most_at_once
            while True:
                most_at_once = max(most_at_once, h.sim.stats.in_flight)
                await trio.sleep(0.005)

        async with trio.open_nursery() as n:
            n.start_soon(watch)
            async with trio.open_nursery() as calls:
                for i in range(5):
                    calls.start_soon(one, i)
                    await trio.sleep(0.01)  # keep the order of arrival
            n.cancel_scope.cancel()
        # Three calls ran side by side at the model (orders, not timings: the box may be
        # loaded); the two over the bound got the heuristic at once instead of queueing.
        assert most_at_once == 3
        by_model = [i for i, r in results.items() if r.reason.startswith("model")]
        assert sorted(by_model) == [0, 1, 2]
        assert max(times[3], times[4]) < min(times[i] for i in by_model)
        assert h.summary["fallbacks"] == {"busy": 2}
        assert h.summary["in_flight"] == 0


async def test_a_failing_model_is_paused_then_tried_again(
    sim: RunningSim, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(classifier_module, "PAUSE_S", 0.3)
    sim.sim.set_knobs(hang=True)
    async with classifier(sim, classifier_timeout_s=0.2) as h:
        async with trio.open_nursery() as n:
            for i in range(3):
                n.start_soon(h.classify, f"question {i}")
        assert h.summary["fallbacks"] == {"timeout": 3}
        started = trio.current_time()
        assert await h.classify("question 4") == heuristic("question 4")
        assert trio.current_time() - started < 0.1
        assert h.summary["fallbacks"] == {"timeout": 3, "paused": 1}
        assert h.summary["paused_for_s"] is not None
        assert h.sim.stats.total == 3  # the paused request never reached the model
        sim.sim.set_knobs(hang=False, reply=ANSWER)
        await trio.sleep(0.3)
        assert (await h.classify("question 5")).reason.startswith("model")
        assert h.summary["paused_for_s"] is None
        assert h.sim.stats.total == 4


async def test_a_sensitive_prompt_is_not_sent_to_a_cloud_classifier(sim: RunningSim) -> None:
    sim.sim.set_knobs(reply=ANSWER)
    secret = "deploy with key sk-proj-abcdefghijklmnopqrstuvwxyz0123456789 please"
    async with classifier(sim, locality="cloud") as h:
        got = await h.classify(secret)
        assert got.sensitive and got == heuristic(secret)
        assert h.sim.stats.total == 0
        assert h.summary["fallbacks"] == {"sensitive": 1}
        assert (await h.classify(GREETING)).reason.startswith("model")


async def test_a_sensitive_prompt_stays_sensitive_with_a_local_model(sim: RunningSim) -> None:
    sim.sim.set_knobs(reply=ANSWER)  # the model says sensitive: false
    secret = "deploy with key sk-proj-abcdefghijklmnopqrstuvwxyz0123456789 please"
    async with classifier(sim) as h:
        got = await h.classify(secret)
        assert got.reason.startswith("model") and got.sensitive


async def test_a_caller_is_answered_when_the_actor_stops_mid_call(sim: RunningSim) -> None:
    sim.sim.set_knobs(hang=True)
    async with classifier(sim, classifier_timeout_s=5) as h:
        msg = Classify(user(GREETING))
        await h.mailbox.cast(msg)
        with trio.fail_after(2):
            await h.sim.wait_until(lambda s: s.hanging == 1)
        h.nursery.cancel_scope.cancel()
        with trio.fail_after(1):
            assert await msg.reply.wait() == heuristic(GREETING)


async def test_the_cache_is_bounded(sim: RunningSim) -> None:
    sim.sim.set_knobs(reply=ANSWER)
    async with classifier(sim, classifier_cache_size=2) as h:
        for text in ("one", "two", "three", "one"):
            await h.classify(f"question {text}")
        assert h.summary["cache_entries"] == 2
        assert h.sim.stats.total == 4  # "one" was evicted by "three"
        assert h.summary["cache_hits"] == 0


async def test_heuristic_mode_never_calls_a_model(sim: RunningSim) -> None:
    mailbox: Mailbox[Classify] = Mailbox("classifier")
    async with trio.open_nursery() as nursery:
        await nursery.start(ClassifierActor().run, mailbox.inbox)
        got = await mailbox.call(Classify(user(GREETING)))
        assert got == heuristic(GREETING)
        nursery.cancel_scope.cancel()
    async with classifier(sim, classifier="heuristic") as h:
        assert await h.classify(GREETING) == heuristic(GREETING)
        assert h.summary == {"mode": "heuristic", "classified": {"simple": 1}}
    assert sim.sim.stats.total == 0


def test_model_mode_without_a_model_says_why() -> None:
    config = parse_config({"routing": {"classifier": "model"}})
    summary = ClassifierActor(config, Clients(())).summary()
    assert summary["mode"] == "heuristic"
    assert summary["model_problem"] == "routing.classifier_model is not set"
