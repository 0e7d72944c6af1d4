"""`make demo` runs `emailqueue demo`: it must deliver, dead-letter the one rejection, and clean up."""

from __future__ import annotations

import re
import socket
import subprocess
import sys


def test_demo_runs_end_to_end_and_cleans_up() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "emailqueue", "demo", "--count", "30"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert "demo OK: 31 delivered, 1 dead letter" in out
    assert "sent 31/31" in out
    assert "reject@example.com: 550" in out
    assert "emailqueue failed retry" in out
    assert "workers stopped with exit codes [0, 0]" in out
    port = int(re.search(r"redis://127\.0\.0\.1:(\d+)/0", out).group(1))  # type: ignore[union-attr]
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0, "the demo left its Redis server running"
