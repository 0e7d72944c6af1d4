"""Shared pieces of the benchmark: payload, sinks, process accounting, statistics.

Everything here talks to 127.0.0.1 only and every wait is bounded by a timeout.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
PEERS = BENCH / "peers"
VENVS = BENCH / ".venvs"
PY = sys.executable  # the project's venv (emailqueue installed editable)
EMAILQUEUE = str(Path(PY).with_name("emailqueue"))
SMTP_SINK = os.environ.get("SMTP_SINK", "/usr/sbin/smtp-sink")
FROM = "Shop <shop@example.com>"
QUEUE = "bench"

sys.path.insert(0, str(PEERS))
from mailpayload import email_dict  # noqa: E402, F401  (shared with the peers' venvs)

# ---- statistics ----------------------------------------------------------------------------


def pct(values: Sequence[float], q: float) -> float:
    """Percentile by nearest rank (q in 0..100)."""
    if not values:
        return float("nan")
    data = sorted(values)
    k = max(0, min(len(data) - 1, round(q / 100 * (len(data) - 1))))
    return data[k]


def mmm(values: Sequence[float]) -> dict[str, float]:
    """min / median / max of repeated measurements."""
    vals = [v for v in values if not math.isnan(v)]
    if not vals:
        return {"min": float("nan"), "median": float("nan"), "max": float("nan"), "n": 0}
    return {"min": min(vals), "median": statistics.median(vals), "max": max(vals), "n": len(vals)}


# ---- processes -----------------------------------------------------------------------------

_CLK = os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(x) for x in fh.read().split()]
    except OSError:
        return []


def tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(_children(p))
    return out


def cpu_seconds(pids: Sequence[int], children: bool = True) -> float:
    """utime + stime of the given processes (and all their descendants unless ``children=False``)."""
    total = 0.0
    for root in pids:
        for p in tree(root) if children else [root]:
            try:
                with open(f"/proc/{p}/stat") as fh:
                    parts = fh.read().rsplit(")", 1)[1].split()
                total += (int(parts[11]) + int(parts[12])) / _CLK
            except (OSError, IndexError, ValueError):
                pass
    return total


def rss_mb(pids: Sequence[int]) -> float:
    """Resident set size (MB) of the processes and their descendants."""
    total = 0
    for root in pids:
        for p in tree(root):
            try:
                with open(f"/proc/{p}/status") as fh:
                    for line in fh:
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1])
                            break
            except OSError:
                pass
    return total / 1024


def stop_process(proc: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
    """Stop a process we started (its own process group), escalating to SIGKILL."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(5)


def spawn(
    cmd: Sequence[str], env: dict[str, str] | None = None, cwd: str | Path | None = None, log: Path | None = None
):
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
    return subprocess.Popen(
        list(cmd),
        env={**os.environ, **(env or {})},
        cwd=cwd,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # own process group: stop_process() ends it and its children only
    )


# ---- SMTP sinks ----------------------------------------------------------------------------


