from __future__ import annotations

from pathlib import Path

import pytest
import trio

from tests.e2e.harness import Stack, start_stack


@pytest.fixture
async def stack(nursery: trio.Nursery, tmp_path: Path) -> Stack:
    return await start_stack(nursery, tmp_path)
