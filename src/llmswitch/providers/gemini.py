"""The Gemini API wire format, spoken on behalf of OpenAI chat-completions clients.

:meth:`GeminiWire.call` turns an OpenAI chat request into ``POST
/models/{model}:generateContent`` (or ``:streamGenerateContent?alt=sse``) under a base URL
such as ``https://generativelanguage.googleapis.com/v1beta``; :meth:`GeminiWire.answer`
and :class:`GeminiTranslator` turn Gemini's ``GenerateContentResponse`` objects back into
OpenAI ``chat.completion`` JSON and ``chat.completion.chunk`` SSE. The key travels in the
``x-goog-api-key`` header, set by the backend's auth preset, not here.

How things map:

- system/developer messages → ``systemInstruction``; assistant → role ``model``; tool
  results → ``functionResponse`` parts in a ``user`` turn, named after the call they
  answer; consecutive turns of one role are merged (parallel tool results must share one).
- Images: ``data:`` URLs → ``inlineData``; http(s) URLs → ``fileData`` (MIME type guessed
  from the extension, else image/jpeg). Audio input and PDF ``file`` parts → ``inlineData``.
- Tool schemas are cut down to the OpenAPI subset Gemini's ``parameters`` accepts
  (``additionalProperties``, ``$schema``, unknown formats dropped; ``$ref`` inlined; type
  lists → ``nullable``); a function without parameters sends none (Gemini rejects an
  object schema with no properties).
- ``temperature``, ``top_p``, ``max_(completion_)tokens``, ``stop``, ``seed`` and
  ``response_format`` → ``generationConfig``; ``n``, penalties, ``logprobs``,
  ``reasoning_effort``, ``user``, ``stream_options`` ... are dropped.
- Answers: text parts are joined (thought parts left out); ``functionCall`` parts become
  ``tool_calls`` with synthesised ids; thinking tokens count as completion tokens (they
  are billed as output) and are also reported as ``reasoning_tokens``.

Thought signatures: Gemini 3 answers a function call with an opaque ``thoughtSignature``
and rejects the next turn (400) if the call comes back without it. OpenAI clients cannot
carry it, so the wire remembers it by tool call id (bounded, in memory) and puts it back;
a call it has no signature for (another process, another model's history) gets the
placeholder Google documents for exactly that case.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import secrets
import time
import urllib.parse
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from llmswitch.config import DEFAULT_UPSTREAM_LIMITS
from llmswitch.providers import common, sse
from llmswitch.providers.common import SSE_DONE, UnsupportedRequest, UpstreamFormatError
from llmswitch.providers.openai import error_text, sse_error
from llmswitch.providers.scrub import known_keys
from llmswitch.providers.wire import UpstreamCall

JSON = dict[str, Any]

#: Google's documented stand-in for a thought signature the client cannot supply.
PLACEHOLDER_SIGNATURE = "skip_thought_signature_validator"

_FINISH_REASONS: dict[str, str] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
}

# Statuses where another backend may well succeed: rate limits, overload, server errors,
# and this backend's own key, permissions or configured model name (401/403/404: the
# gateway chose the upstream model and the key, not the client).
_BACKEND_FAULT = frozenset({401, 403, 404, 408, 409, 429})
_TRANSIENT_STATUSES = frozenset(
    {"RESOURCE_EXHAUSTED", "UNAVAILABLE", "INTERNAL", "DEADLINE_EXCEEDED", "ABORTED"}
)
_MAX_MESSAGE = 400

_IMAGE_TYPES: dict[str, str] = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".heic": "image/heic",
    ".heif": "image/heif",
    ".bmp": "image/bmp",
}

# What Gemini's OpenAPI-subset Schema accepts (anything else is a 400 "Unknown name").
_SCHEMA_KEYS = frozenset(
    {
        "type",
        "format",
        "title",
        "description",
        "nullable",
        "maxItems",
        "minItems",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "example",
        "propertyOrdering",
        "default",
        "minimum",
        "maximum",
    }
)
_SCHEMA_FORMATS = frozenset({"enum", "date-time", "float", "double", "int32", "int64"})


# -- signatures -------------------------------------------------------------------------


class SignatureCache:
    """Thought signatures by tool call id, oldest forgotten first."""

    def __init__(self, limit: int = 4096) -> None:
        self._limit = limit
        self._items: OrderedDict[str, str] = OrderedDict()

    def put(self, call_id: str, signature: str) -> None:
        self._items[call_id] = signature
        self._items.move_to_end(call_id)
        while len(self._items) > self._limit:
            self._items.popitem(last=False)

    def get(self, call_id: str) -> str | None:
        return self._items.get(call_id)

    def __len__(self) -> int:
        return len(self._items)


# -- requests ---------------------------------------------------------------------------


def model_path(upstream_model: str) -> str:
    """``models/NAME`` for a bare name; names with a collection (``tunedModels/x``) kept."""
    name = upstream_model.strip("/")
    if "/" not in name:
        name = f"models/{name}"
    return urllib.parse.quote(name, safe="/")


def _text_parts(content: Any) -> list[JSON]:
    """Text-only content (system, assistant) as Gemini text parts; empty text left out."""
    if isinstance(content, str):
        return [{"text": content}] if content else []
    if isinstance(content, list):
        return [
            {"text": part["text"]}
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str) and part["text"]
        ]
    return []


def _guess_mime(url: str, default: str) -> str:
    path = urllib.parse.urlsplit(url).path.lower()
    dot = path.rfind(".")
    if dot >= 0 and "/" not in path[dot:]:
        ext = path[dot:]
        if ext in _IMAGE_TYPES:
            return _IMAGE_TYPES[ext]
        guessed, _ = mimetypes.guess_type(path)
        if guessed:
            return guessed
    return default


def _media_part(url: Any, default_mime: str) -> JSON:
    if not isinstance(url, str) or not url:
        raise UnsupportedRequest("media part without a URL")
    if url.startswith("data:"):
        mime, data = common.data_url(url, "a content part")
        return {"inlineData": {"mimeType": mime, "data": data}}
    if url.lower().startswith(("http://", "https://")):
        return {"fileData": {"mimeType": _guess_mime(url, default_mime), "fileUri": url}}
    raise UnsupportedRequest("media URLs must be data: or http(s) URLs")


def _user_parts(content: Any) -> list[JSON]:
    """A user message's content as Gemini parts (text, images, audio, files)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    if not isinstance(content, list):
        raise UnsupportedRequest("message content must be a string or a list of parts")
    parts: list[JSON] = []
    for part in content:
        if not isinstance(part, dict):
            raise UnsupportedRequest("content parts must be objects")
        kind = part.get("type")
        if kind == "text":
            text = part.get("text")
            if isinstance(text, str) and text:
                parts.append({"text": text})
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            parts.append(_media_part(url, "image/jpeg"))
        elif kind == "input_audio":
            audio = part.get("input_audio")
            audio = audio if isinstance(audio, dict) else {}
            data, fmt = audio.get("data"), audio.get("format")
            if not isinstance(data, str) or not isinstance(fmt, str):
                raise UnsupportedRequest("input_audio parts need data and format")
            parts.append({"inlineData": {"mimeType": f"audio/{fmt.lower()}", "data": data}})
        elif kind == "file":
            file = part.get("file")
            data = file.get("file_data") if isinstance(file, dict) else None
            if not isinstance(data, str) or not data.startswith("data:"):
                raise UnsupportedRequest("file parts must carry file_data as a data: URL")
            parts.append(_media_part(data, "application/octet-stream"))
        else:
            raise UnsupportedRequest(f"content parts of type {kind!r} are not supported")
    return parts


