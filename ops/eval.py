"""Score the classifiers against a labelled set, or time them.

Usage: .venv/bin/python ops/eval.py [--split train|dev|test] [--variant V] [--misses] [--bench]
                                    [set.jsonl]

With --split, reads tests/data/corpus/<split>.jsonl (``make eval`` reports the frozen test
split); otherwise the given file, by default the hand-written dev set tests/data/devset.jsonl.
--variant picks heuristic, learned, ensemble or all (the default); each prints accuracy, task
accuracy, reasoning recall, gross under-routing, the confusion matrix and what the routed
traffic would cost against sending everything to the premium model, at the starter config's
model prices (its example cloud model included). --misses lists every entry whose complexity
or task type came out wrong. --bench times the production classifier and the whole decision
on a ~50-token prompt and on ~4,000-token prompts (16,000 characters) built from the set's
own text, and the whole decision with envelope reading on a real captured OpenClaw turn (its
system prompt and tools), and prints p50/p99, and the memory the learned classifier adds;
timings are wall-clock on this machine, so run it on an idle box when the numbers matter.

Every report ends with the production classifier's accuracy bare and with each prompt sent
inside a real captured turn of each agent harness (tests/data/harness: OpenClaw, Claude Code,
Codex, opencode), read as the router reads it, side by side; and the prompts flagged
sensitive that are not, with how many the envelope added (the goal is none).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from llmswitch.cli.starter import STARTER
from llmswitch.config import ModelConfig, parse_config
from llmswitch.providers.openai import estimate_tokens, prompt_chars
from llmswitch.routing.brain import RouteRequest, decide_now
from llmswitch.routing.classify import COMPLEXITIES, QUALITY_FLOOR, classify
from llmswitch.routing.classify_eval import (
    ANSWER_TOKENS,
    Classifier,
    Price,
    Report,
    evaluate,
    heuristic,
    load_devset,
)
from llmswitch.routing.classify_learned import (
    VARIANTS,
    Variant,
    classify_request,
    classify_with,
    shipped_weights,
)
from llmswitch.routing.envelope import read_envelope
from llmswitch.routing.live import merged
from llmswitch.routing.rules import features_of
from llmswitch.routing.select import Availability, Catalog, Decision

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests/routing reads the captured harness requests
from tests.routing.harness_requests import chat_request  # noqa: E402

DEFAULT_DEVSET = ROOT / "tests" / "data" / "devset.jsonl"
CORPUS = ROOT / "tests" / "data" / "corpus"
# Where the starter config's commented-out example LAN box and cloud model begin.
EXAMPLES_MARKER = "# A LAN box running vLLM"
LONG_CHARS = 16_000
WARMUP = 200
RUNS = 3000


def starter_models() -> list[ModelConfig]:
    """The starter config's models, its commented-out example cloud model included."""
    head, tail = STARTER.split(EXAMPLES_MARKER)
    tail = tail.partition("\n")[2]
    tail = re.sub(r"^# (?=\[\[|[a-z_]+ = )", "", tail, flags=re.M)
    return list(parse_config(tomllib.loads(head + tail)).models)


def price(m: ModelConfig) -> Price:
    return Price(m.cost_input_per_mtok, m.cost_output_per_mtok)


def starter_prices() -> tuple[dict[str, Price], ModelConfig]:
    """Per tier, the price of the cheapest starter model good enough for it (the best model
    when none is); and the premium model (the best), which the baseline sends everything to."""
    models = starter_models()
    best = max(models, key=lambda m: (m.quality, m.cost_input_per_mtok))
    tiers: dict[str, Price] = {}
    for tier in COMPLEXITIES:
        able = [m for m in models if m.quality >= QUALITY_FLOOR[tier]] or [best]
        cheapest = min(able, key=lambda m: m.cost_input_per_mtok + m.cost_output_per_mtok)
        tiers[tier] = price(cheapest)
    return tiers, best


