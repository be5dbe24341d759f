"""Start-up mistakes end in one line with the fix and a documented exit code, never a
traceback: the real CLI in a subprocess (bounded), as a new user runs it."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

#: Each run ends by itself within seconds (it fails before serving); this only bounds a bug.
RUN_TIMEOUT_S = 60

MODELS = """
[[backends]]
name = "laptop"
base_url = "http://127.0.0.1:1/v1"

[[models]]
id = "m"
backend = "laptop"
"""


def llmswitch(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llmswitch", *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )


def one_line(run: subprocess.CompletedProcess[str]) -> str:
    """The one line on stderr that is not a log line; asserts there is no traceback."""
    assert "Traceback" not in run.stderr and "Exception" not in run.stderr
    lines = [line for line in run.stderr.splitlines() if line.startswith("llmswitch: ")]
    assert len(lines) == 1, run.stderr
    return lines[0]


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port something else is listening on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def write_config(path: Path, port: int, store: str = "llmswitch.db") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f'[server]\nport = {port}\n[store]\npath = "{store}"\n{MODELS}', encoding="utf-8"
    )
    return path


def test_a_port_in_use_says_how_to_change_it(tmp_path: Path, busy_port: int) -> None:
    config = write_config(tmp_path / "llmswitch.toml", busy_port)
    run = llmswitch("serve", "--config", str(config), cwd=tmp_path)
    assert run.returncode == 3
    line = one_line(run)
    assert f"127.0.0.1:{busy_port} is already in use" in line
    assert "set [server] port or `--port`" in line


def test_serve_port_flag_wins_over_the_config(tmp_path: Path, busy_port: int) -> None:
    config = write_config(tmp_path / "llmswitch.toml", 8080)
    run = llmswitch("serve", "--config", str(config), "--port", str(busy_port), cwd=tmp_path)
    assert run.returncode == 3
    assert f":{busy_port} is already in use" in one_line(run)
    bad = llmswitch("serve", "--config", str(config), "--port", "http", cwd=tmp_path)
    assert bad.returncode == 2 and "'http' is not a port number" in bad.stderr


def test_demo_prints_its_banner_only_once_listening(tmp_path: Path, busy_port: int) -> None:
    run = llmswitch("demo", "--port", str(busy_port), "--store", "demo.db", cwd=tmp_path)
    assert run.returncode == 3
    assert "is already in use" in one_line(run)
    assert "Try:" not in run.stdout


@pytest.mark.parametrize(
    ("store", "message"),
    [
        ("adir", "/adir' is a directory; name a file in it, e.g. '"),
        ("notdb.db", "notdb.db: not a usable SQLite database"),
        ("/proc/llmswitch-test/x.db", "/proc/llmswitch-test/x.db: cannot open database"),
    ],
)
def test_an_unusable_store_is_one_line_and_exit_3(tmp_path: Path, store: str, message: str) -> None:
    (tmp_path / "adir").mkdir()
    (tmp_path / "notdb.db").write_bytes(b"not a database, only text " * 40)
    config = write_config(tmp_path / "llmswitch.toml", 0, store)
    run = llmswitch("serve", "--config", str(config), cwd=tmp_path)
    assert run.returncode == 3
    line = one_line(run)
    assert message in line
    assert "set [store] path" in line or "name a file in it" in line


def test_a_missing_config_is_exit_2_and_suggests_init(tmp_path: Path) -> None:
    run = llmswitch("serve", "--config", "nowhere.toml", cwd=tmp_path)
    assert run.returncode == 2
    assert "nowhere.toml: no such file (try `llmswitch init nowhere.toml`)" in one_line(run)


def test_a_bad_config_is_exit_2_in_one_message(tmp_path: Path) -> None:
    config = tmp_path / "llmswitch.toml"
    config.write_text(f'[routing]\nmetered_cloud = ["coding"]\n{MODELS}', encoding="utf-8")
    run = llmswitch("serve", "--config", str(config), cwd=tmp_path)
    assert run.returncode == 2
    assert "unknown task type 'coding'; did you mean 'code'?" in one_line(run)