def _call_args(arguments: Any) -> JSON:
    """OpenAI's arguments string as the object Gemini wants."""
    if isinstance(arguments, dict):
        return arguments
    if not isinstance(arguments, str) or not arguments.strip():
        return {}
    try:
        value = json.loads(arguments)
    except ValueError:
        return {"arguments": arguments}
    return value if isinstance(value, dict) else {"arguments": value}


def _function_response(name: str, content: Any) -> JSON:
    text = common.text_of(content)
    try:
        value: Any = json.loads(text)
    except ValueError:
        value = {"result": text}
    return {"functionResponse": {"name": name, "response": {"content": value}}}


class _Contents:
    """Builds ``contents``: one list of parts per turn, same-role turns merged."""

    def __init__(self, signatures: SignatureCache) -> None:
        self.turns: list[JSON] = []
        self.call_names: dict[str, str] = {}
        self._signatures = signatures

    def add(self, role: str, parts: list[JSON]) -> None:
        if not parts:
            return
        if self.turns and self.turns[-1]["role"] == role:
            self.turns[-1]["parts"].extend(parts)
        else:
            self.turns.append({"role": role, "parts": parts})

    def assistant(self, message: JSON) -> None:
        parts = _text_parts(message.get("content"))
        calls = message.get("tool_calls")
        legacy = message.get("function_call")
        if not calls and isinstance(legacy, dict):
            calls = [{"type": "function", "function": legacy}]
        signed = False
        for call in calls if isinstance(calls, list) else ():
            fn = call.get("function") if isinstance(call, dict) else None
            name = fn.get("name") if isinstance(fn, dict) else None
            if not isinstance(fn, dict) or not isinstance(name, str) or not name:
                raise UnsupportedRequest("assistant tool_calls must be function calls with a name")
            call_id = call.get("id")
            part: JSON = {"functionCall": {"name": name, "args": _call_args(fn.get("arguments"))}}
            signature = self._signatures.get(call_id) if isinstance(call_id, str) else None
            if signature is None and not signed:
                signature = PLACEHOLDER_SIGNATURE  # only the first call of a turn needs one
            if signature is not None:
                part["thoughtSignature"] = signature
                signed = True
            if isinstance(call_id, str):
                self.call_names[call_id] = name
            parts.append(part)
        self.add("model", parts)

    def tool_result(self, message: JSON) -> None:
        call_id = message.get("tool_call_id")
        name = self.call_names.get(call_id) if isinstance(call_id, str) else None
        name = name or message.get("name")
        if not isinstance(name, str) or not name:
            name = "unknown"
        self.add("user", [_function_response(name, message.get("content"))])


