"""`grounded run` against an OpenAI-compatible server that misbehaves on purpose.

Every test drives the CLI with `--model openai/fake --api-base <fault server>`: what a user
sees on the terminal, the exit code, summary.json and the report, for each kind of fault.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakes import FakeLLM, quoting_responder, register_fake
from fault_server import (
    FaultServer,
    bad_request,
    chatty,
    empty_choices,
    malformed,
    ok,
    rate_limited,
    server_error,
    slow,
    truncated,
    unauthorized,
    unknown_model,
)

from grounded.cli import main
from grounded.errors import OutputLockedError
from grounded.llm import register_transport, transports
from grounded.rundir import lock_output

DOCS = Path(__file__).parent / "data" / "pipeline" / "docs"
REPO = Path(__file__).resolve().parent.parent
MODEL = "openai/fake"
PAIR = {
    "quote": "Honey never spoils.",
    "answer": "never spoils",
    "question": "What does honey never do?",
}


def answer(body: dict) -> object:
    """A careful model behind the server: one pair per sentence shown, quoted exactly."""
    return ok(quoting_responder(body.get("messages") or []))


@pytest.fixture
def server():
    with FaultServer(default=answer) as s:
        yield s


def grounded(*args: str) -> object:
    return CliRunner().invoke(main, list(args))


def run(out: Path, url: str, *extra: str) -> object:
    return grounded(
        "run",
        str(DOCS),
        "--out",
        str(out),
        "--model",
        MODEL,
        "--api-base",
        url,
        "--chunk-tokens",
        "64",
        *extra,
    )


def summary_of(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def test_connection_refused_exits_10_and_says_so_on_the_terminal_summary_and_report(tmp_path):
    out = tmp_path / "o"
    result = run(out, "http://127.0.0.1:1/v1", "-n", "3", "--max-retries", "0")

    assert result.exit_code == 10, result.output
    assert "FAILED LLM CALLS: " in result.stdout
    assert "cannot connect to http://127.0.0.1:1/v1" in result.stderr
    assert "rerun the same command to retry" in result.stderr
    data = summary_of(out)
    assert data["failed_calls"] >= 1
    assert data["errors"][0]["count"] == data["failed_calls"]
    assert "cannot connect" in data["errors"][0]["message"]
    html = (out / "report.html").read_text()
    assert html.index('id="failed-calls"') < html.index('id="narrowing"')  # near the top


def test_each_distinct_failure_is_printed_once_with_its_count(tmp_path, server):
    server.default = server_error(500)
    out = tmp_path / "o"
    result = run(out, server.url, "-n", "9", "--max-retries", "0")

    assert result.exit_code == 10, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("failed call")]
    data = summary_of(out)
    assert len(lines) == len(data["errors"]) == 1
    assert "server error 500" in lines[0] and f"({data['failed_calls']} calls)" in lines[0]
    # every call failed: no top-up rounds multiply them
    assert len(server.chat_requests()) == data["generate"]["planned_calls"] == data["failed_calls"]


@pytest.mark.parametrize(
    ("reply", "says"),
    [
        (unauthorized(), ["the API key was refused", "401", "check OPENAI_API_KEY"]),
        (unknown_model(), ["unknown model", "404", "check the model name", "--api-base"]),
        (bad_request(), ["the request was refused", "400"]),
    ],
)
def test_refusals_no_retry_can_fix_stop_the_run_with_exit_5_and_one_line(
    tmp_path, server, reply, says
):
    server.default = reply
    result = run(tmp_path / "o", server.url, "-n", "9", "--concurrency", "1")

    assert result.exit_code == 5, result.output
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and MODEL in errors[0]
    for text in says:
        assert text in errors[0]
    assert "rerun to retry" not in result.stderr
    assert len(server.chat_requests()) == 1  # said once, no retries, no further calls


@pytest.mark.parametrize(
    "fault",
    [
        rate_limited(),
        server_error(500),
        server_error(502),
        server_error(503),
        empty_choices(),
        malformed(),
    ],
    ids=["429", "500", "502", "503", "empty-choices", "malformed-body"],
)
def test_transient_faults_are_retried_and_the_run_succeeds(tmp_path, server, fault):
    server.push(fault)
    out = tmp_path / "o"
    result = run(out, server.url, "-n", "3", "--max-retries", "2")

    assert result.exit_code == 0, result.output
    data = summary_of(out)
    assert data["failed_calls"] == 0 and data["errors"] == []
    assert data["generate"]["retries"] == 1
    assert len(server.chat_requests()) == data["llm_calls"] + 1


def test_retry_after_is_honoured(tmp_path, server):
    server.push(rate_limited(retry_after=2))
    result = run(tmp_path / "o", server.url, "-n", "3")

    assert result.exit_code == 0, result.output
    first, second = server.chat_requests()[:2]
    assert second["time"] - first["time"] >= 1.9


def test_a_slow_server_times_out_with_the_limit_in_the_message(tmp_path, server):
    server.default = slow("{}", 4)
    result = run(tmp_path / "o", server.url, "-n", "3", "--timeout", "1", "--max-retries", "0")

    assert result.exit_code == 10, result.output
    assert "timed out after 1 s" in result.stderr


def test_empty_choices_for_good_is_a_failed_call_not_an_index_error(tmp_path, server):
    server.default = empty_choices()
    result = run(tmp_path / "o", server.url, "-n", "3", "--max-retries", "0")

    assert result.exit_code == 10, result.output
    assert "the server replied with no choices" in result.stderr
    assert "IndexError" not in result.output


def test_chatty_replies_are_used_and_cut_off_ones_rejected_with_a_reason(tmp_path, server):
    server.push(truncated({"pairs": [PAIR]}), truncated({"pairs": [PAIR]}))  # reply and its repair
    server.default = lambda body: chatty(json.loads(quoting_responder(body["messages"])))
    out = tmp_path / "o"
    result = run(out, server.url, "-n", "6", "--pairs-per-call", "3")

    assert result.exit_code == 0, result.output
    data = summary_of(out)
    assert data["rejected_by_reason"].get("truncated_reply", 0) >= 1
    assert data["kept"] >= 1


def test_a_second_run_on_the_same_out_is_refused_naming_the_pid(tmp_path, server):
    out = tmp_path / "o"
    with lock_output(out):
        result = run(out, server.url, "-n", "3")
    assert result.exit_code == 1
    assert f"output folder {out} is in use by PID {os.getpid()}" in result.stderr
    assert server.requests == []  # nothing paid for twice

    assert run(out, server.url, "-n", "3").exit_code == 0  # released


HOLDER = """
import sys, time
from grounded.rundir import lock_output
with lock_output(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(600)
"""


def test_the_lock_dies_with_its_process_even_on_kill_9(tmp_path):
    out = tmp_path / "o"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(out)], stdout=subprocess.PIPE, cwd=REPO, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(OutputLockedError, match=f"in use by PID {holder.pid} "):
            with lock_output(out):
                pass
    finally:
        holder.kill()  # SIGKILL: no cleanup runs in the holder
        holder.wait()
    assert (out / ".grounded.lock").exists()  # left behind, and stale
    with lock_output(out):
        pass


def test_a_full_disk_while_writing_outputs_is_one_line_and_a_rerun_resumes(
    tmp_path, server, monkeypatch
):
    out = tmp_path / "o"
    out.mkdir()
    # The disk fills up as summary.json is written (its temp file is synced before the rename).
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if ".summary.json." in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    result = run(out, server.url, "-n", "3")

    assert result.exit_code == 1, result.output
    errors = [ln for ln in result.stderr.splitlines() if "error" in ln]
    assert len(errors) == 1 and errors[0].startswith("error: "), result.stderr
    assert f"the disk holding {out} is full" in errors[0]
    assert "finished LLM calls are saved in the cache" in errors[0]
    assert "rerun the same command to resume" in errors[0]
    assert "internal error" not in result.output
    calls = len(server.chat_requests())
    assert calls >= 1

    monkeypatch.undo()  # space freed
    again = run(out, server.url, "-n", "3", "--json")
    assert again.exit_code == 0, again.output
    assert len(server.chat_requests()) == calls  # nothing paid twice
    assert json.loads(again.stdout)["llm_calls"] == 0


def test_run_passes_the_generate_options_through(tmp_path, server):
    out = tmp_path / "o"
    result = run(
        out,
        server.url,
        "-n",
        "9",
        "--temperature",
        "0.3",
        "--response-format",
        "none",
        "--max-calls",
        "1",
        "--rpm",
        "600",
        "--tpm",
        "100000",
        "--workers",
        "1",
    )

    assert result.exit_code in (0, 10), result.output
    requests = server.chat_requests()
    assert len(requests) == 1  # --max-calls
    body = requests[0]["body"]
    assert body["temperature"] == 0.3
    assert "response_format" not in body


@pytest.fixture
def local_fake():
    """A fake model under the local provider's name, so `is_local(model)` holds."""
    saved = transports()["grounded-local"]
    model = register_fake(FakeLLM(), provider="grounded-local")
    yield model
    register_transport("grounded-local", saved)


def test_a_run_with_the_local_model_says_how_few_it_kept_and_what_to_use(tmp_path, local_fake):
    out = tmp_path / "o"
    result = grounded(
        "run",
        str(DOCS),
        "--out",
        str(out),
        "--model",
        local_fake,
        "-n",
        "3",
        "--chunk-tokens",
        "64",
    )

    assert result.exit_code == 0, result.output
    data = summary_of(out)
    notice = data["notice"]
    assert notice.startswith(f"the local model {local_fake}: {data['kept']} of ")
    assert (
        "for more pairs an hour use a hosted model: grounded run DOCS --out OUT --model openai/gpt-4o-mini"
        in notice
    )
    assert notice in result.stdout
    assert "for more pairs an hour use a hosted model" in (out / "report.html").read_text()


def test_a_hosted_model_run_carries_no_local_model_notice(tmp_path, server):
    out = tmp_path / "o"
    assert run(out, server.url, "-n", "3").exit_code == 0
    assert summary_of(out)["notice"] == ""


@pytest.fixture
def tiny_disk(tmp_path):
    """A 1 MB tmpfs, mostly filled (needs root, as in the project's containers; else skipped)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if (
        os.geteuid() != 0
        or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1M", "tmpfs", str(mount)], capture_output=True
        ).returncode
        != 0
    ):
        pytest.skip("mounting a small tmpfs needs root")
    try:
        (mount / "filler").write_bytes(b"\0" * 700_000)
        yield mount
    finally:
        subprocess.run(
            ["umount", "-l", str(mount)], check=False
        )  # lazy: Chroma keeps its files open


def test_ingest_on_a_full_disk_names_the_disk(tiny_disk):
    index = tiny_disk / "index"
    result = grounded("ingest", str(DOCS), "--index", str(index), "--chunk-tokens", "64")

    assert result.exit_code == 4, result.output
    assert f"the disk holding {index} is full" in result.stderr
    assert "files already ingested are skipped" in result.stderr
    assert "internal error" not in result.output
