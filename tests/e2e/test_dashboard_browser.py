"""The dashboard in a real headless Chromium (Debian's package, driven by playwright).

The gateway and simulators run in the test's trio loop; the browser is driven from a
worker thread (playwright's sync API), which reaches back into trio only through
``trio.from_thread``. Screenshots go to ``test-artifacts/dashboard/`` (gitignored).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from playwright.sync_api import Browser, ConsoleMessage, Error, Page, expect, sync_playwright

from llmswitch.actors.health import ProbeNow
from tests.e2e.harness import Stack
from tests.e2e.test_dashboard import ADMIN, token_stack
from tests.e2e.test_reload import edit, reloadable

CHROMIUM = os.environ.get("LLMSWITCH_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"
TIMEOUT_MS = 15_000
VIEWS = ("overview", "backends", "actors", "requests", "charts", "settings", "playground")
CODE_PROMPT = "Write a Python function that parses a CSV file and returns the rows as dicts."

expect.set_options(timeout=TIMEOUT_MS)
pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None,
    reason=f"no Chromium at {CHROMIUM}: apt-get install chromium (.ci/run installs it)",
)


@contextmanager
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


def watch_console(page: Page) -> list[str]:
    """Every console error and uncaught page error, as text."""
    errors: list[str] = []

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error":
            errors.append(f"console: {msg.text}")

    def on_page_error(exc: Error) -> None:
        errors.append(f"page: {exc}")

    page.on("console", on_console)
    page.on("pageerror", on_page_error)
    return errors


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def in_trio(fn: Callable[..., Any], *args: Any) -> Any:
    """Run a trio-side function from the browser thread."""
    return trio.from_thread.run(fn, *args)


def open_view(page: Page, view: str) -> None:
    page.click(f'nav a[data-view="{view}"]')
    expect(page.locator(f"#view-{view}")).to_be_visible()
    expect(page).to_have_url(f"{page.url.split('#')[0]}#{view}")


def click_through(
    page: Page, stack: Stack, config_file: Path, task: str, before: str, after: str
) -> None:
    page.goto(stack.url + "/ui")
    expect(page.locator("#live")).to_have_text("live")
    expect(page.locator("#savings")).to_contain_text("Last 7 days")
    expect(page.locator("#budgets")).to_contain_text("Today")
    expect(page.locator("#traffic svg rect").first).to_be_attached()
    shot(page, "overview-1280")

    open_view(page, "backends")
    backends = page.locator("#view-backends")
    cloud = backends.locator("tr", has_text="cloud").first
    expect(cloud).to_contain_text("up")
    shot(page, "backends-1280")
    # A backend goes down and comes back, and the page follows without a reload.
    sim = stack.sim("cloud")
    trio.from_thread.run_sync(_set_key, sim, "a-key-the-gateway-does-not-send")
    in_trio(stack.gw.health.cast, ProbeNow("cloud"))
    expect(cloud).to_contain_text("down")
    expect(cloud).to_contain_text("auth")
    shot(page, "backends-cloud-down")
    trio.from_thread.run_sync(_set_key, sim, None)
    in_trio(stack.gw.health.cast, ProbeNow("cloud"))
    expect(cloud.locator(".badge").first).to_have_text("up")

    open_view(page, "actors")
    tree = page.locator("#view-actors .tree")
    for actor in ("ledger", "router", "pool", "classifier"):
        expect(tree).to_contain_text(actor)
    shot(page, "actors-1280")

    open_view(page, "requests")
    log = page.locator("#request-log")
    expect(log).to_contain_text("→ small")
    # A new request appears live: the event stream says the ledger moved.
    with httpx.Client(base_url=stack.url, timeout=30) as http:
        answer = http.post("/v1/chat/completions", json={"model": "medium", "messages": HI})
        assert answer.status_code == 200
    expect(log).to_contain_text("→ medium")
    page.fill('#request-filters input[name="model"]', "medium")
    page.click('#request-filters button[type="submit"]')
    expect(page.locator("#view-requests .msg")).to_have_text("1 request(s)")
    expect(log).not_to_contain_text("→ small")
    shot(page, "requests-1280")

    open_view(page, "charts")
    expect(page.locator("#view-charts figcaption", has_text="Cost per hour")).to_be_visible()
    expect(page.locator("#view-charts")).to_contain_text("Per client")
    page.select_option("#window", "7d")
    expect(page.locator("#view-charts figcaption", has_text="Cost per day")).to_be_visible()
    shot(page, "charts-1280")

    open_view(page, "playground")
    page.fill("#prompt", CODE_PROMPT)
    page.click('#playground-form button[type="submit"]')
    expect(page.locator("#decided-model")).to_contain_text(f"{before} on ")

    open_view(page, "settings")
    page.select_option(f"#override-{task}", after)
    page.click(f"#apply-{task}")
    expect(page.locator("#settings-msg")).to_have_text(f"override {task}: done")
    expect(page.locator(f"#override-{task}")).to_have_value(after)
    shot(page, "settings-1280")

    open_view(page, "playground")
    page.click('#playground-form button[type="submit"]')
    expect(page.locator("#decided-model")).to_contain_text(f"{after} on ")
    shot(page, "playground-1280")

    # A budget set in the file and reloaded from the page shows in the overview's bars.
    edit(config_file, budget={"daily_usd": 5.0})
    open_view(page, "settings")
    page.click("#reload-config")
    expect(page.locator("#settings-msg")).to_contain_text("config reloaded")
    open_view(page, "overview")
    expect(page.locator("#budgets")).to_contain_text("of $5.00")
    shot(page, "overview-budget-reloaded")
    steer_block_and_budget(page, stack, "small" if after != "small" else "medium")


def steer_block_and_budget(page: Page, stack: Stack, blocked: str) -> None:
    """Block a model and lower the daily budget from the page, by keyboard: the next
    request to that model is refused and the ledger's budget moves; then back to the file."""
    open_view(page, "settings")
    msg = page.locator("#settings-msg")
    page.focus(f"#block-{blocked}")
    page.keyboard.press("Space")
    page.focus("#save-block")
    page.keyboard.press("Enter")
    expect(msg).to_have_text("routing.block: done")
    expect(page.locator("#from-routing-block")).to_have_text("stored")
    expect(page.locator(f"#block-{blocked}")).to_be_checked()
    with httpx.Client(base_url=stack.url, timeout=30) as http:
        refused = http.post("/v1/chat/completions", json={"model": blocked, "messages": HI})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "model_blocked"

    page.fill("#budget-daily", "0.5")
    page.keyboard.press("Enter")  # submits the budget's form
    expect(msg).to_have_text("budget.daily_usd: done")
    expect(page.locator("#from-budget-daily_usd")).to_have_text("stored")
    shot(page, "settings-block-and-budget")
    open_view(page, "overview")
    expect(page.locator("#budgets")).to_contain_text("of $0.50")

    open_view(page, "settings")
    page.click("#clear-budget-daily")
    expect(msg).to_have_text("budget.daily_usd back to the file: done")
    page.click("#clear-block")
    expect(msg).to_have_text("routing.block back to the file: done")
    expect(page.locator("#from-routing-block")).to_have_text("file")
    expect(page.locator("#budget-daily")).to_have_value("5")
    with httpx.Client(base_url=stack.url, timeout=30) as http:
        again = http.post("/v1/chat/completions", json={"model": blocked, "messages": HI})
    assert again.status_code == 200
    open_view(page, "overview")
    expect(page.locator("#budgets")).to_contain_text("of $5.00")