def _contents(messages: Any, signatures: SignatureCache) -> tuple[list[JSON], list[JSON]]:
    """(system instruction parts, contents) of an OpenAI ``messages`` list."""
    if not isinstance(messages, list):
        raise UnsupportedRequest("messages must be a list")
    system: list[JSON] = []
    contents = _Contents(signatures)
    for message in messages:
        if not isinstance(message, dict):
            raise UnsupportedRequest("messages must be objects")
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(_text_parts(message.get("content")))
        elif role == "user":
            contents.add("user", _user_parts(message.get("content")))
        elif role == "assistant":
            contents.assistant(message)
        elif role in ("tool", "function"):
            contents.tool_result(message)
        else:
            raise UnsupportedRequest(f"messages with role {role!r} are not supported")
    return system, contents.turns


def _ref_target(ref: str, defs: JSON) -> Any:
    for prefix in ("#/$defs/", "#/definitions/"):
        if ref.startswith(prefix):
            return defs.get(ref[len(prefix) :])
    return None


def _enum_values(values: list[Any]) -> list[str]:
    """Gemini enums are strings, also for numbers ({type: INTEGER, enum: ["101"]})."""
    return [v if isinstance(v, str) else json.dumps(v) for v in values if v is not None]


def gemini_schema(
    schema: Any, defs: JSON | None = None, seen: frozenset[str] = frozenset()
) -> JSON:
    """A JSON Schema cut down to the OpenAPI subset Gemini's ``Schema`` accepts."""
    if not isinstance(schema, dict):
        return {}
    if defs is None:
        found = schema.get("$defs") or schema.get("definitions")
        defs = found if isinstance(found, dict) else {}
    ref = schema.get("$ref")
    if isinstance(ref, str):
        target = _ref_target(ref, defs)
        if not isinstance(target, dict) or ref in seen:
            return {"type": "object"}  # unresolvable or recursive: leave it open
        merged = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        return gemini_schema(merged, defs, seen | {ref})
    out: JSON = {}
    for key, value in schema.items():
        if key == "type" and isinstance(value, list):
            kinds = [k for k in value if k != "null"]
            if len(kinds) < len(value):
                out["nullable"] = True
            if len(kinds) == 1:
                out["type"] = kinds[0]
            elif kinds:
                out["anyOf"] = [{"type": k} for k in kinds]
        elif key == "properties" and isinstance(value, dict):
            out["properties"] = {n: gemini_schema(s, defs, seen) for n, s in value.items()}
        elif key == "items" and isinstance(value, dict):
            out["items"] = gemini_schema(value, defs, seen)
        elif key in ("anyOf", "oneOf") and isinstance(value, list):
            options = [s for s in value if not (isinstance(s, dict) and s.get("type") == "null")]
            if len(options) < len(value):
                out["nullable"] = True
            if len(options) == 1:
                out.update(gemini_schema(options[0], defs, seen))
            elif options:
                out["anyOf"] = [gemini_schema(s, defs, seen) for s in options]
        elif key == "allOf" and isinstance(value, list) and len(value) == 1:
            out.update(gemini_schema(value[0], defs, seen))
        elif key == "const" and value is not None:
            out["enum"] = _enum_values([value])
        elif key == "enum" and isinstance(value, list):
            out["enum"] = _enum_values(value)
            if None in value:
                out["nullable"] = True
        elif key == "format":
            if value in _SCHEMA_FORMATS:
                out["format"] = value
        elif key == "required" and isinstance(value, list):
            out["required"] = value
        elif key in _SCHEMA_KEYS:
            out[key] = value
    props = out.get("properties")
    if isinstance(props, dict) and isinstance(out.get("required"), list):
        out["required"] = [n for n in out["required"] if n in props]
    return out


