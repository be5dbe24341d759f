"""The request journal: every finished request's row, appended before it is acknowledged.

Appending a JSON line to a file costs microseconds and survives the process being
killed (the bytes are in the kernel's page cache once ``write`` returns), so the request
path writes here synchronously and never waits for SQLite. The ledger moves rows from
closed journal segments into ``request_log`` in batched transactions and deletes a
segment only once its rows are committed; a segment left behind by a crash is simply
moved on the next start. Rows carry a unique ``request_id`` and are inserted with
``ON CONFLICT DO NOTHING``, so moving a segment twice is harmless.

While the store is away (a PostgreSQL outage, a locked SQLite), a segment waits to be
moved; new rows then go on into the open segment until it holds :data:`SEGMENT_BYTES`,
instead of a new segment at every flush (four a second), so an hour's outage leaves a
few files, not thousands.

Out of file descriptors (or disk), nothing is lost: :meth:`Journal.rotate` keeps
appending to the open segment, and :func:`read_segment` raises
:class:`~llmswitch.store.errors.StoreUnavailable` so the ledger tries again later.
Segments are 0600 in a 0700 directory: they hold what the ledger holds.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

from llmswitch.store.errors import StoreUnavailable, is_transient
from llmswitch.store.request_log import RequestRow

log = logging.getLogger(__name__)

SUFFIX = ".jsonl"
#: A segment closes at a flush once it holds anything, or, while an earlier one waits to
#: be moved, once it holds this much (a store outage's rows in few files).
SEGMENT_BYTES = 4 * 1024 * 1024


def journal_dir(db_path: str, worker: int = 0) -> Path:
    """Beside the database (``llmswitch.db.journal/``); a private temp dir for ``:memory:``.

    Worker ``n > 0`` of several (``server.workers``) has its own ``w<n>/`` inside it:
    segments are numbered per directory, so two writers in one would collide.
    """
    if db_path == ":memory:":
        return Path(tempfile.mkdtemp(prefix="llmswitch-journal-"))
    main = Path(f"{db_path}.journal")
    return main / f"w{worker}" if worker else main


def adopt_orphans(directory: Path, workers: int) -> None:
    """Move into ``directory`` the segments of workers this fleet no longer runs.

    Worker 0 (or the only process) calls it before listing its segments: after
    ``server.workers`` went from 4 to 2, ``w2/`` and ``w3/`` hold rows no worker would
    ever move into the store. They take the next numbers here, oldest first.
    """
    seq = max((int(p.stem) for p in directory.glob(f"*{SUFFIX}") if p.stem.isdigit()), default=0)
    for sub in sorted(directory.glob("w*")):
        if not (sub.is_dir() and sub.name[1:].isdigit() and int(sub.name[1:]) >= workers):
            continue
        for segment in sorted(p for p in sub.glob(f"*{SUFFIX}") if p.stem.isdigit()):
            seq += 1
            segment.rename(directory / f"{seq:012d}{SUFFIX}")
        log.info("journal: adopted the segments of %s (no such worker now)", sub.name)


class Journal:
    def __init__(self, directory: Path, *, adopt_beyond: int | None = None) -> None:
        """``adopt_beyond``: worker 0's journal of a fleet that size (1: a lone process)
        takes over the segments of the workers past it (:func:`adopt_orphans`)."""
        self.directory = directory
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if adopt_beyond is not None:
            adopt_orphans(directory, adopt_beyond)
        # Listed once: listing a directory takes a descriptor, which may be short later.
        self._closed = sorted(p for p in directory.glob(f"*{SUFFIX}") if p.stem.isdigit())
        self._seq = max((int(p.stem) for p in self._closed), default=0)
        self._fd = self._open_next()
        self._bytes = 0
        #: Out of descriptors at the last rotation (said once, not at every flush).
        self._short = False

    def _open_next(self) -> int:
        """Open the next segment; the sequence moves on only once it is open."""
        fd = os.open(self._segment(self._seq + 1), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._seq += 1
        return fd

    def _segment(self, seq: int) -> Path:
        return self.directory / f"{seq:012d}{SUFFIX}"

    def append(self, row: RequestRow) -> None:
        line = json.dumps(row.as_dict(), separators=(",", ":")) + "\n"
        self._bytes += os.write(self._fd, line.encode())

    def rotate(self) -> list[Path]:
        """Close the current segment if it holds anything (see :data:`SEGMENT_BYTES`);
        every closed segment, oldest first."""
        # Segments the ledger has moved are gone (it deletes them); checking takes no fd.
        self._closed = [p for p in self._closed if p.exists()]
        if self._bytes and (not self._closed or self._bytes >= SEGMENT_BYTES):
            try:
                fd = self._open_next()
            except OSError as exc:
                if not is_transient(exc):
                    raise
                # Keep writing where we are; the segment closes at a later rotation.
                if not self._short:
                    log.warning("journal: cannot open a new segment (%s); keeping this one", exc)
                self._short = True
            else:
                if self._short:
                    log.warning("journal: new segments open again")
                self._short = False
                os.close(self._fd)
                self._closed.append(self._segment(self._seq - 1))
                self._fd, self._bytes = fd, 0
        return list(self._closed)

    def waiting(self) -> bool:
        """Whether a closed segment waits to be moved (the open one is held back)."""
        return any(p.exists() for p in self._closed)

    def holds_rows(self) -> bool:
        """Whether rows wait here: an unmoved segment, or an open one written to."""
        return bool(self._bytes) or self.waiting()

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def read_segment(path: Path) -> list[RequestRow]:
    """The rows of one segment; a torn last line (a kill mid-write) is skipped."""
    rows = []
    try:
        f = path.open(encoding="utf-8")
    except OSError as exc:
        if not is_transient(exc):
            raise
        raise StoreUnavailable(f"journal {path.name}: {exc}") from exc
    with f:
        for n, line in enumerate(f, 1):
            try:
                rows.append(RequestRow(**json.loads(line)))
            except (ValueError, TypeError):
                log.warning("journal %s line %d is not a row; skipped", path.name, n)
    return rows
