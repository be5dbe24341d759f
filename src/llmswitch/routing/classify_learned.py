"""The learned classifier: a linear model over hashed n-grams, with the heuristic as fallback.

Two weight sets ship in ``routing/model/classifier.npz`` (written by ``make train``):

- ``learned`` reads only the text (classify_features: n-grams of the ask and its context,
  a few length and shape numbers);
- ``ensemble`` reads the same plus the heuristic classifier's verdict and dimension scores.

The file also names which of the three (heuristic, learned, ensemble) scored best on the dev
split; ``classify_request`` uses that one. Weights load once per process and are shared by
every request (the chosen variant only: 2.9 MB in float32). The heuristic always runs,
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


@dataclass(frozen=True)
class Model:
    """Weights of one variant: n-gram table, dense weights and bias for both heads.

    Columns 0-3 score the complexities, the rest the task types, in COMPLEXITIES and
    TASK_TYPES order. The n-gram table ships in half precision and is widened to float32
    once, at load: converting gathered float16 rows on every request costs more than the
    rest of the prediction.
    """

    ngrams: Matrix
    dense: Matrix
    bias: Matrix
    temperature: float
    hard_floor: float

    def logits(self, f: Features) -> Matrix:
        """Bias, dense part, and the weighted sum of the n-grams' rows.

        ``take`` gathers at C speed (fancy indexing a 2-D array costs several times more),
        and one vector-matrix product weighs and sums the rows.
        """
        z = self.bias + f.dense @ self.dense
        if len(f.ngrams):
            z = z + f.weights @ self.ngrams.take(f.ngrams, axis=0)
        return np.asarray(z, dtype=np.float32)


@dataclass(frozen=True)
class Prediction:
    complexity: Complexity
    confidence: float
    probabilities: Mapping[str, float]
    task_type: TaskType


def softmax(z: Sequence[float], temperature: float = 1.0) -> list[float]:
    """In plain Python: on four numbers, each numpy call costs more than the arithmetic."""
    top = max(z)
    e = [math.exp((v - top) / temperature) for v in z]
    total = sum(e)
    return [v / total for v in e]


def predict(model: Model, f: Features) -> Prediction:
    """Complexity with its calibrated probability, and the likeliest task type."""
    z = model.logits(f).tolist()
    k = len(COMPLEXITIES)
    probs = softmax(z[:k], model.temperature)
    top = max(range(k), key=probs.__getitem__)
    confidence = probs[top]
    if top == 0 and probs[2] + probs[3] >= model.hard_floor:
        # A likely-hard request gets at least the medium tier; how sure is then the chance
        # that it needs more than the simple tier.
        top, confidence = 1, 1 - probs[0]
    tasks = z[k:]
    return Prediction(
        complexity=COMPLEXITIES[top],
        confidence=confidence,
        probabilities={c: round(p, 3) for c, p in zip(COMPLEXITIES, probs, strict=True)},
        task_type=TASK_TYPES[max(range(len(tasks)), key=tasks.__getitem__)],
    )


@dataclass(frozen=True)
class Weights:
    """What classifier.npz holds: the variant chosen on dev, and the models read (both, or
    only the chosen one)."""

    chosen: Variant
    models: Mapping[str, Model]


MODELS: Final = ("learned", "ensemble")


def read_weights(path: Any, *, every: bool = True) -> Weights:
    """Parse a weights file (a path or a file object) written by ``write_weights``; with
    ``every=False`` only the chosen variant's model, which is all the gateway runs."""
    with np.load(path) as z:
        chosen = next((v for v in VARIANTS if v == str(z["chosen"])), None)
        if chosen is None:
            raise ValueError(f"unknown classifier variant {str(z['chosen'])!r}")
        models = {
            name: Model(
                ngrams=z[f"{name}_ngrams"].astype(np.float32),
                dense=z[f"{name}_dense"].astype(np.float32),
                bias=z[f"{name}_bias"].astype(np.float32),
                temperature=float(z[f"{name}_temperature"]),
                hard_floor=float(z[f"{name}_hard_floor"]),
            )
            for name in MODELS
            if every or name == chosen
        }
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
def shipped_weights(*, every: bool = False) -> Weights | None:
    """The packaged weights, read once per process; None (heuristic only) if unusable.

    The gateway reads only the chosen model; ``every=True`` is for comparing them.
    """
    try:
        with (resources.files("llmswitch.routing") / "model" / MODEL_FILE).open("rb") as f:
            return read_weights(f, every=every)
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
    model = weights.models.get(variant) if weights is not None else None
    if model is None:
        return heuristic
    conv = conversation(messages)
    if not conv.ask:
        return heuristic
    f = features(conv, heuristic if variant == "ensemble" else None)
    return combine(heuristic, predict(model, f), variant)


def classify_request(
    messages: Sequence[Mapping[str, Any]], *, has_tools: bool = False
) -> Classification:
    """The production classification: the variant that scored best on dev, or the heuristic."""
    weights = shipped_weights()
    variant: Variant = weights.chosen if weights else "heuristic"
    return classify_with(weights, variant, messages, has_tools=has_tools)