def _declaration(fn: Any) -> JSON:
    name = fn.get("name") if isinstance(fn, dict) else None
    if not isinstance(fn, dict) or not isinstance(name, str) or not name:
        raise UnsupportedRequest("function tools need a name")
    decl: JSON = {"name": name}
    description = fn.get("description")
    if isinstance(description, str) and description:
        decl["description"] = description
    params = fn.get("parameters")
    if isinstance(params, dict):
        schema = gemini_schema(params)
        if schema.get("properties") or schema.get("type") not in ("object", "OBJECT"):
            decl["parameters"] = schema
    return decl


def _declarations(body: JSON) -> list[JSON]:
    decls: list[JSON] = []
    tools = body.get("tools")
    for tool in tools if isinstance(tools, list) else ():
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            kind = tool.get("type") if isinstance(tool, dict) else None
            raise UnsupportedRequest(f"tools of type {kind!r} are not supported")
        decls.append(_declaration(tool.get("function")))
    functions = body.get("functions")  # the deprecated pre-tools form
    if not decls and isinstance(functions, list):
        decls = [_declaration(fn) for fn in functions]
    return decls


def _choice_name(choice: JSON) -> str | None:
    fn = choice.get("function")
    name = fn.get("name") if isinstance(fn, dict) else choice.get("name")
    return name if isinstance(name, str) and name else None


def _tool_config(body: JSON, decls: list[JSON]) -> tuple[JSON | None, list[JSON]]:
    """(functionCallingConfig or None, the declarations to send) for tool_choice."""
    choice = body.get("tool_choice")
    if choice is None:
        choice = body.get("function_call")
    if choice is None or not decls:
        return None, decls
    if choice == "auto":
        return {"mode": "AUTO"}, decls
    if choice == "none":
        return {"mode": "NONE"}, decls
    if choice in ("required", "any"):
        return {"mode": "ANY"}, decls
    if isinstance(choice, dict):
        if choice.get("type") == "allowed_tools":
            allowed = choice.get("allowed_tools")
            allowed = allowed if isinstance(allowed, dict) else {}
            names = [
                n
                for t in allowed.get("tools") or ()
                if isinstance(t, dict) and (n := _choice_name(t))
            ]
            if allowed.get("mode") == "required":
                return {"mode": "ANY", "allowedFunctionNames": names}, decls
            # AUTO takes no allowedFunctionNames: offer only the allowed functions instead.
            return {"mode": "AUTO"}, [d for d in decls if d["name"] in names]
        name = _choice_name(choice)
        if name is not None:
            return {"mode": "ANY", "allowedFunctionNames": [name]}, decls
    raise UnsupportedRequest(f"tool_choice {choice!r} is not supported")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _generation_config(body: JSON) -> JSON:
    config: JSON = {}
    if _number(body.get("temperature")):
        config["temperature"] = body["temperature"]
    if _number(body.get("top_p")):
        config["topP"] = body["top_p"]
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            config["maxOutputTokens"] = value
            break
    stop = body.get("stop")
    if isinstance(stop, str) and stop:
        config["stopSequences"] = [stop]
    elif isinstance(stop, list) and stop:
        config["stopSequences"] = [s for s in stop if isinstance(s, str) and s]
    seed = body.get("seed")
    if isinstance(seed, int) and not isinstance(seed, bool):
        config["seed"] = seed
    fmt = body.get("response_format")
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "json_object":
        config["responseMimeType"] = "application/json"
    elif kind == "json_schema":
        config["responseMimeType"] = "application/json"
        spec = fmt.get("json_schema") if isinstance(fmt, dict) else None
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if isinstance(schema, dict):
            config["responseSchema"] = gemini_schema(schema)
    return config


