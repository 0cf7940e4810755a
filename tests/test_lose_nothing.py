"""Lose nothing while checking, and keep the same pairs however the run goes.

A real `grounded run` (a subprocess, an OpenAI-compatible fault server on loopback that logs each
reply it finished sending) is killed with SIGKILL while a batch is being checked; the rerun must
pay for no reply the server had sent, and every way of running (in-process, `--workers 2`, local
Ray, killed and rerun) must write the same `qa.jsonl`, byte for byte but for creation times. All
drop counts follow one rule: a reason counts once per rejected pair.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakes import quoting_responder
from fault_server import FaultServer, ok

from grounded.checkfile import check_qa_file
from grounded.cli import main
from grounded.eval.report import BAD_COLOUR, hbar_chart
from grounded.jsonl import read_jsonl
from grounded.types import Reason, Verdict, count_reasons

REPO = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent
TOWNS = "Arden Brill Corvo Dunmere Elswick Farrow Glenby Hollin Irlam Jarrow Kelso Lydd".split()

# `grounded run` with a checker that sleeps while it checks (as the real one does on its first
# load) and rejects one pair in three with the same reason code twice.
SLEEPY_RUN = """
import sys, time
from pathlib import Path
import grounded.pipeline
from grounded.types import Reason, Verdict

class SleepyChecker:
    def __init__(self, log, seconds):
        self.log, self.seconds = Path(log), seconds

    def check_many(self, items):
        with self.log.open("a") as fh:
            fh.write("start\\n")
        time.sleep(self.seconds)
        out = [
            Verdict(True, 1.0) if int(p.id[:8], 16) % 3
            else Verdict(False, 0.2, (Reason("low_support", "a"), Reason("low_support", "b")))
            for p, _ in items
        ]
        with self.log.open("a") as fh:
            fh.write("end\\n")
        return out

grounded.pipeline.default_checker = lambda *a, **kw: SleepyChecker(sys.argv[1], float(sys.argv[2]))
from grounded.cli import main
main(sys.argv[3:])
"""


def write_corpus(folder: Path) -> Path:
    """Twelve one-passage documents, three sentences each: twelve calls at --chunk-tokens 64."""
    folder.mkdir()
    names = TOWNS[1:] + TOWNS[:1]
    for i, town in enumerate(TOWNS):
        other = names[i]
        (folder / f"{town.lower()}.txt").write_text(
            f"The town of {town} stands on a river that rises near {other} Moor. "
            f"Its weekly market was granted in {1200 + 17 * i} to the abbot {other}son. "
            f"The old bridge there has {i + 3} arches and was rebuilt by {other} masons.\n",
            encoding="utf-8",
        )
    return folder


def answer(body: dict) -> object:
    """One pair per sentence shown, after a short random wait: calls finish out of order."""
    return ok(quoting_responder(body.get("messages") or []), delay=random.uniform(0.05, 0.3))


def run_args(docs: Path, out: Path, url: str, *extra: str) -> list[str]:
    return [
        "run",
        str(docs),
        "--out",
        str(out),
        "--model",
        "openai/fake",
        "--api-base",
        url,
        "--chunk-tokens",
        "64",
        "--embedder",
        "fast",
        "--pairs-per-call",
        "3",
        "--concurrency",
        "4",
        *extra,
    ]


def rows(path: Path) -> list[str]:
    """The file's lines, creation times blanked (the only field that may differ)."""
    return [
        re.sub(r'"created": "[^"]*"', '"created": ""', line)
        for line in path.read_text(encoding="utf-8").splitlines()
    ]


def request_key(body: dict) -> str:
    return json.dumps(body, sort_keys=True)


def sleepy(log: Path, seconds: float, args: list[str]) -> list[str]:
    return [sys.executable, "-c", SLEEPY_RUN, str(log), str(seconds), *args]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def checking(log: Path) -> bool:
    lines = log.read_text().splitlines() if log.exists() else []
    return lines.count("start") > lines.count("end")


def assert_one_ledger(out: Path) -> None:
    """summary.json, its stages, the report's chart: the counts recomputed from rejected.jsonl."""
    summary = json.loads((out / "summary.json").read_text())
    expected = count_reasons(read_jsonl(out / "rejected.jsonl"))
    assert summary["rejected_by_reason"] == expected
    stages: Counter[str] = Counter()
    for name, st in summary["stages"].items():
        if name != "ingest":
            stages.update(st["dropped_by_reason"])
    assert dict(stages) == expected
    chart = hbar_chart(list(expected.items())[:20], colour=BAD_COLOUR, fmt="{:.0f}")
    assert chart in (out / "report.html").read_text()


