"""The state of one simulated backend: its models, knobs, RNG and counters.

Kept apart from the ASGI app so tests can hold the backend, break and heal it from
Python, and assert on what it saw, whichever wire format serves it.
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import trio

from .knobs import KnobError, ModelKnobs, validate_changes
from .stats import RecordedRequest, SimStats


class UnknownModelError(KeyError):
    """A knob change named a model this backend does not serve."""


class SimBackend:
    """A simulated LLM backend with per-model knobs layered over a backend default.

    A model's effective knobs are the default knobs with that model's overrides on top,
    so changing the default later still reaches every knob a model did not override.
    """

    def __init__(
        self,
        models: Iterable[str] = ("sim-model",),
        *,
        name: str = "sim",
        knobs: ModelKnobs | None = None,
        model_knobs: Mapping[str, Mapping[str, Any]] | None = None,
        api_key: str | None = None,
        seed: int | None = None,
        record_limit: int = 200,
    ) -> None:
        self.name = name
        self.api_key = api_key
        self.created = int(time.time())
        self.stats = SimStats()
        self.requests: deque[RecordedRequest] = deque(maxlen=record_limit)
        self.rng = random.Random(seed)
        self._models: list[str] = list(dict.fromkeys(models))
        self._initial_default = knobs or ModelKnobs()
        self._initial_overrides = {
            model: validate_changes(changes) for model, changes in (model_knobs or {}).items()
        }
        for model in self._initial_overrides:
            self._require_model(model)
        self._default = self._initial_default
        self._overrides: dict[str, dict[str, Any]] = {
            model: dict(changes) for model, changes in self._initial_overrides.items()
        }
        self._effective: dict[str, ModelKnobs] = {}
        self._changed: trio.Event | None = None
        self._held: trio.Event | None = None
        self._rebuild()

    # -- models -----------------------------------------------------------------

    @property
    def models(self) -> tuple[str, ...]:
        """Model ids served, in order."""
        return tuple(self._models)

    def has_model(self, model: str) -> bool:
        return self.resolve_model(model) is not None

    def resolve_model(self, model: str) -> str | None:
        """The served model id for a requested name, or None.

        Accepts Ollama's implicit ":latest" tag both ways, since /api/tags lists
        "name:latest" for a model served as "name".
        """
        if model in self._effective:
            return model
        if model.endswith(":latest") and model[: -len(":latest")] in self._effective:
            return model[: -len(":latest")]
        if f"{model}:latest" in self._effective:
            return f"{model}:latest"
        return None

    def add_model(self, model: str, **overrides: Any) -> None:
        """Serve one more model (e.g. a model "pulled" while the gateway runs)."""
        if model not in self._models:
            self._models.append(model)
        if overrides:
            self._overrides[model] = validate_changes(overrides)
        self._rebuild()

    def remove_model(self, model: str) -> None:
        """Stop serving a model; requests for it get 404 model_not_found."""
        self._require_model(model)
        self._models.remove(model)
        self._overrides.pop(model, None)
        self._rebuild()

    # -- knobs ------------------------------------------------------------------

    @property
    def default_knobs(self) -> ModelKnobs:
        return self._default

    def knobs_for(self, model: str | None) -> ModelKnobs:
        """Effective knobs of a model; the backend default for None or unknown models."""
        if model is None:
            return self._default
        return self._effective.get(model, self._default)

    def set_knobs(self, model: str | None = None, **changes: Any) -> ModelKnobs:
        """Change knobs at run time: the default for None, else one model's overrides.

        Returns the new effective knobs. Raises KnobError or UnknownModelError.
        """
        changes = validate_changes(changes)
        if model is None:
            self._default = self._default.with_changes(**changes)
        else:
            self._require_model(model)
            merged = {**self._overrides.get(model, {}), **changes}
            self._default.with_changes(**merged)  # validate the combination
            self._overrides[model] = merged
        self._rebuild()
        return self.knobs_for(model)

    def reset_knobs(self, model: str | None = None) -> None:
        """Heal: drop one model's overrides, or restore every knob to its initial value."""
        if model is None:
            self._default = self._initial_default
            self._overrides = {m: dict(c) for m, c in self._initial_overrides.items()}
        else:
            self._require_model(model)
            self._overrides.pop(model, None)
        self._rebuild()

    @contextmanager
    def override(self, model: str | None = None, **changes: Any) -> Iterator[ModelKnobs]:
        """Change knobs for the duration of a with-block, then put them back."""
        saved_default = self._default
        saved_overrides = {m: dict(c) for m, c in self._overrides.items()}
        try:
            yield self.set_knobs(model, **changes)
        finally:
            self._default = saved_default
            self._overrides = saved_overrides
            self._rebuild()

    def knobs_snapshot(self) -> dict[str, Any]:
        """Default and effective per-model knobs, JSON-ready."""
        return {
            "default": self._default.to_dict(),
            "models": {m: self._effective[m].to_dict() for m in self._models},
            "overrides": {m: dict(c) for m, c in self._overrides.items()},
        }

    def should_inject_error(self, knobs: ModelKnobs) -> bool:
        """Draw from the seeded RNG against error_rate (no draw when the rate is 0)."""
        return knobs.error_rate > 0.0 and self.rng.random() < knobs.error_rate

    def reseed(self, seed: int | None) -> None:
        """Restart the fault RNG, so a flaky run can be replayed."""
        self.rng.seed(seed)

    # -- counters ---------------------------------------------------------------

    def reset_stats(self) -> None:
        """Zero the counters and forget recorded requests."""
        self.stats.reset()
        self.requests.clear()
        self.notify()

    def reset(self) -> None:
        """Knobs back to initial values, counters to zero."""
        self.reset_knobs()
        self.reset_stats()

    def last_request(self) -> RecordedRequest | None:
        """The most recent request this backend saw (None if none)."""
        return self.requests[-1] if self.requests else None

    def notify(self) -> None:
        """Wake wait_until() callers; the app calls this whenever counters change."""
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    async def wait_until(self, predicate: Callable[[SimStats], bool]) -> None:
        """Wait until predicate(stats) holds, e.g. lambda s: s.hanging == 1.

        Lets tests synchronise with the simulator without sleeping; wrap the call in
        trio.fail_after to bound it.
        """
        while not predicate(self.stats):
            if self._changed is None:
                self._changed = trio.Event()
            await self._changed.wait()

    # -- holding streams --------------------------------------------------------

    def hold_streams(self) -> None:
        """Paced streams stop after their first event, and non-stream answers before they
        are sent, until :meth:`release_streams`.

        A test gets all its requests in flight at once however slowly the machine started
        them.
        """
        if self._held is None:
            self._held = trio.Event()

    def release_streams(self) -> None:
        if self._held is not None:
            self._held.set()
            self._held = None

    async def wait_while_held(self) -> float:
        """Wait while streams are held; the seconds waited, to shift a stream's pacing."""
        held = self._held
        if held is None:
            return 0.0
        start = trio.current_time()
        await held.wait()
        return trio.current_time() - start

    # -- internals --------------------------------------------------------------

    def _require_model(self, model: str) -> None:
        if model not in self._models:
            raise UnknownModelError(model)

    def _rebuild(self) -> None:
        effective: dict[str, ModelKnobs] = {}
        for model in self._models:
            changes = self._overrides.get(model)
            effective[model] = self._default.with_changes(**changes) if changes else self._default
        self._effective = effective

    def __repr__(self) -> str:
        return f"SimBackend(name={self.name!r}, models={self._models!r})"


__all__ = ["KnobError", "SimBackend", "UnknownModelError"]