def generate_request(body: JSON, signatures: SignatureCache | None = None) -> JSON:
    """The ``GenerateContentRequest`` for an OpenAI chat-completions body."""
    system, contents = _contents(body.get("messages"), signatures or SignatureCache())
    request: JSON = {"contents": contents}
    if system:
        request["systemInstruction"] = {"parts": system}
    decls = _declarations(body)
    calling, decls = _tool_config(body, decls)
    if decls:
        request["tools"] = [{"functionDeclarations": decls}]
        if calling is not None:
            request["toolConfig"] = {"functionCallingConfig": calling}
    config = _generation_config(body)
    if config:
        request["generationConfig"] = config
    return request


# -- answers ----------------------------------------------------------------------------


def finish_reason(reason: Any, tool_calls: bool) -> str:
    """OpenAI's finish_reason for a Gemini finishReason (a function call wins)."""
    if tool_calls:
        return "tool_calls"
    return _FINISH_REASONS.get(reason, "stop") if isinstance(reason, str) else "stop"


_USAGE_KEYS = (
    "promptTokenCount",
    "toolUsePromptTokenCount",
    "thoughtsTokenCount",
    "candidatesTokenCount",
    "totalTokenCount",
    "cachedContentTokenCount",
)


def openai_usage(meta: Any) -> JSON | None:
    """``usage`` from ``usageMetadata``; None when the answer carried none."""
    if not isinstance(meta, dict):
        return None
    counts = common.token_counts(meta, *_USAGE_KEYS)
    if counts is None:
        return None  # an implausible count: treated as no usage, the ledger estimates
    prompt_only, tool_prompt, thoughts, candidates, total, cached = counts
    prompt = prompt_only + tool_prompt
    completion = candidates + thoughts
    usage: JSON = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": total or prompt + completion,
    }
    if thoughts:
        usage["completion_tokens_details"] = {"reasoning_tokens": thoughts}
    if cached:
        usage["prompt_tokens_details"] = {"cached_tokens": cached}
    return usage


def _candidate(response: JSON) -> JSON | None:
    candidates = response.get("candidates")
    if not isinstance(candidates, list):
        return None
    for candidate in candidates:
        if isinstance(candidate, dict) and candidate.get("index", 0) == 0:
            return candidate
    return None


def _parts(candidate: JSON | None) -> list[JSON]:
    content = candidate.get("content") if candidate else None
    parts = content.get("parts") if isinstance(content, dict) else None
    return [p for p in parts if isinstance(p, dict)] if isinstance(parts, list) else []


def _blocked(response: JSON) -> bool:
    feedback = response.get("promptFeedback")
    return isinstance(feedback, dict) and bool(feedback.get("blockReason"))


def call_id(response_id: str, index: int, call: JSON) -> str:
    """A tool call id: Gemini's own when it sent one, else derived from the answer."""
    given = call.get("id")
    if isinstance(given, str) and given:
        return given
    args = json.dumps(call.get("args"), sort_keys=True)
    seed = f"{response_id}|{index}|{call.get('name')}|{args}"
    return f"call_{index}_{hashlib.sha256(seed.encode()).hexdigest()[:16]}"


class _Calls:
    """Turns functionCall parts into OpenAI tool calls, remembering their signatures."""

    def __init__(self, response_id: str, signatures: SignatureCache) -> None:
        self.response_id = response_id
        self.count = 0
        self._signatures = signatures

    def take(self, part: JSON) -> JSON | None:
        fn = part.get("functionCall")
        if not isinstance(fn, dict):
            return None
        index = self.count
        self.count += 1
        cid = call_id(self.response_id, index, fn)
        signature = part.get("thoughtSignature")
        if isinstance(signature, str) and signature:
            self._signatures.put(cid, signature)
        args = fn.get("args")
        return {
            "index": index,
            "id": cid,
            "type": "function",
            "function": {
                "name": str(fn.get("name") or ""),
                "arguments": json.dumps(args if isinstance(args, dict) else {}, ensure_ascii=False),
            },
        }


def _text(part: JSON) -> str | None:
    text = part.get("text")
    return text if isinstance(text, str) and text and not part.get("thought") else None


