"""Score the heuristic classifier against the labelled dev set and print where it goes wrong.

Usage: .venv/bin/python ops/eval.py [--misses] [devset.jsonl]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from llmswitch.routing.classify_eval import evaluate, load_devset

DEFAULT_DEVSET = Path(__file__).resolve().parent.parent / "tests" / "data" / "devset.jsonl"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("devset", nargs="?", type=Path, default=DEFAULT_DEVSET)
    parser.add_argument("--misses", action="store_true", help="list every misclassified entry")
    args = parser.parse_args(argv)

    report = evaluate(load_devset(args.devset))
    n = len(report.outcomes)
    print(f"entries: {n}")
    print(f"complexity accuracy: {report.accuracy:.3f}")
    print(f"task-type accuracy:  {report.task_accuracy:.3f}")
    print(f"gross under-routing: {report.gross_under_routing:.3f} (complex/reasoning → simple)")
    print(f"sensitive mislabels: {len(report.sensitive_misses)}")
    print()
    print(report.confusion_table())
    if args.misses:
        print()
        for o in report.outcomes:
            task_ok = o.entry["task_type"] == o.result.task_type
            if o.correct and task_ok:
                continue
            print(
                f"{o.entry['id']:<10} want {o.entry['expected']}/{o.entry['task_type']:<12} "
                f"got {o.result.complexity}/{o.result.task_type} "
                f"({o.result.confidence:.2f}) {o.result.reason}"
            )
        for o in report.sensitive_misses:
            print(
                f"{o.entry['id']:<10} sensitive want {bool(o.entry.get('sensitive'))} "
                f"got {o.result.sensitive_kinds}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