def test_a_kill_while_checking_repays_no_sent_reply_and_the_rerun_keeps_the_same_pairs(tmp_path):
    docs = write_corpus(tmp_path / "docs")
    extra = ("-n", "20")
    with FaultServer(default=answer) as server:
        clean = tmp_path / "clean"
        done = subprocess.run(
            sleepy(tmp_path / "clean.log", 0.5, run_args(docs, clean, server.url, *extra)),
            capture_output=True,
            env=env(),
            timeout=300,
        )
        assert done.returncode == 0, done.stderr.decode()[-2000:]
    expected = rows(clean / "qa.jsonl")
    assert 10 <= len(expected) <= 20
    assert json.loads((clean / "summary.json").read_text())["generate"]["surplus"] >= 1
    assert_one_ledger(clean)

    for point in (3, 6, 9):
        out, log = tmp_path / f"killed-{point}", tmp_path / f"killed-{point}.log"
        with FaultServer(default=answer) as server:
            proc = subprocess.Popen(
                sleepy(log, 2.0, run_args(docs, out, server.url, *extra)),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=env(),
            )
            deadline = time.monotonic() + 240
            while not (len(server.sent) >= point and checking(log)):
                assert proc.poll() is None, (
                    proc.stderr.read().decode()[-2000:] if proc.stderr else ""
                )
                assert time.monotonic() < deadline, "no check in progress after the replies"
                time.sleep(0.02)
            answered = {request_key(b) for b in list(server.sent)}
            time.sleep(0.5)  # time enough to read a reply and cache it, not to finish the check
            assert checking(log), "the kill must land while a batch is being checked"
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            asked = len(server.requests)
            rerun = subprocess.run(
                sleepy(log, 0.0, run_args(docs, out, server.url, *extra)),
                capture_output=True,
                env=env(),
                timeout=300,
            )
            assert rerun.returncode == 0, rerun.stderr.decode()[-2000:]
            again = {request_key(r["body"]) for r in server.requests[asked:]}
        assert not answered & again, f"killed after {point} replies: a sent reply was paid twice"
        assert rows(out / "qa.jsonl") == expected, f"killed after {point} replies"
        for name in ("qa.jsonl", "rejected.jsonl"):
            written = rows(out / "stages" / "generate" / name)
            assert len(written) == len(set(written)), f"{name}: a row written twice"
        assert_one_ledger(out)


@pytest.fixture
def served():
    with FaultServer(default=answer) as server:
        yield server


def test_the_same_qa_jsonl_in_process_with_workers_on_ray_and_after_a_kill(tmp_path, served):
    """The real checker: its verdicts may not depend on the executor, the order calls finish
    in, or a kill."""
    pytest.importorskip("ray")
    docs = write_corpus(tmp_path / "docs")
    extra = ("-n", "12")
    outs = {}
    for name, more in (("local", ()), ("workers", ("--workers", "2")), ("ray", ("--ray",))):
        outs[name] = tmp_path / name
        result = CliRunner().invoke(main, run_args(docs, outs[name], served.url, *extra, *more))
        assert result.exit_code == 0, result.output
    killed = tmp_path / "killed"
    args = [sys.executable, "-m", "grounded", *run_args(docs, killed, served.url, *extra)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env())
    asked = len(served.sent)
    deadline = time.monotonic() + 240
    while len(served.sent) < asked + 5 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    rerun = subprocess.run(args, capture_output=True, env=env(), timeout=300)
    assert rerun.returncode == 0, rerun.stderr.decode()[-2000:]
    outs["killed"] = killed

    expected = rows(outs["local"] / "qa.jsonl")
    assert len(expected) >= 1
    for name, out in outs.items():
        assert rows(out / "qa.jsonl") == expected, name
        assert_one_ledger(out)


class TwiceOver:
    """Rejects every pair with the same reason code twice."""

    def check(self, pair, sources):  # noqa: ANN001, ANN201
        return Verdict(False, 0.1, (Reason("quote_not_found", "a"), Reason("quote_not_found", "b")))


def test_grounded_check_counts_a_reason_once_per_rejected_pair(tmp_path):
    qa = tmp_path / "pairs.jsonl"
    qa.write_text(
        json.dumps({"question": "Who?", "answer": "Kelso", "context": "Kelso is a town."}) + "\n"
    )
    checked = check_qa_file(qa, out=tmp_path / "checked", checker=TwiceOver())
    assert checked.rejected_by_reason == {"quote_not_found": 1}
    assert checked.rejected_by_reason == count_reasons(
        read_jsonl(tmp_path / "checked" / "rejected.jsonl")
    )
