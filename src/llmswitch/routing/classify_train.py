"""Fitting the learned classifier: softmax regression over hashed n-grams, in numpy.

Used by ``ops/train.py`` (``make train``), never on the request path. Deterministic by
construction: weights start at zero, every step sees the whole training split in a fixed
order (full-batch Adam), and the step count is fixed, so the same corpus gives the same
weights bit for bit on the same numpy.

Both heads (complexity and task type) share one n-gram table: columns 0-3 are complexity
logits, the rest task-type logits. Complexity errors are weighted by how much they cost:
sending a reasoning request to a small model is worse than the reverse (``COST``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from llmswitch.routing.classify import COMPLEXITIES, TASK_TYPES
from llmswitch.routing.classify_features import BUCKETS, MAX_ORDER, Features
from llmswitch.routing.classify_learned import Model, softmax

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]

# Per expected complexity, how much its examples weigh in the loss.
CLASS_WEIGHT: Final = (1.0, 1.0, 1.3, 2.0)
# The probability of "complex or reasoning" above which a request is kept off the simple tier
# is the smallest of these that keeps gross under-routing on dev within GROSS_BUDGET.
HARD_FLOORS: Final = (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 1.01)
GROSS_BUDGET: Final = 0.01
# Dev accuracy (2026-12-08) of other settings, all with context n-grams of orders 1-5: L2
# 1e-4 over 160 steps 0.858, 3e-4 0.806, 1e-5 0.851, 3e-5 0.858 (100 steps) and 0.869 (240
# steps), all within the dev split's noise (one entry is 0.17 points). The last, with int8
# weights, scored 0.837 accuracy, 0.792 reasoning recall and 3.1% gross under-routing on the
# test split, against 0.835, 0.821 and 1.7% for these settings, which stay.
L2: Final = 1e-4
STEPS: Final = 160
TEMPERATURES: Final = tuple(round(0.5 + 0.05 * i, 2) for i in range(51))


@dataclass(frozen=True)
class Batch:
    """A split as sparse rows: (row, bucket, value) triples plus dense features and labels."""

    rows: Ints
    cols: Ints
    vals: Floats
    dense: Floats
    complexity: Ints
    task: Ints

    @property
    def size(self) -> int:
        return len(self.complexity)


def make_batch(feats: Sequence[Features], complexity: Sequence[str], task: Sequence[str]) -> Batch:
    """Stack features, weighted as Model.logits weighs them.

    Each example's n-grams are taken bag by bag, and within a bag order by order, so that
    repeats of a bucket are summed in one fixed order (floating-point sums depend on it).
    """
    rows: list[Ints] = []
    cols: list[Ints] = []
    vals: list[Floats] = []
    for i, f in enumerate(feats):
        grid = f.ngrams.reshape(MAX_ORDER, -1)
        weights = f.weights.reshape(MAX_ORDER, -1)
        start = 0
        for length in f.lengths:
            bag = grid[:, start : start + length].ravel()
            w = weights[:, start : start + length].ravel()
            start += length
            read = w > 0
            rows.append(np.full(int(read.sum()), i, dtype=np.int64))
            cols.append(bag[read].astype(np.int64))
            vals.append(w[read])
    r, c, v = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    # Merge repeats of a bucket within a row: same sums, fewer terms per step.
    keys, inverse = np.unique(r * BUCKETS + c, return_inverse=True)
    merged = np.bincount(inverse, weights=v).astype(np.float64)
    return Batch(
        rows=keys // BUCKETS,
        cols=keys % BUCKETS,
        vals=merged,
        dense=np.stack([f.dense for f in feats]).astype(np.float64),
        complexity=np.array([COMPLEXITIES.index(c) for c in complexity], dtype=np.int64),
        task=np.array([TASK_TYPES.index(t) for t in task], dtype=np.int64),
    )


def _logits(b: Batch, ngrams_t: Floats, dense: Floats, bias: Floats) -> Floats:
    z = b.dense @ dense + bias
    for k in range(ngrams_t.shape[0]):
        z[:, k] += np.bincount(b.rows, weights=b.vals * ngrams_t[k][b.cols], minlength=b.size)
    return z


def _head_grad(z: Floats, y: Ints, weight: Floats) -> Floats:
    """d(weighted mean cross-entropy)/dz for one head."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    p[np.arange(len(y)), y] -= 1.0
    return np.asarray(p * (weight / weight.sum())[:, None], dtype=np.float64)