def print_report(report: Report, misses: bool) -> None:
    print(f"entries: {len(report.outcomes)}")
    print(f"complexity accuracy: {report.accuracy:.3f}")
    print(f"task-type accuracy:  {report.task_accuracy:.3f}")
    print(f"reasoning recall:    {report.reasoning_recall:.3f}")
    print(f"gross under-routing: {report.gross_under_routing:.3f} (complex/reasoning → simple)")
    print(f"sensitive mislabels: {len(report.sensitive_misses)}")
    tiers, premium = starter_prices()
    routed, baseline = report.cost(tiers), report.baseline_cost(price(premium))
    print(
        f"cost: ${routed:.4f} routed vs ${baseline:.4f} all to {premium.id} "
        f"({routed / baseline:.1%} of the all-premium baseline; answers assumed "
        f"{', '.join(f'{k} {v}' for k, v in ANSWER_TOKENS.items())} tokens)"
    )
    print()
    print(report.confusion_table())
    if not misses:
        return
    print()
    for o in report.outcomes:
        if o.correct and o.entry["task_type"] == o.result.task_type:
            continue
        print(
            f"{o.entry['id']:<10} want {o.entry['expected']}/{o.entry['task_type']:<12} "
            f"got {o.result.complexity}/{o.result.task_type} "
            f"({o.result.confidence:.2f}) {o.result.reason}"
        )
    for o in report.sensitive_misses:
        want = bool(o.entry.get("sensitive"))
        print(f"{o.entry['id']:<10} sensitive want {want} got {o.result.sensitive_kinds}")


#: The ask in every captured harness turn below; each test prompt takes its place.
CAPTURED_ASK = "Explain in two sentences why the sky is blue."
#: One real turn per harness (tests/data/harness), its tools and system prompt included.
ENVELOPES = {
    "openclaw": "openclaw/ask_00",
    "claude-code": "claude-code/ask_00",
    "codex": "codex/ask_00",
    "opencode": "opencode/ask_01",
}


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))


def _swap(content: Any, ask: str) -> Any:
    if isinstance(content, str):
        return content.replace(CAPTURED_ASK, ask)
    return [
        {**p, "text": p["text"].replace(CAPTURED_ASK, ask)} if isinstance(p.get("text"), str) else p
        for p in content
    ]


