"""Gemini API wire format for the simulator: responses, stream events, errors, models.

Pure functions over plain data, no I/O. The shapes follow what
generativelanguage.googleapis.com sends (v1beta), so the gateway's Gemini wire is tested
against real-world bytes.
"""

from __future__ import annotations

import base64
import math
import secrets
from collections.abc import Iterable
from typing import Any

from .asgi import dumps

API_VERSIONS = ("v1beta", "v1")

# Google's canonical status names per HTTP code, with the default message the sim sends.
_STATUSES: dict[int, tuple[str, str]] = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: (
        "UNAUTHENTICATED",
        "Request had invalid authentication credentials. Expected OAuth 2 access token, "
        "login cookie or other valid authentication credential.",
    ),
    403: ("PERMISSION_DENIED", "The caller does not have permission"),
    404: ("NOT_FOUND", "Requested entity was not found."),
    409: ("ABORTED", "The operation was aborted."),
    413: ("INVALID_ARGUMENT", "Request payload size exceeds the limit."),
    429: (
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota, please check your plan and billing details (simulated).",
    ),
    499: ("CANCELLED", "The operation was cancelled."),
    500: ("INTERNAL", "An internal error has occurred. Please retry or report."),
    501: ("NOT_IMPLEMENTED", "Method not implemented."),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "The request timed out. Please try again."),
}

_FINISH_REASONS = {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP"}


def status_name(code: int) -> str:
    known = _STATUSES.get(code)
    if known is not None:
        return known[0]
    return "INTERNAL" if code >= 500 else "FAILED_PRECONDITION"


def error_body(
    code: int,
    message: str | None = None,
    status: str | None = None,
    details: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Google's error envelope: {"error": {"code", "message", "status"[, "details"]}}."""
    default = _STATUSES.get(code, ("", f"HTTP {code}."))[1]
    err: dict[str, Any] = {
        "code": code,
        "message": message or default,
        "status": status or status_name(code),
    }
    if details:
        err["details"] = details
    return {"error": err}


def retry_info(retry_after_s: float) -> dict[str, Any]:
    """The RetryInfo detail Gemini puts in a 429 (it sends no Retry-After header)."""
    return {
        "@type": "type.googleapis.com/google.rpc.RetryInfo",
        "retryDelay": f"{math.ceil(retry_after_s)}s",
    }


def error_for_status(code: int, retry_after_s: float | None = None) -> dict[str, Any]:
    """The error body Gemini would send with this status (simulated faults use it)."""
    details = [retry_info(retry_after_s)] if retry_after_s is not None else None
    return error_body(code, details=details)


def api_key_missing() -> dict[str, Any]:
    return error_body(
        403,
        "Method doesn't allow unregistered callers (callers without established identity)."
        " Please use API Key or other form of API consumer identity to call this API.",
    )


def api_key_invalid() -> dict[str, Any]:
    """What Gemini answers a wrong key with: 400, not 401."""
    return error_body(
        400,
        "API key not valid. Please pass a valid API key.",
        details=[
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            }
        ],
    )


def model_not_found(model: str, version: str, method: str) -> dict[str, Any]:
    return error_body(
        404,
        f"models/{model} is not found for API version {version}, or is not supported for "
        f"{method}. Call ListModels to see the list of available models and their "
        "supported methods.",
    )


def model_object(model: str) -> dict[str, Any]:
    return {
        "name": f"models/{model}",
        "version": "001",
        "displayName": model,
        "description": f"Simulated model {model}",
        "inputTokenLimit": 1048576,
        "outputTokenLimit": 8192,
        "supportedGenerationMethods": [
            "generateContent",
            "streamGenerateContent",
            "countTokens",
        ],
        "temperature": 1.0,
        "topP": 0.95,
        "topK": 64,
        "maxTemperature": 2.0,
    }


def model_list(models: Iterable[str]) -> dict[str, Any]:
    return {"models": [model_object(m) for m in models]}


def new_response_id() -> str:
    return secrets.token_urlsafe(16)


def new_signature() -> str:
    """An opaque stand-in for the thoughtSignature Gemini 3 attaches to function calls."""
    return base64.b64encode(b"sim-signature:" + secrets.token_bytes(12)).decode("ascii")


def finish_reason(openai_reason: str) -> str:
    return _FINISH_REASONS.get(openai_reason, "STOP")


def usage_metadata(prompt_tokens: int, candidate_tokens: int) -> dict[str, Any]:
    return {
        "promptTokenCount": prompt_tokens,
        "candidatesTokenCount": candidate_tokens,
        "totalTokenCount": prompt_tokens + candidate_tokens,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt_tokens}],
    }


def function_call_part(name: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"functionCall": {"name": name, "args": args}, "thoughtSignature": new_signature()}


def response(
    parts: list[dict[str, Any]],
    model: str,
    response_id: str,
    usage: dict[str, Any],
    finish: str | None = None,
) -> dict[str, Any]:
    """A GenerateContentResponse (a whole answer, or one streamed delta without finish)."""
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}}
    if finish is not None:
        candidate["finishReason"] = finish
    candidate["index"] = 0
    return {
        "candidates": [candidate],
        "usageMetadata": usage,
        "modelVersion": model,
        "responseId": response_id,
    }


def sse_event(payload: dict[str, Any]) -> bytes:
    """One ``alt=sse`` event; Gemini ends its events with CRLF CRLF."""
    return b"data: " + dumps(payload) + b"\r\n\r\n"
