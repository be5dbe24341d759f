"""Guards on every path to a model: explicit names, aliases, fallbacks, rules, overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
import trio

from tests.e2e.harness import Stack, model, start_stack

HELLO = [{"role": "user", "content": "hello there"}]
SECRET = [{"role": "user", "content": "my password is hunter2, confidential"}]
KEY = "guarded-key"


def models(**big: Any) -> list[dict[str, Any]]:
    return [
        model("small", "local", 20, fallbacks=["big"]),
        model("coder", "lan", 60),
        model("big", "cloud", 90, aliases=["smart"], **big),
    ]


def priced() -> dict[str, float]:
    return {"cost_input_per_mtok": 1.0, "cost_output_per_mtok": 2.0}


async def refused(
    stack: Stack, name: str, messages: Any = HELLO, client: openai.AsyncOpenAI | None = None
) -> openai.APIStatusError:
    with pytest.raises(openai.PermissionDeniedError) as err:
        await (client or stack.client()).chat.completions.create(model=name, messages=messages)
    assert err.value.status_code == 403
    return err.value


async def keyed(
    nursery: trio.Nursery,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    rights: dict[str, Any],
    **config: Any,
) -> tuple[Stack, openai.AsyncOpenAI]:
    """The stack with one client key holding ``rights``, and an SDK client using it."""
    monkeypatch.setenv("GUARDED_KEY", KEY)
    clients = [{"name": "kid", "key_env": "GUARDED_KEY", **rights}]
    stack = await start_stack(
        nursery, tmp_path, models=models(**priced()), clients=clients, **config
    )
    return stack, openai.AsyncOpenAI(base_url=stack.url + "/v1", api_key=KEY, max_retries=0)


def cloud_calls(stack: Stack) -> int:
    return stack.sim("cloud").stats.by_path.get("/v1/chat/completions", 0)


async def test_an_explicit_cloud_model_needs_the_metered_opt_in(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    stack = await start_stack(nursery, tmp_path, models=models(**priced()))
    for name in ("big", "smart"):
        err = await refused(stack, name)
        assert err.code == "metered_cloud_not_allowed"
        assert "routing.metered_cloud" in err.message
    assert cloud_calls(stack) == 0
    rows = await stack.rows()
    assert [r.status for r in rows] == [403, 403]


async def test_block_sensitive_and_unpriced_refuse_explicit_requests_with_their_code(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    routing = {"metered_cloud": ["*"], "block": ["coder"]}
    stack = await start_stack(nursery, tmp_path, models=models(), routing=routing)
    assert (await refused(stack, "coder")).code == "model_blocked"
    # "big" has no price: metered at an unknown cost, so it is out until priced.
    err = await refused(stack, "big")
    assert (err.code, "allow_unpriced" in err.message) == ("metered_cloud_not_allowed", True)
    assert cloud_calls(stack) == 0


async def test_sensitive_content_stays_local_even_when_named_or_routed_by_a_rule(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    rules = [{"name": "to-cloud", "priority": 1, "action": "route", "target": "big"}]
    stack = await start_stack(
        nursery,
        tmp_path,
        models=models(**priced()),
        routing={"metered_cloud": ["*"], "fallback_model": "coder"},
        rules=rules,
    )
    assert (await refused(stack, "big", SECRET)).code == "sensitive_content"
    # The rule's target is refused; the request is served by the local fallback instead.
    answer = await stack.client().chat.completions.with_raw_response.create(
        model="auto", messages=SECRET
    )
    assert answer.headers["x-router-model"] == "coder"
    assert cloud_calls(stack) == 0
    # Not sensitive: the rule sends it to the cloud model, which is allowed now.
    answer = await stack.client().chat.completions.with_raw_response.create(
        model="auto", messages=HELLO
    )
    assert answer.headers["x-router-model"] == "big"


async def test_a_refused_model_is_not_swapped_for_its_fallback_but_a_fallback_is_guarded(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    stack = await start_stack(nursery, tmp_path, models=models(**priced()))
    stack.sim("local").set_knobs("small", error_status=500)
    # small fails upstream; its fallback big is metered and not opted in: nothing serves.
    with pytest.raises(openai.APIStatusError) as err:
        await stack.client().chat.completions.create(model="small", messages=HELLO)
    assert err.value.status_code == 503
    assert "big: metered cloud not enabled" in err.value.message
    assert cloud_calls(stack) == 0


async def test_a_key_allow_list_and_profiles_bind_that_key(
    nursery: trio.Nursery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rights = {"models": ["sm*", "coder"], "profiles": ["eco"]}
    routing = {"metered_cloud": ["*"]}
    stack, kid = await keyed(nursery, tmp_path, monkeypatch, rights, routing=routing)
    assert (await refused(stack, "smart", client=kid)).code == "key_not_allowed"
    assert (await refused(stack, "auto:premium", client=kid)).code == "key_not_allowed"
    answer = await kid.chat.completions.with_raw_response.create(model="auto:eco", messages=HELLO)
    assert answer.headers["x-router-model"] in ("small", "coder")
    assert cloud_calls(stack) == 0


async def test_a_forced_profile_and_a_keys_own_metered_list(
    nursery: trio.Nursery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rights = {"force_profile": "premium", "metered_cloud": ["*"]}
    _, pro = await keyed(nursery, tmp_path, monkeypatch, rights)
    # premium orders by quality, and this key may use metered cloud though the default is off.
    ask = [{"role": "user", "content": "Explain how TCP congestion control works."}]
    answer = await pro.chat.completions.with_raw_response.create(model="auto:eco", messages=ask)
    assert (answer.headers["x-router-profile"], answer.headers["x-router-model"]) == (
        "premium",
        "big",
    )


async def test_the_anthropic_door_answers_exhaustion_with_the_status_and_retry_after(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    stack = await start_stack(nursery, tmp_path, models=[model("small", "local", 20)])
    stack.sim("local").set_knobs(error_status=500)
    claude = anthropic.AsyncAnthropic(base_url=stack.url, api_key="x", max_retries=0)
    with pytest.raises(anthropic.APIStatusError) as err:
        await claude.messages.create(model="small", max_tokens=20, messages=HELLO)  # type: ignore[arg-type]
    assert err.value.status_code == 503
    assert err.value.response.headers["retry-after"] == "120"
    assert "small: HTTP 500" in err.value.message