def wrap(
    capture: tuple[dict[str, str], dict[str, Any]], messages: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """The captured request with the entry's turns in place of its ask: each user message
    wrapped as the harness wraps the user's words, the rest as they are."""
    _, body = capture
    sent = body["messages"]
    at = max(
        i for i, m in enumerate(sent) if m["role"] == "user" and CAPTURED_ASK in _text(m["content"])
    )
    turns = [
        {**sent[at], "content": _swap(sent[at]["content"], m["content"])}
        if m.get("role") == "user" and isinstance(m.get("content"), str)
        else m
        for m in messages
    ]
    return {**body, "messages": [*sent[:at], *turns, *sent[at + 1 :]]}


def in_envelope(harness: str, read: bool = True) -> Classifier:
    """The production classifier on prompts sent inside ``harness``'s real request, read
    as the router reads it (``read=False``: the whole request, as before envelopes were)."""
    capture = chat_request(ENVELOPES[harness])
    headers, _ = capture

    def classify_wrapped(messages: Sequence[Mapping[str, Any]], has_tools: bool) -> Any:
        body = wrap(capture, messages)
        seen = read_envelope(body, headers).body["messages"] if read else body["messages"]
        return classify_request(seen, has_tools=has_tools or bool(body.get("tools")))

    return classify_wrapped


def false_sensitive(report: Report) -> set[str]:
    return {
        o.entry["id"]
        for o in report.outcomes
        if o.result.sensitive and not o.entry.get("sensitive")
    }


def print_envelopes(entries: Sequence[Mapping[str, Any]]) -> None:
    """Accuracy bare and inside each harness's real request, side by side, and the prompts
    flagged sensitive that are not (the envelope must add none)."""
    bare = evaluate(entries, lambda m, t: classify_request(m, has_tools=t))
    rows = [("bare", bare)]
    rows += [(name, evaluate(entries, in_envelope(name))) for name in ENVELOPES]
    rows.append(
        (
            "openclaw, read whole (no envelope reading)",
            evaluate(entries, in_envelope("openclaw", read=False)),
        )
    )
    bare_fp = false_sensitive(bare)
    print("\n== enveloped (production classifier; each prompt in a real captured harness turn)")
    print(
        "| reading | accuracy | vs bare | task accuracy | false sensitive | added by the envelope |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name, report in rows:
        fp = false_sensitive(report)
        print(
            f"| {name} | {report.accuracy:.3f} | {report.accuracy - bare.accuracy:+.3f} "
            f"| {report.task_accuracy:.3f} | {len(fp)} | {len(fp - bare_fp)} |"
        )


def user_texts(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    return [
        m["content"]
        for e in entries
        for m in e["messages"]
        if m.get("role") == "user" and isinstance(m.get("content"), str)
    ]


def to_length(text: str, chars: int) -> str:
    return (text * (chars // len(text) + 1))[:chars]


def bench_prompts(entries: Sequence[Mapping[str, Any]]) -> dict[str, list[dict[str, str]]]:
    """A short ask, and long prompts of three shapes: pasted log, prose, many languages."""
    texts = user_texts(entries)
    short = next(t for t in texts if 180 <= len(t) <= 260)
    log = max(texts, key=len)
    prose = "\n\n".join(t for t in texts if len(t) < 1000 and t.isascii())
    mixed = "\n\n".join(t for t in texts if len(t) < 1000 and not t.isascii())
    return {
        f"~50 tokens ({len(short)} chars)": [{"role": "user", "content": short}],
        "~4k tokens: pasted log + ask": [{"role": "user", "content": to_length(log, LONG_CHARS)}],
        "~4k tokens: English prose": [{"role": "user", "content": to_length(prose, LONG_CHARS)}],
        "~4k tokens: non-English text": [{"role": "user", "content": to_length(mixed, LONG_CHARS)}],
    }


def percentiles(samples: list[int]) -> tuple[float, float]:
    """p50 and p99 in microseconds."""
    samples.sort()
    return samples[len(samples) // 2] / 1000, samples[int(len(samples) * 0.99)] / 1000


BENCH_CONFIG = parse_config(
    {
        "routing": {"metered_cloud": ["*"]},
        "backends": [
            {"name": "laptop", "base_url": "http://127.0.0.1:1/v1", "locality": "local"},
            {"name": "box", "base_url": "http://127.0.0.1:2/v1", "locality": "lan"},
            {"name": "cloud", "base_url": "http://127.0.0.1:3/v1", "locality": "cloud"},
        ],
        "models": [
            {"id": "small", "backend": "laptop", "quality": 20, "context_window": 32768},
            {"id": "coder", "backend": "box", "quality": 60, "context_window": 32768},
            {
                "id": "mini",
                "backend": "cloud",
                "quality": 75,
                "cost_input_per_mtok": 0.15,
                "cost_output_per_mtok": 0.6,
                "context_window": 128000,
            },
            {
                "id": "large",
                "backend": "cloud",
                "quality": 90,
                "cost_input_per_mtok": 2.5,
                "cost_output_per_mtok": 10.0,
                "context_window": 128000,
            },
        ],
    }
)


# The gateway builds its catalog and routing settings once per configuration (gateway.py,
# the router actor), not per request: so does the bench.
BENCH_CATALOG = Catalog.build(BENCH_CONFIG)
BENCH_SETTINGS = merged(BENCH_CONFIG)


def decision(messages: list[dict[str, str]]) -> Decision:
    """The whole in-process decision: rules, classification, selection, fallback."""
    body = {"model": "auto", "messages": messages}
    req = RouteRequest("auto", features_of(body, {}, len(messages[0]["content"]) // 4))
    return decide_now(
        BENCH_CATALOG, BENCH_SETTINGS, req, Availability(), lambda: classify_request(messages)
    )


def harness_decision(headers: Mapping[str, str], body: dict[str, Any]) -> Decision:
    """What the gateway does with a harness's request before it calls a model: size it,
    read its envelope, then the whole decision on the user's words."""
    tokens = estimate_tokens(prompt_chars(body))
    envelope = read_envelope(body, headers)
    messages = envelope.body["messages"]
    req = RouteRequest("auto", features_of(body, headers, tokens, envelope))
    has_tools = bool(body.get("tools"))
    return decide_now(
        BENCH_CATALOG,
        BENCH_SETTINGS,
        req,
        Availability(),
        lambda: classify_request(messages, has_tools=has_tools),
    )


def reference() -> int:
    """A fixed pure-Python workload (about 0.1 ms): how fast this machine is right now.
    Rows divided by it compare across runs on a shared box better than raw times do."""
    return sum(i * i for i in range(2000))


def timed(fn: Callable[[], object]) -> tuple[tuple[float, float], tuple[float, float]]:
    """Wall and CPU (p50, p99) in µs; CPU leaves out being descheduled by a busy box."""
    for _ in range(WARMUP):
        fn()
    wall, cpu = [], []
    for _ in range(RUNS):
        start, start_cpu = time.perf_counter_ns(), time.thread_time_ns()
        fn()
        cpu.append(time.thread_time_ns() - start_cpu)
        wall.append(time.perf_counter_ns() - start)
    return percentiles(wall), percentiles(cpu)


# Run in a fresh interpreter: resident memory (total, and private to the process) after the
# heuristic has classified once, then after the learned classifier (numpy, the weights) has.
RSS_PROBE = """
from llmswitch.routing.classify import classify
def rss():
    lines = open("/proc/self/status").read().splitlines()
    return [int(l.split()[1]) / 1024 for l in lines if l.startswith(("VmRSS", "RssAnon"))]
msgs = [{"role": "user", "content": "hi"}]
classify(msgs)
before = rss()
from llmswitch.routing.classify_learned import classify_request
classify_request(msgs)
print(*(round(b - a, 1) for a, b in zip(before, rss())))
"""


def rss_added() -> str:
    """What the learned classifier adds to the process's memory, in MB (Linux only)."""
    out = subprocess.run([sys.executable, "-c", RSS_PROBE], capture_output=True, text=True)
    total, private = out.stdout.split() if out.returncode == 0 else ("?", "?")
    return f"learned classifier adds {total} MB resident ({private} MB private)"


def bench(entries: Sequence[Mapping[str, Any]]) -> None:
    print(rss_added())
    shipped_weights()  # loaded once per process, as in the gateway
    (r50, r99), _ = timed(reference)
    print(f"reference workload (fixed pure Python)  wall p50 {r50:6.1f} p99 {r99:6.1f} µs")
    capture = chat_request(ENVELOPES["openclaw"])
    headers, body = capture
    system = sum(len(_text(m["content"])) for m in body["messages"] if m["role"] == "system")
    shapes = {
        f"OpenClaw turn as captured ({system // 1000} kB system, {len(body['tools'])} tools)": [],
        **bench_prompts(entries),
    }
    print(f"{'request':<44} {'what':<17} wall p50    p99  (/ref p50, p99)   cpu p50    p99")
    for name, messages in shapes.items():
        steps: list[tuple[str, Callable[[], object]]] = []
        if messages:
            steps += [
                ("heuristic", partial(classify, messages)),
                ("classify", partial(classify_request, messages)),
                ("decision", partial(decision, messages)),
            ]
            enveloped = wrap(capture, messages)
            steps.append(("OpenClaw envelope", partial(harness_decision, headers, enveloped)))
        else:
            steps.append(("envelope+decision", partial(harness_decision, headers, body)))
        for what, fn in steps:
            (p50, p99), (c50, c99) = timed(fn)
            print(
                f"{name:<44} {what:<17} {p50:7.1f} {p99:7.1f}  ({p50 / r50:4.1f}, {p99 / r99:4.1f})"
                f"  {c50:7.1f} {c99:7.1f}"
            )
        d = harness_decision(headers, wrap(capture, messages) if messages else body)
        print(f"{'':<44} → {d.candidates[0].model.id}: {d.reason}")
    (r50, r99), _ = timed(reference)
    print(f"reference workload again                 wall p50 {r50:6.1f} p99 {r99:6.1f} µs")


def classifier_for(variant: Variant) -> Any:
    weights = shipped_weights(every=True)
    if variant == "heuristic":
        return heuristic
    if weights is None:
        raise SystemExit(f"no shipped weights for the {variant} classifier: run make train")
    return lambda m, has_tools: classify_with(weights, variant, m, has_tools=has_tools)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Score or time the request classifiers.")
    parser.add_argument("devset", nargs="?", type=Path, default=DEFAULT_DEVSET)
    parser.add_argument("--split", choices=("train", "dev", "test"))
    parser.add_argument("--variant", choices=(*VARIANTS, "all"), default="all")
    parser.add_argument("--misses", action="store_true", help="list every misclassified entry")
    parser.add_argument("--bench", action="store_true", help="time the classifier instead")
    args = parser.parse_args(argv)

    path = CORPUS / f"{args.split}.jsonl" if args.split else args.devset
    entries = load_devset(path)
    if args.bench:
        bench(entries)
        return 0
    weights = shipped_weights()
    print(
        f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}; the gateway uses "
        f"{weights.chosen if weights else 'heuristic'}"
    )
    variants = VARIANTS if args.variant == "all" else (args.variant,)
    for variant in variants:
        print(f"\n== {variant}")
        print_report(evaluate(entries, classifier_for(variant)), args.misses)
    print_envelopes(entries)
    return 0


if __name__ == "__main__":
    sys.exit(main())
