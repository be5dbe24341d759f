"""Train the learned classifier on the corpus and write the shipped weights (``make train``).

Usage: .venv/bin/python ops/train.py [--out PATH]

Reads tests/data/corpus/train.jsonl and the hand-written tests/data/devset.jsonl (which the
heuristic was tuned on; its own test keeps scoring the heuristic) to fit both variants
(``learned``: text only; ``ensemble``: text plus the heuristic's scores), and
tests/data/corpus/dev.jsonl to calibrate
them (softmax temperature, the hard floor that keeps gross under-routing in budget) and to
choose which of heuristic, learned and ensemble the gateway uses. Every choice is made on
models that never saw dev; then each variant is fitted again on train and dev together with
those choices, and that fit ships: a quarter more examples generalise better than the dev
split is worth as a held-out set once nothing is left to choose. It never opens the test
split: that one is frozen for reporting (``make eval``). Deterministic: the same corpus gives
the same file, byte for byte (its sha256 is printed; the shipped file is this script's output).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from llmswitch.routing.classify import classify
from llmswitch.routing.classify_eval import evaluate, load_devset
from llmswitch.routing.classify_features import conversation, features
from llmswitch.routing.classify_learned import VARIANTS, Model, Variant, Weights, classify_with
from llmswitch.routing.classify_learned import write_weights as write
from llmswitch.routing.classify_train import calibrate, choose_floor, fit, make_batch

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "data" / "corpus"
DEVSET = ROOT / "tests" / "data" / "devset.jsonl"
OUT = ROOT / "src" / "llmswitch" / "routing" / "model" / "classifier.npz"


def batch(entries: Sequence[Mapping[str, Any]], ensemble: bool) -> Any:
    feats = [
        features(
            conversation(e["messages"]),
            classify(e["messages"], has_tools=bool(e.get("has_tools"))) if ensemble else None,
        )
        for e in entries
    ]
    return make_batch(feats, [e["expected"] for e in entries], [e["task_type"] for e in entries])


def train_variant(train: Any, dev: Any, name: str) -> Model:
    started = time.monotonic()
    model = fit(train)
    temperature = calibrate(model, dev)
    model = replace(model, temperature=temperature)
    model = replace(model, hard_floor=choose_floor(model, dev, temperature))
    print(
        f"{name:<9} fitted in {time.monotonic() - started:5.1f} s, temperature "
        f"{model.temperature:.2f}, hard floor {model.hard_floor:.2f}"
    )
    return model


def refit(everything: Any, chosen: Model, name: str) -> Model:
    """The variant fitted on train and dev, with the temperature and floor chosen on dev."""
    started = time.monotonic()
    model = replace(fit(everything), temperature=chosen.temperature, hard_floor=chosen.hard_floor)
    print(f"{name:<9} refitted on train + dev in {time.monotonic() - started:5.1f} s")
    return model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train the learned request classifier.")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    train = load_devset(CORPUS / "train.jsonl") + load_devset(DEVSET)
    dev = load_devset(CORPUS / "dev.jsonl")
    models = {
        name: train_variant(batch(train, name == "ensemble"), batch(dev, name == "ensemble"), name)
        for name in ("learned", "ensemble")
    }
    scores: dict[Variant, float] = {}
    for variant in VARIANTS:
        weights = Weights(chosen=variant, models=models)
        report = evaluate(
            dev,
            lambda m, has_tools, w=weights, v=variant: classify_with(w, v, m, has_tools=has_tools),
        )
        scores[variant] = report.accuracy
        print(
            f"dev {variant:<9} accuracy {report.accuracy:.3f}  reasoning recall "
            f"{report.reasoning_recall:.3f}  gross under-routing {report.gross_under_routing:.3f}"
        )
    # Best dev accuracy; on a tie the simpler variant (earlier in VARIANTS) wins.
    chosen = max(VARIANTS, key=lambda v: (scores[v], -VARIANTS.index(v)))
    shipped = {
        name: refit(batch(train + dev, name == "ensemble"), model, name)
        for name, model in models.items()
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write(args.out, Weights(chosen=chosen, models=shipped))
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()[:16]
    size = args.out.stat().st_size / 1e6
    print(f"chose {chosen}; wrote {args.out} ({size:.2f} MB, sha256 {digest})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
