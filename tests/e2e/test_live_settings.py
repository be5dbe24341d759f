"""Allow/block and budgets changed through the admin API take effect on the next request,
persist, and go back to the file's when cleared."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest
import trio

from tests.e2e.harness import Stack
from tests.e2e.test_budget import HELLO, MAX_TOKENS, WORST, metered_stack


async def ask(stack: Stack, model: str = "big") -> None:
    await stack.client().chat.completions.create(model=model, messages=HELLO, max_tokens=MAX_TOKENS)


async def test_a_block_list_changed_at_run_time_refuses_at_once_and_clears_back(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    stack = await metered_stack(nursery, tmp_path, {})
    await ask(stack)
    async with stack.http() as http:
        put = await http.put("/admin/routing/settings/routing.block", json={"value": ["big"]})
        assert put.status_code == 200
        assert put.json()["settings"]["routing.block"] == ["big"]
        assert put.json()["sources"]["routing.block"] == "stored"
        with trio.fail_after(10):
            with pytest.raises(openai.PermissionDeniedError) as err:
                await ask(stack)
        assert err.value.code == "model_blocked"
        # An allow list without it refuses it too, once the block is cleared.
        await http.put("/admin/routing/settings/routing.allow", json={"value": ["small"]})
        cleared = await http.delete("/admin/routing/settings/routing.block")
        assert cleared.json()["sources"]["routing.block"] == "file"
        with pytest.raises(openai.PermissionDeniedError, match=r"not in routing\.allow"):
            await ask(stack)
        await http.delete("/admin/routing/settings/routing.allow")
        await ask(stack)  # back to the file: nothing allowed or blocked


async def test_bad_settings_are_refused_with_openai_errors_naming_the_choices(
    stack: Stack,
) -> None:
    async with stack.http() as http:
        unknown = await http.put("/admin/routing/settings/routing.block", json={"value": ["bigg"]})
        negative = await http.put("/admin/routing/settings/budget.daily_usd", json={"value": -1})
        nan = await http.put(
            "/admin/routing/settings/budget.daily_usd",
            content=b'{"value": NaN}',
            headers={"content-type": "application/json"},
        )
        no_value = await http.put("/admin/routing/settings/budget.daily_usd", json={"usd": 1})
        no_key = await http.delete("/admin/routing/settings/budget.hourly_usd")
        after = (await http.get("/admin/routing")).json()
    assert unknown.status_code == 400
    assert "no model named 'bigg'; did you mean 'big'?" in unknown.json()["error"]["message"]
    assert "(models: big, coder," in unknown.json()["error"]["message"]
    assert negative.status_code == 400 and "finite number >= 0" in negative.text
    assert nan.status_code == 400 and nan.json()["error"]["code"] == "invalid_json"
    assert no_value.status_code == 400 and no_value.json()["error"]["param"] == "value"
    assert no_key.status_code == 400 and "valid: routing.allow" in no_key.text
    assert set(after["sources"].values()) == {"file"}


async def test_a_budget_lowered_below_todays_spend_refuses_the_next_metered_call(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    stack = await metered_stack(nursery, tmp_path, {"daily_usd": 1.0})
    await ask(stack)  # about WORST spent today
    async with stack.http() as http:
        low = await http.put("/admin/routing/settings/budget.daily_usd", json={"value": WORST / 2})
        assert low.json()["settings"]["budget.daily_usd"] == WORST / 2
        with pytest.raises(openai.PermissionDeniedError) as err:
            await ask(stack)
        assert err.value.code == "budget_exceeded"
        await ask(stack, "small")  # a free local model is not metered
        # The ledger took the new limit too: the budget view says it is spent.
        budget = stack.gw.views.budget
        with trio.fail_after(10):
            while not budget.value.exceeded:
                await budget.wait_newer(budget.version)
        assert stack.gw.views.budget.value.daily_usd == WORST / 2

        # A second gateway on the same store starts with the stored budget.
        again = await metered_stack(nursery, tmp_path, {"daily_usd": 1.0})
        with pytest.raises(openai.PermissionDeniedError, match="budget"):
            await ask(again)

        cleared = await http.delete("/admin/routing/settings/budget.daily_usd")
        assert cleared.json()["settings"]["budget.daily_usd"] == 1.0
        assert cleared.json()["sources"]["budget.daily_usd"] == "file"
        await ask(stack)
