"""A file-descriptor shortage on demand: EMFILE for files opened under one directory.

SQLite's own opens are in C and out of reach; the store's first open of a database file
and every journal open go through ``os.open`` or ``Path.open`` and are not.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest


class Shortage:
    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.on = False
        self.refused = 0
        real_os_open, real_path_open = os.open, Path.open

        def check(path: Any) -> None:
            if self.on and os.fspath(path).startswith(os.fspath(root)):
                self.refused += 1
                raise OSError(errno.EMFILE, os.strerror(errno.EMFILE), os.fspath(path))

        def os_open(path: Any, *args: Any, **kwargs: Any) -> int:
            check(path)
            return real_os_open(path, *args, **kwargs)

        def path_open(path: Path, *args: Any, **kwargs: Any) -> Any:
            check(path)
            return real_path_open(path, *args, **kwargs)

        monkeypatch.setattr(os, "open", os_open)
        monkeypatch.setattr(Path, "open", path_open)