def _response_id(response: JSON) -> str:
    rid = response.get("responseId")
    return rid if isinstance(rid, str) and rid else secrets.token_hex(12)


def completion(
    response: JSON, upstream_model: str, created: int, signatures: SignatureCache
) -> JSON:
    """An OpenAI ``chat.completion`` for a whole ``GenerateContentResponse``."""
    response_id = _response_id(response)
    candidate = _candidate(response)
    calls = _Calls(response_id, signatures)
    texts: list[str] = []
    tool_calls: list[JSON] = []
    for part in _parts(candidate):
        text = _text(part)
        if text is not None:
            texts.append(text)
        call = calls.take(part)
        if call is not None:
            del call["index"]
            tool_calls.append(call)
    if candidate is None and _blocked(response):
        reason = "content_filter"
    else:
        reason = finish_reason(
            candidate.get("finishReason") if candidate else None, bool(tool_calls)
        )
    message: JSON = {
        "role": "assistant",
        "content": "".join(texts) if texts or not tool_calls else None,
        "refusal": None,
    }
    if tool_calls:
        message["tool_calls"] = tool_calls
    out: JSON = {
        "id": f"chatcmpl-{response_id}",
        "object": "chat.completion",
        "created": created,
        "model": upstream_model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": reason}],
    }
    usage = openai_usage(response.get("usageMetadata"))
    if usage is not None:
        out["usage"] = usage
    return out


# -- errors -----------------------------------------------------------------------------


def error_object(payload: bytes) -> JSON | None:
    """The ``error`` object of a Gemini error body (also the ``[{"error": ...}]`` form)."""
    try:
        body = common.parse_json(payload)
    except UpstreamFormatError:
        return None
    if isinstance(body, list) and body:
        body = body[0]
    err = body.get("error") if isinstance(body, dict) else None
    return err if isinstance(err, dict) else None


def _error_detail(err: JSON) -> str:
    message, status = err.get("message"), err.get("status")
    message = message if isinstance(message, str) else ""
    status = status if isinstance(status, str) else ""
    text = f"{status}: {message}" if status and message else status or message
    return known_keys(text)[:_MAX_MESSAGE]


def _error_reasons(err: JSON) -> set[str]:
    details = err.get("details")
    if not isinstance(details, list):
        return set()
    return {
        d["reason"] for d in details if isinstance(d, dict) and isinstance(d.get("reason"), str)
    }


def retry_delay_s(payload: bytes) -> float | None:
    """Seconds Gemini asks to wait (``RetryInfo.retryDelay``, e.g. "27s"), if it said."""
    err = error_object(payload)
    details = err.get("details") if err else None
    for detail in details if isinstance(details, list) else ():
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                return max(0.0, float(delay[:-1]))
            except ValueError:
                return None
    return None


# -- streams ----------------------------------------------------------------------------


