"""Model listing, request errors, HTTP knob control and counters."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from llmswitch.sim import RunningSim, SimBackend, serve_sim

USER: Any = [{"role": "user", "content": "ping"}]


async def test_model_list_and_retrieve(client: openai.AsyncOpenAI) -> None:
    page = await client.models.list()
    ids = [model.id async for model in page]
    one = await client.models.retrieve("big-model")

    assert ids == ["qwen-small", "big-model"]
    assert one.id == "big-model"
    assert one.object == "model"
    assert one.owned_by == "test"
    with pytest.raises(openai.NotFoundError):
        await client.models.retrieve("nope")


async def test_ollama_tags_and_latest_alias(
    http: httpx.AsyncClient, client: openai.AsyncOpenAI
) -> None:
    tags = (await http.get("/api/tags")).json()
    version = (await http.get("/api/version")).json()
    # Ollama lists untagged models as name:latest; the sim accepts both spellings.
    aliased = await client.chat.completions.create(model="qwen-small:latest", messages=USER)

    names = [m["name"] for m in tags["models"]]
    assert names == ["qwen-small:latest", "big-model:latest"]
    assert {"model", "modified_at", "size", "digest", "details"} <= set(tags["models"][0])
    assert isinstance(version["version"], str)
    assert aliased.model == "qwen-small:latest"


async def test_unknown_model_is_404_model_not_found(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        await client.chat.completions.create(model="gpt-9", messages=USER)

    assert caught.value.code == "model_not_found"
    assert caught.value.type == "invalid_request_error"
    assert "gpt-9" in caught.value.message


@pytest.mark.parametrize(
    ("content", "param"),
    [
        (b"{not json", None),
        (b"[1, 2]", None),
        (b'{"messages": [{"role": "user", "content": "x"}]}', "model"),
        (b'{"model": "qwen-small"}', "messages"),
        (b'{"model": "qwen-small", "messages": [], "stream": true}', "messages"),
        (b'{"model": "qwen-small", "messages": [{"role": "user"}], "max_tokens": 0}', "max_tokens"),
    ],
)
async def test_malformed_requests_are_400(
    sim: SimBackend, http: httpx.AsyncClient, content: bytes, param: str | None
) -> None:
    response = await http.post(
        "/v1/chat/completions", content=content, headers={"content-type": "application/json"}
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert sim.stats.by_status == {400: 1}


async def test_unknown_path_and_wrong_method(http: httpx.AsyncClient) -> None:
    missing = await http.post("/v1/embeddings", json={})
    wrong = await http.get("/v1/chat/completions")

    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "Invalid URL (POST /v1/embeddings)"
    assert wrong.status_code == 405


async def test_knobs_over_http_break_and_heal(
    sim: SimBackend, http: httpx.AsyncClient, client: openai.AsyncOpenAI
) -> None:
    broke = await http.post("/_sim/knobs", json={"model": "qwen-small", "error_status": 503})
    assert broke.status_code == 200
    assert broke.json()["models"]["qwen-small"]["error_status"] == 503
    assert sim.knobs_for("qwen-small").error_status == 503

    with pytest.raises(openai.InternalServerError) as caught:
        await client.chat.completions.create(model="qwen-small", messages=USER)
    assert caught.value.status_code == 503
    await client.chat.completions.create(model="big-model", messages=USER)

    healed = await http.post("/_sim/knobs", json={"model": "qwen-small", "reset": True})
    assert healed.status_code == 200
    ok = await client.chat.completions.create(model="qwen-small", messages=USER)
    assert ok.choices[0].message.content == "echo: ping"

    # Backend-wide default (model null) reaches every model.
    await http.post("/_sim/knobs", json={"model": None, "reply": "canned"})
    snapshot = (await http.get("/_sim/knobs")).json()
    assert snapshot["default"]["reply"] == "canned"
    assert snapshot["models"]["big-model"]["reply"] == "canned"
    out = await client.chat.completions.create(model="big-model", messages=USER)
    assert out.choices[0].message.content == "canned"


async def test_bad_knob_changes_are_rejected(sim: SimBackend, http: httpx.AsyncClient) -> None:
    unknown_knob = await http.post("/_sim/knobs", json={"model": None, "latency": 1})
    bad_value = await http.post("/_sim/knobs", json={"model": None, "error_rate": 2})
    bad_type = await http.post("/_sim/knobs", json={"model": None, "hang": "yes"})
    unknown_model = await http.post("/_sim/knobs", json={"model": "nope", "hang": True})

    assert unknown_knob.status_code == 400
    assert "latency" in unknown_knob.json()["error"]["message"]
    assert bad_value.status_code == 400
    assert bad_type.status_code == 400
    assert unknown_model.status_code == 404
    assert sim.default_knobs == sim.knobs_for("qwen-small")
    assert sim.default_knobs.error_rate == 0.0 and not sim.default_knobs.hang


async def test_default_faults_also_hit_model_listing(
    sim: SimBackend, http: httpx.AsyncClient
) -> None:
    sim.set_knobs("qwen-small", error_status=500)
    assert (await http.get("/v1/models")).status_code == 200  # one broken model

    sim.set_knobs(error_status=503)  # the whole backend is broken
    assert (await http.get("/v1/models")).status_code == 503
    assert (await http.get("/api/tags")).status_code == 503


async def test_stats_count_requests(
    sim: SimBackend, http: httpx.AsyncClient, client: openai.AsyncOpenAI
) -> None:
    assert sim.stats.total == 0

    await client.chat.completions.create(model="qwen-small", messages=USER)
    stream = await client.chat.completions.create(model="big-model", messages=USER, stream=True)
    async for _chunk in stream:
        pass
    await client.models.list()
    with pytest.raises(openai.NotFoundError):
        await client.chat.completions.create(model="gpt-9", messages=USER)
    await http.post("/_sim/knobs", json={"model": None})  # control calls are not counted

    stats = sim.stats
    assert stats.total == 4
    assert stats.by_path == {"/v1/chat/completions": 3, "/v1/models": 1}
    assert stats.by_model == {"qwen-small": 1, "big-model": 1, "gpt-9": 1}
    assert stats.by_status == {200: 3, 404: 1}
    assert stats.in_flight == 0 and stats.open_streams == 0

    served = (await http.get("/_sim/stats")).json()
    assert served == stats.to_dict()
    assert served["by_status"] == {"200": 3, "404": 1}

    recorded = sim.last_request()
    assert recorded is not None
    assert recorded.model == "gpt-9"
    assert recorded.headers["authorization"] == "Bearer x"
    assert recorded.body["messages"] == USER

    await http.post("/_sim/reset")
    assert sim.stats.total == 0 and not sim.requests


async def test_a_backend_that_is_never_called_counts_zero(
    nursery: Any, client: openai.AsyncOpenAI
) -> None:
    other = SimBackend(["cloud-model"], name="cloud")
    await nursery.start(serve_sim, other)

    await client.chat.completions.create(model="qwen-small", messages=USER)

    assert other.stats.total == 0
    assert other.last_request() is None


async def test_api_key_is_enforced_when_set(nursery: Any) -> None:
    locked = SimBackend(["m"], api_key="sk-right")
    running: RunningSim = await nursery.start(serve_sim, locked)

    async with openai.AsyncOpenAI(
        base_url=running.openai_base_url, api_key="sk-wrong", max_retries=0
    ) as wrong:
        with pytest.raises(openai.AuthenticationError):
            await wrong.chat.completions.create(model="m", messages=USER)
    async with openai.AsyncOpenAI(
        base_url=running.openai_base_url, api_key="sk-right", max_retries=0
    ) as right:
        out = await right.chat.completions.create(model="m", messages=USER)
    assert out.choices[0].message.content == "echo: ping"
