"""Each worker journals in its own directory; worker 0 adopts what retired workers left."""

from __future__ import annotations

from pathlib import Path

from llmswitch.store.journal import Journal, journal_dir, read_segment
from llmswitch.store.request_log import RequestRow


def row(request_id: str) -> RequestRow:
    return RequestRow(request_id=request_id, ts=1.0, status=200, stream=False)


def test_each_worker_has_its_own_directory_and_a_lone_process_keeps_the_old_one() -> None:
    assert journal_dir("/var/lib/x.db") == Path("/var/lib/x.db.journal")
    assert journal_dir("/var/lib/x.db", 0) == Path("/var/lib/x.db.journal")
    assert journal_dir("/var/lib/x.db", 2) == Path("/var/lib/x.db.journal/w2")


def test_worker_0_adopts_the_segments_of_workers_the_fleet_no_longer_runs(tmp_path: Path) -> None:
    db = str(tmp_path / "ledger.db")
    # A fleet of 4 ran: worker 0, 1 and 3 left rows behind.
    for worker, ids in ((0, ["a"]), (1, ["b"]), (3, ["c", "d"])):
        journal = Journal(journal_dir(db, worker))
        for request_id in ids:
            journal.append(row(request_id))
            journal.rotate()
        journal.close()
    # Now 2 workers: worker 0 takes over w3's segments; w1 is still a live worker's.
    main = Journal(journal_dir(db, 0), adopt_beyond=2)
    segments = main.rotate()
    main.close()
    adopted = [r.request_id for s in segments for r in read_segment(s)]
    assert adopted == ["a", "c", "d"]
    assert list((tmp_path / "ledger.db.journal" / "w3").iterdir()) == []
    assert [p.name for p in (tmp_path / "ledger.db.journal" / "w1").iterdir()]
