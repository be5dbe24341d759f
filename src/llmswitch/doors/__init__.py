"""Client-facing dialects: the API shapes clients speak, over one OpenAI-shaped pipeline.

Inside, a request is an OpenAI chat-completions body and an answer is OpenAI JSON or SSE.
Each door reads its dialect into that and writes answers and errors back in its dialect:
``openai_chat`` (``/v1/chat/completions``, the identity), ``anthropic`` (``/v1/messages``).
:mod:`llmswitch.doors.door` binds each to the front end. Upstream wire formats, the other
direction, live apart in :mod:`llmswitch.providers`.
"""
