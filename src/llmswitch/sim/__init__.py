"""Simulated LLM backends speaking real wire formats, with fault knobs."""
