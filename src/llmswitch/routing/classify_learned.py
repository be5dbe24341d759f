"""The learned classifier: a linear model over hashed n-grams, with the heuristic as fallback.

Two weight sets ship in ``routing/model/classifier.npz`` (written by ``make train``):

- ``learned`` reads only the text (classify_features: n-grams of the ask and its context,
  a few length and shape numbers);
- ``ensemble`` reads the same plus the heuristic classifier's verdict and dimension scores.

The file also names which of the three (heuristic, learned, ensemble) scored best on the dev
split; ``classify_request`` uses that one. Weights load once per process and are shared by
every request (about 3 MB: the n-gram tables stay float16). The heuristic always runs,
because the sensitive scan, the token estimate and the explanation come from it, and it is
what answers when the weights are missing or unreadable.

Complexity comes with a calibrated confidence: the model's softmax at a temperature fitted on
the dev split. A request whose chance of needing a complex or reasoning model is high is never
sent to the simple tier, whatever the top class (``Model.hard_floor``, also chosen on dev):
under-routing a hard request costs more than over-routing an easy one.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

from llmswitch.routing.classify import (
    COMPLEXITIES,
    TASK_TYPES,
    Classification,
    Complexity,
    TaskType,
    classify,
)
from llmswitch.routing.classify_features import Features, conversation, features

log = logging.getLogger(__name__)

Variant = Literal["heuristic", "learned", "ensemble"]
VARIANTS: Final[tuple[Variant, ...]] = ("heuristic", "learned", "ensemble")
MODEL_FILE: Final = "classifier.npz"
_STRUCTURAL: Final = frozenset({"vision", "tool-use"})

Matrix = npt.NDArray[np.float32]
# The n-gram table stays in half precision in memory too, as it ships: it is nearly all of
# the weights, and the scores do not need more.
HalfMatrix = npt.NDArray[np.float16]


@dataclass(frozen=True)
class Model:
    """Weights of one variant: n-gram table, dense weights and bias for both heads.

    Columns 0-3 score the complexities, the rest the task types, in COMPLEXITIES and
    TASK_TYPES order.
    """

    ngrams: HalfMatrix
    dense: Matrix
    bias: Matrix
    temperature: float
    hard_floor: float

    def logits(self, f: Features) -> Matrix:
        """Bias, dense part, and each bag's rows summed and scaled by 1/sqrt(its length).

        All bags are gathered at once and summed by one weighted matrix-vector product:
        numpy's row-wise ``sum(axis=0)`` over a few thousand narrow rows costs several times
        more (the decision budget is under a millisecond at 4,000 tokens).
        """
        z = self.bias + f.dense @ self.dense
        bags = [bag for bag in f.bags if len(bag)]
        if not bags:
            return np.asarray(z, dtype=np.float32)
        scale = np.concatenate(
            [np.full(len(bag), 1 / math.sqrt(len(bag)), dtype=np.float32) for bag in bags]
        )
        rows = self.ngrams[np.concatenate(bags)].astype(np.float32)
        return np.asarray(z + scale @ rows, dtype=np.float32)


@dataclass(frozen=True)
class Prediction:
    complexity: Complexity
    confidence: float
    probabilities: Mapping[str, float]
    task_type: TaskType


def softmax(z: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.float64]:
    e = np.exp(np.asarray(z, dtype=np.float64) - np.max(z))
    return np.asarray(e / e.sum(), dtype=np.float64)


def predict(model: Model, f: Features) -> Prediction:
    """Complexity with its calibrated probability, and the likeliest task type."""
    z = model.logits(f)
    k = len(COMPLEXITIES)
    probs = softmax(z[:k] / model.temperature)
    top = int(np.argmax(probs))
    confidence = float(probs[top])
    if top == 0 and probs[2] + probs[3] >= model.hard_floor:
        # A likely-hard request gets at least the medium tier; how sure is then the chance
        # that it needs more than the simple tier.
        top, confidence = 1, float(1 - probs[0])
    task = TASK_TYPES[int(np.argmax(z[k:]))]
    return Prediction(
        complexity=COMPLEXITIES[top],
        confidence=confidence,
        probabilities={c: round(float(p), 3) for c, p in zip(COMPLEXITIES, probs, strict=True)},
        task_type=task,
    )


@dataclass(frozen=True)
class Weights:
    """What classifier.npz holds: both variants and the one chosen on dev."""

    chosen: Variant
    models: Mapping[str, Model]


def read_weights(path: Any) -> Weights:
    """Parse a weights file (a path or a file object) written by ``write_weights``."""
    with np.load(path) as z:
        models = {
            name: Model(
                ngrams=z[f"{name}_ngrams"].astype(np.float16),
                dense=z[f"{name}_dense"].astype(np.float32),
                bias=z[f"{name}_bias"].astype(np.float32),
                temperature=float(z[f"{name}_temperature"]),
                hard_floor=float(z[f"{name}_hard_floor"]),
            )
            for name in ("learned", "ensemble")
        }
        chosen = next((v for v in VARIANTS if v == str(z["chosen"])), None)
    if chosen is None:
        raise ValueError(f"unknown classifier variant {str(z['chosen'])!r}")
    return Weights(chosen=chosen, models=models)


def write_weights(path: Any, weights: Weights) -> None:
    """Store both variants as float16 (half the size; the scores do not need more)."""
    arrays: dict[str, Any] = {"chosen": np.array(weights.chosen)}
    for name, m in weights.models.items():
        arrays[f"{name}_ngrams"] = m.ngrams.astype(np.float16)
        arrays[f"{name}_dense"] = m.dense.astype(np.float16)
        arrays[f"{name}_bias"] = m.bias.astype(np.float16)
        arrays[f"{name}_temperature"] = np.array(m.temperature)
        arrays[f"{name}_hard_floor"] = np.array(m.hard_floor)
    np.savez_compressed(path, **arrays)


@cache
def shipped_weights() -> Weights | None:
    """The packaged weights, read once per process; None (heuristic only) if unusable."""
    try:
        with (resources.files("llmswitch.routing") / "model" / MODEL_FILE).open("rb") as f:
            return read_weights(f)
    except Exception as exc:  # a broken install must still route
        log.warning("learned classifier unavailable, using the heuristic: %s", exc)
        return None


def combine(heuristic: Classification, pred: Prediction, variant: Variant) -> Classification:
    """The heuristic's classification with the model's complexity and task type.

    Tool traffic and media are structural facts the heuristic reads from the request itself,
    so its vision/tool-use task types, its ``needs_tools``, its sensitive scan and its token
    estimate stand: only what the model judges better is replaced.
    """
    task = heuristic.task_type if heuristic.task_type in _STRUCTURAL else pred.task_type
    scores = {**heuristic.scores, **{f"p_{c}": p for c, p in pred.probabilities.items()}}
    return replace(
        heuristic,
        complexity=pred.complexity,
        confidence=round(pred.confidence, 3),
        task_type=task,
        scores=scores,
        reason=f"{variant} model: {pred.complexity} p={pred.confidence:.2f}"
        + (f"; sensitive: {', '.join(heuristic.sensitive_kinds)}" if heuristic.sensitive else ""),
    )


def classify_with(
    weights: Weights | None,
    variant: Variant,
    messages: Sequence[Mapping[str, Any]],
    *,
    has_tools: bool = False,
) -> Classification:
    """Classify with one variant; the heuristic when that variant has no weights."""
    heuristic = classify(messages, has_tools=has_tools)
    if variant == "heuristic" or weights is None:
        return heuristic
    conv = conversation(messages)
    if not conv.ask:
        return heuristic
    f = features(conv, heuristic if variant == "ensemble" else None)
    return combine(heuristic, predict(weights.models[variant], f), variant)


def classify_request(
    messages: Sequence[Mapping[str, Any]], *, has_tools: bool = False
) -> Classification:
    """The production classification: the variant that scored best on dev, or the heuristic."""
    weights = shipped_weights()
    variant: Variant = weights.chosen if weights else "heuristic"
    return classify_with(weights, variant, messages, has_tools=has_tools)