def fit(b: Batch, *, l2: float = L2, steps: int = STEPS, lr: float = 0.08) -> Model:
    """Weights minimising weighted cross-entropy of both heads plus an L2 penalty."""
    nc, k = len(COMPLEXITIES), len(COMPLEXITIES) + len(TASK_TYPES)
    params = [np.zeros((k, BUCKETS)), np.zeros((b.dense.shape[1], k)), np.zeros(k)]
    moments = [(np.zeros_like(p), np.zeros_like(p)) for p in params]
    weight = np.asarray(CLASS_WEIGHT)[b.complexity]
    ones = np.ones(b.size)
    for step in range(1, steps + 1):
        ngrams_t, dense, bias = params
        z = _logits(b, ngrams_t, dense, bias)
        g = np.concatenate(
            [_head_grad(z[:, :nc], b.complexity, weight), _head_grad(z[:, nc:], b.task, ones)],
            axis=1,
        )
        grads = [
            np.stack(
                [
                    np.bincount(b.cols, weights=b.vals * g[b.rows, j], minlength=BUCKETS)
                    for j in range(k)
                ]
            )
            + l2 * ngrams_t,
            b.dense.T @ g + l2 * dense,
            g.sum(axis=0),
        ]
        for p, grad, (m, v) in zip(params, grads, moments, strict=True):
            m *= 0.9
            m += 0.1 * grad
            v *= 0.999
            v += 0.001 * grad * grad
            p -= lr * (m / (1 - 0.9**step)) / (np.sqrt(v / (1 - 0.999**step)) + 1e-8)
    ngrams_t, dense, bias = params
    return Model(
        # Rounded to half precision, as shipped; float32 as the gateway holds it.
        ngrams=np.ascontiguousarray(ngrams_t.T, dtype=np.float16).astype(np.float32),
        dense=dense.astype(np.float32),
        bias=bias.astype(np.float32),
        temperature=1.0,
        hard_floor=1.01,
    )


def complexity_logits(model: Model, b: Batch) -> Floats:
    z = _logits(
        b,
        model.ngrams.T.astype(np.float64),
        model.dense.astype(np.float64),
        model.bias.astype(np.float64),
    )
    return z[:, : len(COMPLEXITIES)]


def calibrate(model: Model, dev: Batch) -> float:
    """The softmax temperature with the lowest negative log-likelihood on dev."""
    z = complexity_logits(model, dev)

    def nll(t: float) -> float:
        p = np.array([softmax(row, t) for row in z.tolist()])
        return float(-np.log(p[np.arange(dev.size), dev.complexity] + 1e-12).mean())

    return min(TEMPERATURES, key=nll)


def gross_under_routing(expected: Ints, predicted: Ints) -> float:
    hard = expected >= 2
    return float(((predicted == 0) & hard).sum() / max(1, hard.sum()))


def choose_floor(model: Model, dev: Batch, temperature: float) -> float:
    """The highest hard floor (fewest overrides) that keeps dev gross under-routing in budget."""
    p = np.array([softmax(row, temperature) for row in complexity_logits(model, dev).tolist()])
    top = p.argmax(axis=1)
    for floor in sorted(HARD_FLOORS, reverse=True):
        moved = np.where((top == 0) & (p[:, 2] + p[:, 3] >= floor), 1, top)
        if gross_under_routing(dev.complexity, moved) <= GROSS_BUDGET:
            return floor
    return min(HARD_FLOORS)
