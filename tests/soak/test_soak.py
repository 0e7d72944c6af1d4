"""The CI-sized chaos soak (about 30 s), and the accounting rules on hand-made observations."""

from __future__ import annotations

from pathlib import Path

import pytest

from .accounting import DELIVER, PERMANENT, DeadLetterRecord, KillEvent, Observations, account
from .driver import SoakConfig, run_soak


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_ci_soak_loses_nothing(tmp_path: Path) -> None:
    result = run_soak(SoakConfig.ci(run_dir=str(tmp_path)), log=lambda _: None)
    print(result.render())  # shown with -s and on failure
    report = result.report
    assert report.lost == 0, result.render()
    assert report.ok, result.render()
    assert result.figures["sigkills"] >= 2 and result.figures["entries in flight at the sigkills"] > 0
    assert result.figures["worker exit codes on SIGTERM"] == [0] * result.config.workers


def _obs(**kw: object) -> Observations:
    base: dict[str, object] = {
        "expected": {"a": DELIVER, "b": DELIVER, "p": PERMANENT},
        "perm_address": {"p": "perm-p@x"},
        "accepted": {"a": [1.0], "b": [2.0]},
        "perm_replies": {"perm-p@x": 1},
        "dead": [DeadLetterRecord("p", "permanent", "550", 1)],
    }
    base.update(kw)
    return Observations(**base)  # type: ignore[arg-type]


def test_accounting_all_good() -> None:
    r = account(_obs())
    assert r.ok and r.rows["delivered exactly once"] == 2 and r.duplicates == 0


def test_accounting_lost_and_unexplained_duplicate_fail() -> None:
    r = account(_obs(accepted={"a": [1.0, 5.0]}))
    assert not r.ok and r.lost == 1 and r.rows["delivered twice: no admissible cause"] == 1


def test_accounting_duplicate_of_an_id_in_flight_at_a_sigkill_is_allowed() -> None:
    r = account(_obs(accepted={"a": [1.0, 5.0], "b": [2.0]}, kills=[KillEvent(1.5, "w", frozenset({"a"}))]))
    assert r.ok and r.duplicates == 1 <= r.duplicate_bound


def test_accounting_duplicate_at_an_smtp_cut_is_allowed_only_near_the_cut() -> None:
    near = account(_obs(accepted={"a": [9.5, 20.0], "b": [2.0]}, smtp_cuts=[10.0]))
    far = account(_obs(accepted={"a": [5.0, 20.0], "b": [2.0]}, smtp_cuts=[10.0]))
    assert near.ok and not far.ok


def test_accounting_permanent_failure_retried_fails() -> None:
    assert not account(_obs(perm_replies={"perm-p@x": 2})).ok
    killed = account(_obs(perm_replies={"perm-p@x": 2}, kills=[KillEvent(1.0, "w", frozenset({"p"}))]))
    assert killed.ok


def test_accounting_wrong_outcomes_fail() -> None:
    assert not account(_obs(dead=[DeadLetterRecord("p", "exhausted", "451", 4)])).ok
    assert not account(_obs(accepted={"a": [1.0], "b": [2.0], "p": [3.0]})).ok
    assert not account(_obs(dead=[*_obs().dead, DeadLetterRecord("b", "exhausted", "451", 4)])).ok
    assert not account(_obs(accepted={"a": [1.0], "b": [2.0], "zzz": [1.0]})).ok
    queued = account(_obs(accepted={"a": [1.0]}, still_queued={"b"}))
    assert not queued.ok and queued.lost == 0