class _CountingSink:
    """A sink process that prints ``... mesg=N\\r`` per accepted message (smtp-sink -c format)."""

    name = "?"

    def __init__(self) -> None:
        from emailqueue.localserver import free_port

        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._count = 0
        self._first: float | None = None  # perf_counter of the first count change after reset()
        self._last: float | None = None
        self._base = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def _cmd(self) -> list[str]:
        raise NotImplementedError

    @property
    def dsn(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"  # defaults: STARTTLS if offered (none of the sinks offers it)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> _CountingSink:
        with self._lock:
            self._count = self._base = 0
            self._first = self._last = None
        self.proc = subprocess.Popen(
            self._cmd(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
        )
        self._thread = threading.Thread(target=self._reader, daemon=True)
        self._thread.start()
        import socket

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    if s.recv(100).startswith(b"220"):
                        s.sendall(b"QUIT\r\n")
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not answer on port {self.port}")

    def _reader(self) -> None:
        assert self.proc is not None
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        tail = b""
        while True:
            try:
                chunk = os.read(fd, 1 << 20)
            except OSError:
                return
            if not chunk:
                return
            now = time.perf_counter()
            data = tail + chunk
            pos = data.rfind(b"mesg=")
            if pos >= 0:
                end = pos + 5
                while end < len(data) and 48 <= data[end] <= 57:
                    end += 1
                if end < len(data):  # number complete
                    n = int(data[pos + 5 : end])
                    with self._lock:
                        if n > self._count:
                            if self._first is None and n > self._base:
                                self._first = now
                            self._count = n
                            self._last = now
                    tail = b""
                else:
                    tail = data[pos:]
            # batch reads: one wake-up per 5 ms instead of one per message
            time.sleep(0.005)

    def reset(self) -> None:
        """Start a new measurement window at the current count."""
        with self._lock:
            self._base = self._count
            self._first = None
            self._last = None

    def window(self) -> tuple[int, float | None, float | None]:
        """(accepted since reset, perf_counter of first, of last acceptance)."""
        with self._lock:
            return self._count - self._base, self._first, self._last

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, timeout=5)
            self.proc = None


class SmtpSink(_CountingSink):
    """Postfix's smtp-sink: C, event-driven, offers PIPELINING; the fast sink."""

    name = "smtp-sink"

    def __init__(self, dump_dir: str | None = None) -> None:
        super().__init__()
        self.dump_dir = dump_dir

    @staticmethod
    def available() -> bool:
        return os.access(SMTP_SINK, os.X_OK)

    def _cmd(self) -> list[str]:
        cmd = [SMTP_SINK, "-c", "-m", "1024"]
        if os.geteuid() == 0:
            cmd += ["-u", "nobody"]  # required when run as root: drops privileges after bind
        if self.dump_dir:
            cmd += ["-d", f"{self.dump_dir}/m."]
        return [*cmd, f"127.0.0.1:{self.port}", "4096"]


class AioSink(_CountingSink):
    """aiosmtpd (pure Python asyncio) in its own process: the slow, realistic sink."""

    name = "aiosmtpd"

    def __init__(self, delay_s: float = 0.0) -> None:
        super().__init__()
        self.delay_s = delay_s

    def _cmd(self) -> list[str]:
        return [PY, str(BENCH / "aiosink.py"), "--port", str(self.port), "--delay", str(self.delay_s)]


class LatSink(_CountingSink):
    """bench/latsink.py: a minimal uvloop SMTP server that timestamps each acceptance (latency probe)."""

    name = "latsink"

    def __init__(self, out: Path) -> None:
        super().__init__()
        self.out = out

    def _cmd(self) -> list[str]:
        return [PY, str(BENCH / "latsink.py"), "--port", str(self.port), "--out", str(self.out)]

    def stats(self) -> dict[str, Any]:
        import json

        return json.loads(self.out.read_text()) if self.out.exists() else {}

    def latencies(self) -> list[float]:
        return list(self.stats().get("latencies_ms", []))


def smtp_sink_missing_message() -> str:
    return (
        f"Postfix's smtp-sink was not found at {SMTP_SINK}.\n"
        "Install it (Debian/Ubuntu) without starting the postfix daemon:\n"
        "  echo 'exit 101' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d\n"
        "  DEBIAN_FRONTEND=noninteractive apt-get install -y postfix\n"
        "  rm /usr/sbin/policy-rc.d\n"
        "or point SMTP_SINK=/path/to/smtp-sink at a copy. Only the smtp-sink binary is used."
    )


# ---- peers' virtualenvs ----------------------------------------------------------------------

PEER_REQUIREMENTS = {
    # Each peer gets its own venv: arq pins redis<6 and celery pins python-dateutil==2.9.0.post0,
    # both of which conflict with the project's own environment (redis 8, kubernetes' dateutil>=3).
    "celery": PEERS / "requirements-celery.txt",
    "arq": PEERS / "requirements-arq.txt",
}


def peer_python(name: str, install: bool = True) -> str | None:
    """The interpreter of the peer's venv under bench/.venvs/NAME, created with pip on first use."""
    venv = VENVS / name
    py = venv / "bin" / "python"
    stamp = venv / ".installed"
    req = PEER_REQUIREMENTS[name]
    if py.exists() and stamp.exists() and stamp.read_text() == req.read_text():
        return str(py)
    if not install:
        return None
    print(f"  creating {venv} for the {name} peer (pip install -r {req.relative_to(ROOT)}) ...", flush=True)
    if venv.exists():
        shutil.rmtree(venv)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    r = subprocess.run(
        [str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", str(req)],
        capture_output=True,
        text=True,
        check=False,
    )
    if r.returncode != 0:
        print(r.stdout[-2000:], r.stderr[-2000:])
        return None
    stamp.write_text(req.read_text())
    return str(py)
