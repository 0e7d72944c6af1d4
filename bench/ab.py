"""A/B drain: two worker commands, alternating, same Redis, same smtp-sink, same payload.

For checking a patch or a lever before and after, in one run on a noisy machine:

    python bench/ab.py --b-python /tmp/venv-with-hiredis/bin/python --b-env PYTHONPATH=worker
    python bench/ab.py --b-dsn-query pipelining=false
    python bench/ab.py --b-python /path/to/other/checkout/.venv/bin/python --concurrency 32

A is `emailqueue worker` from this venv; B is `<b-python> -m emailqueue worker` (default: this venv
too).  PYTHONPATH in --a-env/--b-env points either at another copy of the package (e.g. a patched
snapshot of worker/; take A's snapshot at the same time, so edits to the tree between runs do not
leak into one side only).  Prints each run and the median ratio B / A.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import EMAILQUEUE, PY, SmtpSink, smtp_sink_missing_message
from run import FULL, Bench, log


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--repeats", type=int, default=4)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--a-env", action="append", default=[], help="NAME=VALUE for A's environment")
    ap.add_argument("--b-python", default=PY)
    ap.add_argument("--b-env", action="append", default=[], help="NAME=VALUE for B's environment")
    ap.add_argument("--b-dsn-query", default="", help="query string added to B's MAILER_DSN")
    ap.add_argument("--cap", type=float, default=20.0, help="seconds per run after its first delivery")
    args = ap.parse_args()
    if not SmtpSink.available():
        print(smtp_sink_missing_message(), file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="eqb-ab-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
    b = Bench(replace(FULL, mode="ab"), workdir)
    a_cmd, a_env = [EMAILQUEUE, "worker"], dict(kv.split("=", 1) for kv in args.a_env)
    b_cmd = [args.b_python, "-m", "emailqueue", "worker"]
    b_env = dict(kv.split("=", 1) for kv in args.b_env)
    for env in (a_env, b_env):
        if "PYTHONPATH" in env:
            env["PYTHONPATH"] = str(Path(env["PYTHONPATH"]).resolve())
    if args.b_dsn_query:
        b_env["MAILER_DSN"] = f"{b.sink.dsn}?{args.b_dsn_query}"
    rates: dict[str, list[float]] = {"A": [], "B": []}
    cpu: dict[str, list[float]] = {"A": [], "B": []}
    redis_cpu: dict[str, list[float]] = {"A": [], "B": []}  # Redis CPU per email: the scripts' cost
    try:
        for rep in range(args.repeats):
            for name, cmd, env in (
                (("A", a_cmd, a_env), ("B", b_cmd, b_env))
                if rep % 2 == 0
                else (
                    ("B", b_cmd, b_env),
                    ("A", a_cmd, a_env),
                )
            ):
                b.worker_cmd, b.worker_env = cmd, env
                r = b.drain("emailqueue", args.n, concurrency=args.concurrency, cap_s=args.cap, tag=f"ab-{name}")
                rates[name].append(r["rate"])
                cpu[name].append(r["cpu_us_per_email"])
                redis_cpu[name].append(r["cpu_pct"]["redis"] / 100 / r["rate"] * 1e6)
                log(
                    f"{name} rep {rep + 1}: {r['rate']:,.0f}/s, worker CPU {r['cpu_pct']['consumer']:.0f}% = "
                    f"{r['cpu_us_per_email']:.0f} µs per email, Redis {redis_cpu[name][-1]:.0f} µs per email, "
                    f"RSS {r['rss_max_mb']:.0f} MB"
                )
    finally:
        b.close()
        shutil.rmtree(workdir, ignore_errors=True)
    a, bb = statistics.median(rates["A"]), statistics.median(rates["B"])
    ratios = [y / x for x, y in zip(rates["A"], rates["B"], strict=True)]
    print(
        f"A median {a:,.0f}/s, B median {bb:,.0f}/s, B/A {bb / a:.2f} "
        f"(per pair: {', '.join(f'{x:.2f}' for x in ratios)})"
    )
    ca, cb = statistics.median(cpu["A"]), statistics.median(cpu["B"])
    print(
        f"worker CPU per email: A {ca:.0f} µs, B {cb:.0f} µs, B/A {cb / ca:.2f} (lower is better; robust to other load)"
    )
    ra, rb = statistics.median(redis_cpu["A"]), statistics.median(redis_cpu["B"])
    print(f"Redis CPU per email: A {ra:.1f} µs, B {rb:.1f} µs, B/A {rb / ra:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
