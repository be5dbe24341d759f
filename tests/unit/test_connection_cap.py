from __future__ import annotations

from llmswitch.front.listen import RESERVED_FDS, connection_cap


def test_the_configured_cap_holds_when_descriptors_are_plenty() -> None:
    assert connection_cap(4096, 1 << 20) == 4096


def test_the_cap_leaves_reserved_descriptors_and_one_upstream_socket_per_connection() -> None:
    assert connection_cap(4096, 1024) == (1024 - RESERVED_FDS) // 2


def test_the_cap_is_never_below_one() -> None:
    assert connection_cap(4096, 10) == 1
