"""A Redis reply lost after the command ran: what a retry by the caller does to the queue.

A proxy between client and Redis forwards a request and then cuts the connection instead
of forwarding the reply, so the command ran but the caller sees a connection error.

- Enqueue: ``send_many`` raises ``QueueUnavailable`` although every XADD was applied, so an
  application that retries enqueues twice (enqueue is at-least-once; the soak's producers
  record such re-sent ids).  Documented, not a bug.
- Settlement (finding F2, fixed): the worker's ``_settle`` retries the script after the
  connection error; the settlement scripts are idempotent (a second run finds the entry
  acknowledged and deleted and changes nothing), so the message is dead-lettered once.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest
import redis

from emailqueue import Mailer, QueueUnavailable
from emailqueue.keys import QueueKeys
from emailqueue.localserver import RedisServer
from emailqueue.settings import Settings
from emailqueue.sink import Sink
from tests.conftest import QUEUE, running_worker, wait_until

K = QueueKeys(QUEUE)


class ReplyCutter:
    """TCP proxy to Redis; ``arm(*needles, nth)``: cut the reply to the nth request holding every needle."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.needles: tuple[bytes, ...] = ()
        self.remaining = 0
        self.cuts = 0
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self, *needles: bytes, nth: int = 1) -> None:
        with self.lock:
            self.needles, self.remaining = needles, nth

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream))
            cut = threading.Event()
            threading.Thread(target=self._up, args=(client, upstream, cut), daemon=True).start()
            threading.Thread(target=self._down, args=(upstream, client, cut), daemon=True).start()

    def _up(self, client: socket.socket, upstream: socket.socket, cut: threading.Event) -> None:
        try:
            while data := client.recv(65536):
                with self.lock:
                    if self.remaining and all(n in data for n in self.needles):
                        self.remaining -= 1
                        if self.remaining == 0:
                            cut.set()
                upstream.sendall(data)
        except OSError:
            pass

    def _down(self, upstream: socket.socket, client: socket.socket, cut: threading.Event) -> None:
        try:
            while data := upstream.recv(65536):
                if cut.is_set():  # the command ran; its reply never arrives
                    self.cuts += 1
                    break
                client.sendall(data)
        except OSError:
            pass
        for s in (client, upstream):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self) -> None:
        self.closed = True
        self.listener.close()


@pytest.fixture
def cutter(redis_server: RedisServer) -> Iterator[ReplyCutter]:
    proxy = ReplyCutter(redis_server.port)
    yield proxy
    proxy.close()


def test_enqueue_with_a_lost_reply_raises_although_enqueued(cutter: ReplyCutter, rclient: redis.Redis) -> None:
    mailer = Mailer.from_url(f"redis://127.0.0.1:{cutter.port}/0", QUEUE)
    cutter.arm(b"XADD")
    with pytest.raises(QueueUnavailable):
        mailer.send_many([{"from": "a@example.com", "to": f"u{i}@example.com", "text": "t"} for i in range(3)])
    mailer.close()
    assert cutter.cuts == 1
    assert rclient.xlen(K.stream) == 3  # enqueued all the same: a retry by the caller would enqueue twice


async def test_dead_letter_with_a_lost_reply_is_written_once(
    cutter: ReplyCutter, settings_for: Callable[..., Settings], mailer: Mailer, sink: Sink, rclient: redis.Redis
) -> None:
    sink.state.mode = "permfail"
    mailer.send({"from": "a@example.com", "to": "x@example.com", "text": "t"})
    # the first EVALSHA naming the failed stream gets NOSCRIPT (fresh server); the second one runs
    cutter.arm(b"EVALSHA", K.failed.encode(), nth=2)
    async with running_worker(settings_for(EMAILQUEUE_REDIS_URL=f"redis://127.0.0.1:{cutter.port}/0")):
        await wait_until(lambda: rclient.xlen(K.failed) >= 1, what="a dead letter")
        await wait_until(lambda: cutter.cuts == 1, what="the cut")
        await wait_until(lambda: rclient.xlen(K.stream) == 0, what="settled")
    assert rclient.xlen(K.failed) == 1, "the message was dead-lettered twice"
    assert rclient.hget(K.stats, "failed") == "1"
