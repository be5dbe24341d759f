"""llmswitch: a self-hosted LLM routing gateway built as supervised trio actors."""

__version__ = "0.1.0"
