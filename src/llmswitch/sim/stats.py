"""Request counters and a short request log for a simulated backend.

Tests assert on these directly ("the cloud backend got zero requests", "the gateway
forwarded the client's model name"), so they live on the Python object and are also
served at GET /_sim/stats. Control requests under /_sim/ are never counted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class SimStats:
    """Counters since start or the last reset; the *_now fields are gauges."""

    total: int = 0
    by_path: Counter[str] = field(default_factory=Counter)
    by_model: Counter[str] = field(default_factory=Counter)
    by_status: Counter[int] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    disconnects: int = 0
    in_flight: int = 0
    open_streams: int = 0
    hanging: int = 0

    def reset(self) -> None:
        """Zero the counters; gauges keep describing requests still in flight."""
        self.total = 0
        self.by_path.clear()
        self.by_model.clear()
        self.by_status.clear()
        self.faults.clear()
        self.disconnects = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (status codes become string keys)."""
        return {
            "total": self.total,
            "by_path": dict(self.by_path),
            "by_model": dict(self.by_model),
            "by_status": {str(k): v for k, v in self.by_status.items()},
            "faults": dict(self.faults),
            "disconnects": self.disconnects,
            "in_flight": self.in_flight,
            "open_streams": self.open_streams,
            "hanging": self.hanging,
        }


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the simulator saw it (headers lower-cased, body parsed if JSON)."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    model: str | None
