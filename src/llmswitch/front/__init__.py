"""The HTTP front end: quart-trio app, SSE relay, OpenAI-style errors."""
