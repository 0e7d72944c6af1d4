"""Patched copies of worker/emailqueue for `bench/ab.py` (written to /tmp; the tree is never touched).

The levers measured in docs/performance.md ("Levers, measured"). The patches are string
replacements against worker/ as of commit 32fae49; when the code moves on they fail loudly
(AssertionError naming the file) rather than patch the wrong place.

    python bench/levers.py
    python bench/ab.py --a-env PYTHONPATH=/tmp/eqb-patches/base --b-env PYTHONPATH=/tmp/eqb-patches/nowaitfor
"""

import shutil
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "worker" / "emailqueue"


def copy(name):
    dst = Path(f"/tmp/eqb-patches/{name}/emailqueue")
    if dst.parent.exists():
        shutil.rmtree(dst.parent)
    shutil.copytree(SRC, dst, ignore=shutil.ignore_patterns("__pycache__"))
    return dst


def sub(path, old, new):
    s = path.read_text()
    assert old in s, (path, old[:60])
    path.write_text(s.replace(old, new, 1))


d = copy("base")
# E3: no duplicate/suppression check per batch (upper bound of what folding it away saves)
d = copy("nodup")
sub(
    d / "worker.py",
    '''        """One round trip per batch: already-sent messages, and suppressed recipients."""''',
    '''        """One round trip per batch: already-sent messages, and suppressed recipients."""
        return''',
)

# E4: PipelinedSession reply wait without asyncio.wait_for (one timer handle, no wrapper future)
d = copy("nowaitfor")
sub(
    d / "pipelining.py",
    """            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(self._waiter, timeout)
            except TimeoutError:
                raise aiosmtplib.SMTPReadTimeoutError("Timed out waiting for server response") from None""",
    """            loop = asyncio.get_running_loop()
            waiter = self._waiter = loop.create_future()
            timer = loop.call_later(timeout, _expire, waiter)
            try:
                await waiter
            finally:
                timer.cancel()""",
)
sub(
    d / "pipelining.py",
    """class ReplyReader(asyncio.Protocol):""",
    """def _expire(waiter: "asyncio.Future[None]") -> None:
    if not waiter.done():
        waiter.set_exception(aiosmtplib.SMTPReadTimeoutError("Timed out waiting for server response"))


class ReplyReader(asyncio.Protocol):""",
)

# E2: all COMPLETE settlements of a flush in one EVALSHA (one script call, one reply)
d = copy("settlemany")
sub(
    d / "settle.py",
    """MAX_BATCH = 256""",
    '''MAX_BATCH = 256

COMPLETE_MANY = """
local ttl = tonumber(ARGV[1])
local out = {}
local sent = 0
for i = 1, #KEYS - 2 do
  local id = ARGV[2 * i]
  local acked = redis.call('XACK', KEYS[1], 'workers', id)
  redis.call('XDEL', KEYS[1], id)
  redis.call('SET', KEYS[2 + i], ARGV[2 * i + 1], 'EX', ttl)
  sent = sent + acked
  out[i] = acked
end
if sent > 0 then redis.call('HINCRBY', KEYS[2], 'sent', sent) end
return out
"""''',
)
sub(
    d / "settle.py",
    """        self._sources = {_sha(src): src for src in sources}""",
    """        self._sources = {_sha(src): src for src in [*sources, COMPLETE_MANY]}
        from .scripts import COMPLETE

        self._complete_sha, self._many_sha = _sha(COMPLETE), _sha(COMPLETE_MANY)""",
)
sub(
    d / "settle.py",
    """            pipe = self.redis.pipeline(transaction=False)
            for i in todo:
                item = batch[i]
                pipe.evalsha(item.sha, len(item.keys), *item.keys, *item.args)
            replies: list[Any] = await pipe.execute(raise_on_error=False)
            for i, reply in zip(todo, replies, strict=True):
                results[i] = reply""",
    """            pipe = self.redis.pipeline(transaction=False)
            groups: list[list[int]] = []
            many = [i for i in todo if batch[i].sha == self._complete_sha]
            if len(many) >= 2:
                first = batch[many[0]]
                keys = [first.keys[0], first.keys[1], *[batch[i].keys[2] for i in many]]
                args: list[Any] = [first.args[1]]
                for i in many:
                    args += [batch[i].args[0], batch[i].args[2]]
                pipe.evalsha(self._many_sha, len(keys), *keys, *args)
                groups.append(many)
                taken = set(many)
            else:
                taken = set()
            for i in todo:
                if i not in taken:
                    item = batch[i]
                    pipe.evalsha(item.sha, len(item.keys), *item.keys, *item.args)
                    groups.append([i])
            replies: list[Any] = await pipe.execute(raise_on_error=False)
            for group, reply in zip(groups, replies, strict=True):
                if len(group) > 1 and isinstance(reply, list):
                    for i, r in zip(group, reply, strict=True):
                        results[i] = r
                else:
                    for i in group:
                        results[i] = reply""",
)
print("patched copies in /tmp/eqb-patches: base, nodup, nowaitfor, settlemany")
