"""Which wire format each backend kind speaks."""

from __future__ import annotations

from llmswitch.providers.anthropic import AnthropicWire
from llmswitch.providers.gemini import GeminiWire
from llmswitch.providers.openai import OpenAIWire
from llmswitch.providers.wire import Wire

_WIRES: dict[str, Wire] = {
    "openai": OpenAIWire(),
    "ollama": OpenAIWire(),
    "anthropic": AnthropicWire(),
    "gemini": GeminiWire(),
}


def wire_for(kind: str) -> Wire:
    return _WIRES[kind]