class GeminiTranslator:
    """Gemini SSE (``data: {GenerateContentResponse}``, each one a delta) → OpenAI chunks.

    Gemini sends each function call whole, so each becomes one tool_calls delta carrying
    its id, name and complete arguments. The stream ended well once a candidate had a
    finishReason (or the prompt was blocked); only then does :meth:`close` add the usage
    chunk and ``[DONE]``.
    """

    def __init__(
        self,
        upstream_model: str,
        created: int,
        signatures: SignatureCache,
        max_event_bytes: int = DEFAULT_UPSTREAM_LIMITS.event_bytes,
    ) -> None:
        self._model = upstream_model
        self._created = created
        self._signatures = signatures
        self._events = sse.EventSplitter(max_event_bytes)
        self._id: str | None = None
        self._calls: _Calls | None = None
        self._usage: JSON | None = None
        self.finished = False
        self.error: str | None = None

    def feed(self, chunk: bytes) -> bytes:
        out: list[bytes] = []
        for event in self._events.feed(chunk):
            self._take(event, out)
        return b"".join(out)

    def close(self) -> bytes:
        out: list[bytes] = []
        last = self._events.close()  # a last event without its blank line still counts
        if last is not None:
            self._take(last, out)
        if not self.finished or self.error is not None:
            return b""
        if self._usage is not None:
            out.append(self._event({"choices": [], "usage": self._usage}))
        out.append(SSE_DONE)
        return b"".join(out)

    def _take(self, event: sse.Event, out: list[bytes]) -> None:
        # comments (":...") and other fields (event:, id:, retry:) carry nothing here
        data = sse.data_of(event)
        if data is not None:
            self._dispatch(data, out)

    def _dispatch(self, data: bytes, out: list[bytes]) -> None:
        try:
            payload = common.parse_json(data)
        except UpstreamFormatError:
            return
        for item in payload if isinstance(payload, list) else [payload]:
            if isinstance(item, dict):
                self._response(item, out)

    # -- events -------------------------------------------------------------------------

    def _event(self, fields: JSON) -> bytes:
        chunk: JSON = {
            "id": f"chatcmpl-{self._id}",
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            **fields,
        }
        return common.sse_data(chunk)

    def _delta(self, delta: JSON, finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return self._event({"choices": [choice]})

    def _response(self, response: JSON, out: list[bytes]) -> None:
        err = response.get("error")
        if isinstance(err, dict):
            status = err.get("status")
            self.error = _error_detail(err) or "upstream error"
            code = status if isinstance(status, str) else None
            out.append(sse_error(self.error, "upstream_error", code))
            return
        usage = openai_usage(response.get("usageMetadata"))
        if usage is not None:
            self._usage = usage
        if self.finished or self.error is not None:
            return
        if self._calls is None:
            self._id = _response_id(response)
            self._calls = _Calls(self._id, self._signatures)
            out.append(self._delta({"role": "assistant", "content": ""}))
        candidate = _candidate(response)
        for part in _parts(candidate):
            text = _text(part)
            if text is not None:
                out.append(self._delta({"content": text}))
            call = self._calls.take(part)
            if call is not None:
                out.append(self._delta({"tool_calls": [call]}))
        reason = candidate.get("finishReason") if candidate else None
        if reason:
            self.finished = True
            out.append(self._delta({}, finish_reason(reason, self._calls.count > 0)))
        elif candidate is None and _blocked(response):
            self.finished = True
            out.append(self._delta({}, "content_filter"))


# -- the wire ---------------------------------------------------------------------------


class GeminiWire:
    """Google's Gemini API (``{base_url}/models/{model}:generateContent``)."""

    def __init__(
        self, clock: Callable[[], float] = time.time, signatures: SignatureCache | None = None
    ) -> None:
        self._clock = clock
        self.signatures = signatures if signatures is not None else SignatureCache()

    def call(self, body: dict[str, Any], upstream_model: str) -> UpstreamCall:
        path = f"/{model_path(upstream_model)}"
        request = generate_request(body, self.signatures)
        if body.get("stream"):
            return UpstreamCall(f"{path}:streamGenerateContent", request, params={"alt": "sse"})
        return UpstreamCall(f"{path}:generateContent", request)

    def answer(self, payload: bytes, upstream_model: str) -> bytes:
        response = common.parse_json(payload)
        if not isinstance(response, dict) or "error" in response:
            raise UpstreamFormatError("the upstream's answer is not a GenerateContentResponse")
        created = int(self._clock())
        return common.dumps(completion(response, upstream_model, created, self.signatures))

    def translator(
        self, upstream_model: str, max_event_bytes: int = DEFAULT_UPSTREAM_LIMITS.event_bytes
    ) -> GeminiTranslator:
        created = int(self._clock())
        return GeminiTranslator(upstream_model, created, self.signatures, max_event_bytes)

    def error_message(self, status: int, payload: bytes) -> str:
        err = error_object(payload)
        detail = _error_detail(err) if err else None
        return known_keys(error_text(status, payload, detail))

    def retry_after(self, payload: bytes) -> str | None:
        delay = retry_delay_s(payload)
        return None if delay is None else f"{delay:g}"

    def retryable(self, status: int, payload: bytes) -> bool:
        """Fail over on rate limits, overload, server errors and this backend's own setup
        (401/403 key or permission, 404 model name); not on the request's own faults.

        Gemini answers a bad key with 400 INVALID_ARGUMENT (reason API_KEY_INVALID): that is
        the backend's key, not the request, so it fails over too. Other 400s
        (INVALID_ARGUMENT, FAILED_PRECONDITION), 413 and 422 are the request's.
        """
        if status >= 500 or status in _BACKEND_FAULT:
            return True
        err = error_object(payload)
        if err is None:
            return False
        if err.get("status") in _TRANSIENT_STATUSES:
            return True
        return "API_KEY_INVALID" in _error_reasons(err)