HI = [{"role": "user", "content": "hi"}]


def _set_key(sim: Any, key: str | None) -> None:
    sim.api_key = key


def by_keyboard(page: Page, stack: Stack) -> None:
    """Tab to the navigation, open a view with Enter; its heading takes the focus."""
    page.goto(stack.url + "/ui")
    expect(page.locator("#live")).to_have_text("live")
    page.keyboard.press("Tab")  # the skip link
    page.keyboard.press("Tab")  # Overview
    page.keyboard.press("Tab")  # Backends & models
    expect(page.locator(":focus")).to_have_attribute("data-view", "backends")
    page.keyboard.press("Enter")
    expect(page.locator("#view-backends")).to_be_visible()
    expect(page.locator("#h-backends")).to_be_focused()


def at_phone_width(page: Page, stack: Stack) -> None:
    """At 390 px every view fits the width (wide tables scroll inside their box)."""
    page.goto(stack.url + "/ui")
    expect(page.locator("#live")).to_have_text("live")
    for view in VIEWS:
        open_view(page, view)
        page.wait_for_timeout(200)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, (view, width)
        shot(page, f"{view}-390")


async def test_an_operator_clicks_through_every_view_and_steers_routing(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    stack, config_file = await reloadable(nursery, tmp_path)
    client = stack.client()
    await client.chat.completions.create(model="small", messages=HI)  # type: ignore[arg-type]
    async with stack.http() as http:
        decision = (
            await http.post(
                "/v1/route",
                json={"model": "auto", "messages": [{"role": "user", "content": CODE_PROMPT}]},
            )
        ).json()
    task, before = decision["classification"]["task_type"], decision["model"]
    after = next(m for m in ("coder", "medium", "small") if m != before)

    def drive() -> list[str]:
        with browser() as chromium:
            errors: list[str] = []
            for viewport, run in (
                (
                    {"width": 1280, "height": 900},
                    lambda p: click_through(p, stack, config_file, task, before, after),
                ),
                ({"width": 1280, "height": 900}, lambda p: by_keyboard(p, stack)),
                ({"width": 390, "height": 844}, lambda p: at_phone_width(p, stack)),
            ):
                page = chromium.new_page(viewport=viewport)
                page.set_default_timeout(TIMEOUT_MS)
                errors += watch_console(page)
                try:
                    run(page)
                except Exception:
                    shot(page, "failure")
                    raise
                finally:
                    page.close()
            return errors

    errors = await trio.to_thread.run_sync(drive)
    assert errors == []
    # The override set in the browser routes real traffic too.
    await client.chat.completions.create(
        model="auto",
        messages=[{"role": "user", "content": CODE_PROMPT}],  # type: ignore[list-item]
    )
    assert (await stack.rows())[-1].chosen_model == after


async def test_with_a_token_the_browser_logs_in_once_and_stays_in(
    nursery: trio.Nursery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = await token_stack(nursery, tmp_path, monkeypatch)

    def drive() -> list[str]:
        with browser() as chromium:
            page = chromium.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            errors = watch_console(page)
            page.goto(stack.url + "/ui")
            expect(page.locator("#token")).to_be_focused()
            page.fill("#token", "not-the-token")
            page.keyboard.press("Enter")
            expect(page.locator("#login-error")).to_contain_text("not the admin token")
            page.fill("#token", ADMIN)
            page.keyboard.press("Enter")
            expect(page.locator("#live")).to_have_text("live")
            open_view(page, "settings")
            page.select_option("#profile", "eco")
            page.click("#view-settings form.row button[type=submit] >> nth=0")
            expect(page.locator("#settings-msg")).to_have_text("profile eco: done")
            shot(page, "settings-after-login")
            page.reload()
            expect(page.locator("#live")).to_have_text("live")
            page.click("#logout")
            expect(page.locator("#token")).to_be_visible()
            page.close()
            # The refusals of the login page itself are expected; nothing else is.
            return [e for e in errors if "status of 401" not in e]

    errors = await trio.to_thread.run_sync(drive)
    assert errors == []
    async with stack.http() as http:
        settings = await http.get("/admin/routing", headers={"Authorization": f"Bearer {ADMIN}"})
    assert settings.json()["profile"] == "eco"
