"""OpenAI-style errors: ``{"error": {"message", "type", "param", "code"}}`` with a status.

Handlers raise :class:`GatewayError`; the app turns it into the JSON body clients'
SDKs already know how to read. Messages never include secrets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class GatewayError(Exception):
    status: int
    message: str
    type: str = "invalid_request_error"
    param: str | None = None
    code: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status} {self.message}"

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {
            "message": self.message,
            "type": self.type,
            "param": self.param,
            "code": self.code,
        }
        err.update(self.details)
        return {"error": err}


def bad_request(
    message: str, param: str | None = None, code: str = "invalid_request"
) -> GatewayError:
    return GatewayError(400, message, param=param, code=code)


def unknown_model(name: str) -> GatewayError:
    return GatewayError(
        404,
        f"The model {name!r} does not exist on this gateway; GET /v1/models lists them.",
        param="model",
        code="model_not_found",
    )
