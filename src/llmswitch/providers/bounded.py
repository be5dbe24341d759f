"""Reading an upstream's body without letting it decide how much memory that takes.

A declared ``Content-Length`` over the limit fails before a byte is read; a body that
declares nothing (or lies) is counted as it arrives and abandoned past the limit.
"""

from __future__ import annotations

import httpx

from llmswitch.providers.common import UpstreamOverLimit


async def read_capped(response: httpx.Response, limit: int) -> bytes:
    """The (decoded) body of a streamed ``response``; UpstreamOverLimit past ``limit``."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise UpstreamOverLimit(f"the upstream declared {declared} bytes, over {limit}")
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > limit:
            raise UpstreamOverLimit(f"the upstream sent more than {limit} bytes")
    return bytes(body)
