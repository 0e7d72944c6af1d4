# ruff: noqa: RUF001, E501 (writes prose: en dashes and multiplication signs are meant; long f-strings)
"""Turn a results JSON into the markdown table of docs/performance.md and a PNG plot.

python bench/report.py bench/results/full.json   # rewrite the doc's results section and the plot
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, ROOT

DOC = ROOT / "docs" / "performance.md"
START = "<!-- bench:results:start -->"
END = "<!-- bench:results:end -->"


def _f(x: float | None, digits: int = 0) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:,.{digits}f}"


def _mmm(m: dict[str, float], digits: int = 0, unit: str = "") -> str:
    if not m or not m.get("n"):
        return "–"
    if m["n"] == 1:
        return f"{_f(m['median'], digits)}{unit}"
    return f"{_f(m['median'], digits)}{unit} ({_f(m['min'], digits)}–{_f(m['max'], digits)})"


def markdown(res: dict[str, Any]) -> str:
    m = res["machine"]
    cfg = res["config"]
    lines = [
        f"Run: **{res['mode']} mode**, {cfg['repeats']} repeat(s), {m['cpus']} CPUs, Python {m['python']}, "
        f"{m.get('redis_binary', 'redis')} {m['redis_server']} (AOF everysec on tmpfs), redis-py {m['redis_py']}, "
        f"aiosmtplib {m['aiosmtplib']}, uvloop {m['uvloop']}; load average at start "
        f"{' / '.join(f'{x:.2f}' for x in m['loadavg_start'])}, at end "
        f"{' / '.join(f'{x:.2f}' for x in m.get('loadavg_end', [0, 0, 0]))}; bench took "
        f"{res.get('seconds', 0) / 60:.1f} min. Worker code: commit {m.get('git', {}).get('head', '?')}"
        + (" plus uncommitted changes in worker/" if m.get("git", {}).get("worker_changes") else "")
        + ".",
        "",
        "Figures are *median (min–max)* over the repeats. **The machine is shared with other engineers' test "
        "runs: compare the ratios within this run; the absolute numbers are context.**",
        "",
    ]
    peers = res.get("peers")
    if peers:
        lines += [
            f"### Drain throughput against the peers — sink: {peers['sink']} (fast)",
            "",
            "| system | settings | emails/s | emailqueue ÷ system | consumer CPU per email | consumer CPU | "
            "Redis CPU | sink CPU |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        vs = peers.get("emailqueue_vs", {})
        for name in ("emailqueue", "baseline", "celery", "arq"):
            s = peers["systems"].get(name)
            if not s:
                continue
            ratio = "1" if name == "emailqueue" else f"**{vs.get(name, float('nan')):.2f}×**"
            capped = " ¹" if s["capped"] else ""
            lines.append(
                f"| {name} | {peers['settings'][name]} | {_mmm(s['rate'])}{capped} | {ratio} | "
                f"{_mmm(s['cpu_us_per_email'], 0, ' µs')} | {_mmm(s['cpu_consumer'], 0, '%')} | "
                f"{_mmm(s['cpu_redis'], 0, '%')} | {_mmm(s['cpu_sink'], 0, '%')} |"
            )
        lines.append("")
    pa = res.get("peers_aiosmtpd")
    if pa:
        lines += [
            f"### The same on the aiosmtpd sink (slow, realistic: a Python SMTP server on one core), {cfg['aio_repeats']} repeat(s)",
            "",
            "| system | emails/s | emailqueue ÷ system | consumer CPU per email | consumer CPU | sink CPU |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        vs = pa.get("emailqueue_vs", {})
        for name in ("emailqueue", "baseline", "celery", "arq"):
            s = pa["systems"].get(name)
            if not s:
                continue
            ratio = "1" if name == "emailqueue" else f"{vs.get(name, float('nan')):.2f}×"
            lines.append(
                f"| {name} | {_mmm(s['rate'])} | {ratio} | {_mmm(s['cpu_us_per_email'], 0, ' µs')} | "
                f"{_mmm(s['cpu_consumer'], 0, '%')} | {_mmm(s['cpu_sink'], 0, '%')} |"
            )
        lines.append("")
    d = res.get("drain")
    if d:
        lines += [
            f"### emailqueue drain throughput by concurrency — one `emailqueue worker` process, sink: smtp-sink, "
            f"N = {d['n']:,} queued, each run capped at {d['cap_s']:.0f} s after its first delivery",
            "",
            "| concurrency | emails/s | worker CPU per email | worker CPU | Redis CPU | sink CPU | worker RSS max |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for c, s in d["by_concurrency"].items():
            cap = " ¹" if s["capped"] else ""
            lines.append(
                f"| {c} | {_mmm(s['rate'])}{cap} | {_mmm(s['cpu_us_per_email'], 0, ' µs')} | "
                f"{_mmm(s['cpu_consumer'], 0, '%')} | {_mmm(s['cpu_redis'], 0, '%')} | "
                f"{_mmm(s['cpu_sink'], 0, '%')} | {_mmm(s['rss_max_mb'], 0, ' MB')} |"
            )
        t = d["two_processes"]
        lines.append(
            f"| 2 processes × 16 | {_mmm(t['rate'])} | {_mmm(t['cpu_us_per_email'], 0, ' µs')} | "
            f"{_mmm(t['cpu_consumer'], 0, '%')} (both) | "
            f"{_mmm(t['cpu_redis'], 0, '%')} | {_mmm(t['cpu_sink'], 0, '%')} | {_mmm(t['rss_max_mb'], 0, ' MB')} (both) |"
        )
        left = 200 - sum(t[k]["median"] for k in ("cpu_consumer", "cpu_redis", "cpu_sink"))
        lines += [
            "",
            f"2 processes ÷ 1 process (both at concurrency 16): **{d['two_vs_one']:.2f}×**; with two workers the "
            f"CPU left on the 2 cores for everything else (Redis and the sink are already counted) is ~{left:.0f}% "
            "of one core.",
            "",
        ]
        if any(s["capped"] for s in d["by_concurrency"].values()):
            lines += ["¹ at least one run stopped at the time cap before draining all N.", ""]
    e = res.get("enqueue")
    if e:
        lines += [
            f"### Enqueue — one call, {e['n_per_repeat']:,} calls per repeat, payload {e['payload_json_bytes']:,} "
            "bytes of JSON",
            "",
            "| call | p50 ms | p99 ms | max ms | p50 ÷ bare XADD | p50 ÷ packed XADD |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for kind, title in (
            ("sync", "`Mailer.send()` (redis-py, blocking)"),
            ("async", "`AsyncMailer.send()` (asyncio)"),
        ):
            s = e[kind]
            lines.append(
                f"| {title} | {_mmm(s['send']['p50'], 3)} | {_mmm(s['send']['p99'], 3)} | {_mmm(s['send']['max'], 2)} | "
                f"**{_mmm(s['p50_ratio'], 2)}** | {_mmm(s['p50_ratio_packed'], 2) if 'p50_ratio_packed' in s else '–'} |"
            )
            lines.append(
                f"| bare `XADD` of the same fields, redis-py `xadd()` ({kind}) | {_mmm(s['xadd']['p50'], 3)} | "
                f"{_mmm(s['xadd']['p99'], 3)} | {_mmm(s['xadd']['max'], 2)} | 1 | |"
            )
            if "packed" in s:
                lines.append(
                    f"| the same `XADD` packed by hand (`emailqueue.rawpipe`, {kind}) | {_mmm(s['packed']['p50'], 3)} | "
                    f"{_mmm(s['packed']['p99'], 3)} | {_mmm(s['packed']['max'], 2)} | | 1 |"
                )
        sm = e["send_many"]
        packed_rate = (
            f"; the same packed by hand, as `send_many` does: {_mmm(sm['xadd_packed_rate'])}/s"
            if "xadd_packed_rate" in sm
            else ""
        )
        models = (
            f"; of the same emails as `Email` objects (validated when the application built them): "
            f"{_mmm(sm['models_rate'])}/s"
            if "models_rate" in sm
            else ""
        )
        lines += [
            "",
            f"`Mailer.send_many()` of {sm['n']:,} emails as dicts (validated, then pipelined in chunks of 1,000): "
            f"**{_mmm(sm['rate'])} emails/s**{models}; pipelined bare `XADD` of pre-encoded fields (redis-py "
            f"pipeline): {_mmm(sm['xadd_pipelined_rate'])}/s{packed_rate}.",
            "",
        ]
    lat = res.get("latency")
    if lat:
        r0 = lat["runs"][0] if lat["runs"] else {}
        lines += [
            "### End-to-end latency (enqueue → SMTP accepted)",
            "",
            f"Offered load {lat['offered_rate']:,.0f} emails/s = 50% of the measured maximum at the default concurrency "
            f"({lat['max_rate']:,.0f}/s), one worker (concurrency {lat['concurrency']}), {lat['sink']}, "
            f"{r0.get('measured', 0):,} emails per repeat: "
            f"p50 **{_mmm(lat['p50'], 2, ' ms')}**, p99 **{_mmm(lat['p99'], 2, ' ms')}**, max {_mmm(lat['max'], 1, ' ms')}.",
            "",
        ]
        if r0.get("cpu_pct"):
            lines += [
                "CPU during the first repeat (the producer is the bench process): "
                + ", ".join(f"{k} {v}%" for k, v in r0["cpu_pct"].items())
                + ".",
                "",
            ]
    mem = res.get("memory")
    if mem:
        lines += [
            "### Memory",
            "",
            f"- Redis: **{mem['redis_bytes_per_email']:,.0f} bytes per queued email** ({mem['n']:,} queued: "
            f"{mem['redis_used_mb']:.0f} MB of `used_memory`).",
            f"- Worker RSS draining those {mem['delivered']:,} emails (concurrency 16, {_f(mem['drain_rate'])}/s): "
            f"{mem['rss_at_10pct_mb']:.1f} MB at 10%, max **{mem['rss_max_mb']:.1f} MB**, {mem['rss_end_mb']:.1f} MB at the "
            f"end (growth after warm-up {mem['rss_growth_after_10pct_mb']:+.1f} MB); idle afterwards "
            f"**{mem['rss_idle_mb']:.1f} MB**.",
            "",
        ]
    return "\n".join(lines).rstrip() + "\n"


def plot(res: dict[str, Any], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install matplotlib)")
        return None
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    ax = axes[0]
    d = res.get("drain")
    if d:
        cs = [int(c) for c in d["by_concurrency"]]
        med = [d["by_concurrency"][str(c)]["rate"]["median"] for c in cs]
        lo = [m - d["by_concurrency"][str(c)]["rate"]["min"] for c, m in zip(cs, med, strict=True)]
        hi = [d["by_concurrency"][str(c)]["rate"]["max"] - m for c, m in zip(cs, med, strict=True)]
        ax.errorbar(cs, med, yerr=[lo, hi], marker="o", capsize=3, label="emailqueue, 1 process")
        t = d["two_processes"]["rate"]
        ax.errorbar(
            [16],
            [t["median"]],
            yerr=[[t["median"] - t["min"]], [t["max"] - t["median"]]],
            marker="s",
            capsize=3,
            linestyle="none",
            label="emailqueue, 2 processes × 16",
        )
    peers = res.get("peers")
    if peers:
        styles = {"baseline": ":", "celery": "--", "arq": "-."}
        for name, style in styles.items():
            s = peers["systems"].get(name)
            if s:
                ax.axhline(s["rate"]["median"], linestyle=style, color="gray", linewidth=1)
                ax.annotate(
                    name,
                    (1, s["rate"]["median"]),
                    textcoords="offset points",
                    xytext=(2, 3),
                    fontsize=8,
                    color="dimgray",
                )
    ax.set_xscale("log", base=2)
    ax.set_xlabel("worker --concurrency")
    ax.set_ylabel("emails/s delivered (smtp-sink)")
    ax.set_title("Drain throughput vs concurrency")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)

    ax = axes[1]
    systems = []
    for key, label in (("peers", "smtp-sink"), ("peers_aiosmtpd", "aiosmtpd")):
        p = res.get(key)
        if p:
            for name in ("emailqueue", "baseline", "celery", "arq"):
                s = p["systems"].get(name)
                if s:
                    systems.append((f"{name}\n{label}", s["rate"]["median"], label))
    if systems:
        colors = ["tab:blue" if lab == "smtp-sink" else "tab:orange" for _, _, lab in systems]
        ax.bar(range(len(systems)), [v for _, v, _ in systems], color=colors)
        ax.set_xticks(range(len(systems)), [n for n, _, _ in systems], fontsize=7)
        for i, (_, v, _) in enumerate(systems):
            ax.annotate(f"{v:,.0f}", (i, v), ha="center", va="bottom", fontsize=7)
        ax.set_ylabel("emails/s (median)")
        ax.set_title("Same payload, same sink: emailqueue vs peers")
        ax.grid(alpha=0.3, axis="y")

    ax = axes[2]
    lat = res.get("latency")
    if lat and lat.get("samples"):
        xs = sorted(lat["samples"])
        ys = [i / len(xs) for i in range(len(xs))]
        ax.plot(xs, ys, label=f"enqueue → accepted at {lat['offered_rate']:,.0f}/s")
        ax.set_xscale("log")
        ax.set_xlabel("ms")
        ax.set_ylabel("fraction of emails")
        ax.set_title("End-to-end latency distribution (CDF)")
        ax.axvline(lat["p50"]["median"], color="gray", linestyle=":", linewidth=1)
        ax.axvline(lat["p99"]["median"], color="gray", linestyle="--", linewidth=1)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(
        f"emailqueue bench ({res['mode']} mode, shared 2-core machine: ratios matter, absolutes are context)",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def update_doc(md: str, mode: str) -> None:
    text = DOC.read_text() if DOC.exists() else f"# Performance\n\n{START}\n{END}\n"
    block = (
        f"{START}\n<!-- generated by `python bench/run.py{' --quick' if mode == 'quick' else ''}` -->\n\n"
        + md
        + f"\n![throughput and latency](../bench/results/{mode}.png)\n{END}"
    )
    if START in text and END in text:
        head, rest = text.split(START, 1)
        _, tail = rest.split(END, 1)
        text = head + block + tail
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    DOC.write_text(text)


if __name__ == "__main__":
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS / "full.json"
    res = json.loads(path.read_text())
    plot(res, RESULTS / f"{res['mode']}.png")
    md = markdown(res)
    print(md)
    update_doc(md, res["mode"])
