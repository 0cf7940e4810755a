"""generate(): seeds, evidence offsets, rejections with reasons, resume without repeats."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakes import FakeChecker, FakeIndex, FakeLLM, quoting_responder, register_fake, server_error

from grounded.cli import main
from grounded.generation import answer_candidates, constrain_schema, generate, locate
from grounded.jsonl import read_jsonl
from grounded.seeds import partners, seed_order
from grounded.types import Chunk

DATA = Path(__file__).parent / "data" / "generate"
CORPUS = DATA / "corpus"


def corpus_index() -> FakeIndex:
    docs = {}
    for p in sorted(CORPUS.glob("*.txt")):
        docs[p.stem] = [b for b in p.read_text(encoding="utf-8").split("\n\n") if b.strip()]
    return FakeIndex.from_texts(docs)


def rows(path: Path) -> list[dict]:
    return list(read_jsonl(path)) if path.exists() else []


@pytest.fixture
def fake():
    f = FakeLLM()
    register_fake(f)
    return f


def run(out, fake_model="fake/test-model", **kw):
    kw.setdefault("index", corpus_index())
    kw.setdefault("checker", FakeChecker())
    return generate(out=out, model=fake_model, **kw)


# --- seeds ---------------------------------------------------------------------------------------


def _chunks(doc: str, count: int, section_of=lambda i: ()) -> list[Chunk]:
    text = "word " * 10
    return [
        Chunk(f"{doc}:{i}", doc, text, i * 100, i * 100 + 50, section=section_of(i))
        for i in range(count)
    ]


def test_seed_order_lets_small_documents_in_early_and_is_deterministic():
    chunks = _chunks("big", 50) + _chunks("small", 2) + _chunks("tiny", 1)
    order = seed_order(chunks, seed=1)
    assert len(order) == 53
    assert {c.doc_id for c in order[:3]} == {"big", "small", "tiny"}
    assert [c.id for c in order] == [c.id for c in seed_order(list(reversed(chunks)), seed=1)]
    assert [c.id for c in order] != [c.id for c in seed_order(chunks, seed=2)]


def test_seed_order_alternates_sections_and_skips_headings():
    chunks = _chunks("d", 6, section_of=lambda i: ("A",) if i < 5 else ("B",))
    chunks.append(Chunk("d:h", "d", "Heading only", 900, 912))
    order = seed_order(chunks, seed=0)
    assert "d:h" not in [c.id for c in order]
    assert "d:5" in [c.id for c in order[:2]]  # the one-chunk section is not starved


def test_partners_skip_self_overlap_and_near_duplicates():
    base = "The harbour of Veldmouth was dredged in 1911 to admit larger steamers from the north."
    chunks = [
        Chunk("a:0", "a", base, 0, len(base)),
        Chunk("a:1", "a", base + " It", 40, 40 + len(base) + 3),  # overlaps a:0
        Chunk("b:0", "b", base.replace("1911", "1912"), 0, len(base)),  # near duplicate
        Chunk(
            "c:0",
            "c",
            "Steamers from the north called at Veldmouth harbour every week in summer.",
            0,
            74,
        ),
    ]
    idx = FakeIndex(chunks)
    assert [c.id for c in partners(idx, chunks[0], 2)] == ["c:0"]


# --- evidence --------------------------------------------------------------------------------------


def test_locate_gives_document_offsets():
    doc = "Intro line.\n\nThe tower is 48 metres tall and made of granite."
    chunk = Chunk("d:13-62", "d", doc[13:], 13, len(doc))
    ev = locate("the tower is 48 metres  tall", [chunk])
    assert ev is not None and doc[ev.start : ev.end] == ev.text == "The tower is 48 metres tall"
    assert ev.chunk_id == "d:13-62" and ev.quote == "the tower is 48 metres  tall"
    assert locate("Bananas grow on the moon in winter.", [chunk]) is None


# --- generate ------------------------------------------------------------------------------------


def test_generate_writes_checked_pairs_with_provenance(fake, tmp_path):
    s = run(tmp_path, n=6, pairs_per_call=2)
    assert s.kept == 6 and s.llm_calls == 3 and s.planned_calls == 3 and s.checked
    pairs = rows(tmp_path / "qa.jsonl")
    assert len(pairs) == 6 and len({p["id"] for p in pairs}) == 6
    idx = corpus_index()
    by_id = {c.id: c for c in idx.chunks()}
    for p in pairs:
        prov = p["provenance"]
        assert prov["model"] == "fake/test-model" and prov["prompt"] == "factoid"
        assert len(prov["prompt_hash"]) == 64 and len(prov["call_id"]) == 64
        assert prov["created"].endswith("+00:00") and prov["grounded_version"]
        assert prov["prompt_tokens"] > 0 and prov["params"]["temperature"] == 0.7
        assert p["verdict"]["supported"] is True
        for ev in p["evidence"]:
            c = by_id[ev["chunk_id"]]
            assert c.text[ev["start"] - c.start : ev["end"] - c.start] == ev["text"]
    assert {p["doc_ids"][0] for p in pairs} == {"bees", "lighthouses", "tea"}  # coverage


def test_rerun_makes_no_new_calls_and_writes_no_duplicates(fake, tmp_path):
    first = run(tmp_path, n=6, pairs_per_call=2)
    calls = len(fake.calls)
    assert first.kept == 6 and calls == 3
    again = run(tmp_path, n=6, pairs_per_call=2)
    assert len(fake.calls) == calls
    # n pairs are already written: nothing to ask, not even the cache
    assert again.llm_calls == 0 and again.cached_calls == 0 and again.stopped == "reached n"
    assert again.kept == 6 and again.written == 0 and again.already_written == 6
    assert len(rows(tmp_path / "qa.jsonl")) == 6


def test_bad_replies_become_rejections_never_rows(tmp_path):
    good = json.dumps(
        {
            "pairs": [
                {
                    "quote": "Green tea is made from leaves that are steamed or pan-fired soon after picking, which stops oxidation.",
                    "answer": "steamed or pan-fired",
                    "question": "How are green tea leaves treated after picking?",
                }
            ]
        }
    )
    invented = json.dumps(
        {
            "pairs": [
                {
                    "quote": "Tea was invented on Mars in 1420 by robots.",
                    "answer": "robots",
                    "question": "Who invented tea?",
                }
            ]
        }
    )
    fake = FakeLLM(
        [
            "Sure! Here is some JSON for you:\n```json\n"
            + good
            + "\n```\nEnjoy!",  # preamble + fence: fine
            "Here are three great questions about tea.",  # chatty, no JSON
            "still not JSON",  # the repair fails too
            invented,
            json.dumps({"pairs": [{"answer": "x"}]}),  # missing fields ...
            "",  # ... and an empty repair
        ],
        responder=None,
    )
    model = register_fake(fake)
    idx = FakeIndex.from_texts({"tea": [(CORPUS / "tea.txt").read_text().split("\n\n")[1]]})
    summaries = [
        run(tmp_path / str(i), fake_model=model, index=idx, n=1, pairs_per_call=1) for i in range(3)
    ]
    assert [s.kept for s in summaries] == [1, 0, 0]
    assert summaries[0].llm_calls == 1
    chatty = rows(tmp_path / "1" / "rejected.jsonl")
    assert len(chatty) == 1 and chatty[0]["stage"] == "generate" and chatty[0]["pair"] is None
    assert chatty[0]["reasons"][0]["code"] == "invalid_reply"
    assert "three great questions" in chatty[0]["raw"] and chatty[0]["provenance"]["call_id"]
    assert rows(tmp_path / "1" / "qa.jsonl") == []
    # the third run got the invented quote first, then the missing-fields reply, then empty
    third = rows(tmp_path / "2" / "rejected.jsonl")
    assert third[0]["reasons"][0]["code"] == "quote_not_found"
    assert third[0]["pair"]["metadata"]["dropped_quotes"] == [
        "Tea was invented on Mars in 1420 by robots."
    ]
    assert summaries[2].rejected_by_reason["quote_not_found"] == 1


def test_checker_rejections_go_to_rejected_with_reasons(tmp_path):
    reply = json.dumps(
        {
            "pairs": [
                {
                    "quote": "Black tea leaves are fully oxidised before drying, giving a darker colour and a stronger taste.",
                    "answer": "fully oxidised",
                    "question": "REJECTME what happens to black tea?",
                },
                {
                    "quote": "Black tea leaves are fully oxidised before drying",
                    "answer": "before drying",
                    "question": "When are black tea leaves oxidised?",
                },
            ]
        }
    )
    model = register_fake(FakeLLM([reply], responder=None))
    idx = FakeIndex.from_texts({"tea": [(CORPUS / "tea.txt").read_text().split("\n\n")[1]]})
    s = run(tmp_path, fake_model=model, index=idx, n=2, pairs_per_call=2)
    assert s.kept == 1 and s.rejected == 1 and s.rejected_by_reason == {"low_support": 1}
    rej = rows(tmp_path / "rejected.jsonl")[0]
    assert rej["stage"] == "check" and rej["pair"]["verdict"]["supported"] is False


def test_failed_calls_are_not_written_and_a_rerun_retries_them(tmp_path):
    fake = FakeLLM([server_error(), server_error()])
    model = register_fake(fake)
    idx = FakeIndex.from_texts({"tea": [(CORPUS / "tea.txt").read_text().split("\n\n")[1]]})
    s = run(tmp_path, fake_model=model, index=idx, n=1, pairs_per_call=1, max_retries=1)
    assert s.failed_calls == 1 and s.kept == 0 and s.errors
    assert rows(tmp_path / "rejected.jsonl") == [] and rows(tmp_path / "qa.jsonl") == []
    s2 = run(tmp_path, fake_model=model, index=idx, n=1, pairs_per_call=1, max_retries=1)
    assert s2.kept == 1 and s2.failed_calls == 0


def refusing(messages):
    """A model that answers unanswerable questions as it should: the documents do not say."""
    pairs = json.loads(quoting_responder(messages))["pairs"]
    return json.dumps({"pairs": [{**p, "answer": "The documents do not say."} for p in pairs]})


def test_multi_hop_quotes_two_passages_and_unanswerable_says_so(fake, tmp_path):
    s = run(tmp_path / "mh", n=2, pairs_per_call=1, prompt="multi_hop")
    assert s.kept == 2
    for p in rows(tmp_path / "mh" / "qa.jsonl"):
        assert p["kind"] == "multi_hop" and len(p["chunk_ids"]) == 2
        assert len({e["chunk_id"] for e in p["evidence"]}) == 2
    fake.responder = refusing
    s = run(tmp_path / "un", n=2, pairs_per_call=1, prompt="unanswerable")
    assert s.kept == 2
    for p in rows(tmp_path / "un" / "qa.jsonl"):
        assert p["kind"] == "unanswerable" and p["answer"] == "The documents do not say."


def test_custom_prompt_language_and_hash_reach_provenance(fake, tmp_path):
    s = run(tmp_path, n=1, pairs_per_call=1, prompt=str(DATA / "custom_prompt.yaml"), language="fr")
    assert s.prompt == "definitions"
    p = rows(tmp_path / "qa.jsonl")[0]
    assert p["provenance"]["prompt"] == "definitions" and p["provenance"]["language"] == "fr"
    assert "definition questions in French" in fake.calls[0]["messages"][-1]["content"]


def test_dry_run_estimates_without_calling(fake, tmp_path):
    s = run(tmp_path, n=9, pairs_per_call=3, dry_run=True)
    assert fake.calls == [] and s.planned_calls == 3 and s.estimated_prompt_tokens > 0
    assert s.estimated_cost is None  # the fake model has no price
    priced = generate(
        index=corpus_index(), out=tmp_path, n=9, model="openai/gpt-4o-mini", dry_run=True
    )
    assert priced.estimated_cost and priced.estimated_cost > 0
    local = generate(
        index=corpus_index(), out=tmp_path, n=9, model="grounded-local/smollm2", dry_run=True
    )
    assert local.estimated_cost == 0.0
    assert not (tmp_path / "qa.jsonl").exists()


def test_kill_9_mid_run_then_rerun_loses_and_repeats_nothing(tmp_path):
    script = DATA / "fake_run.py"
    out, log = tmp_path / "out", tmp_path / "calls.log"
    args = [sys.executable, str(script), str(out), str(log), "1.5", "12", "2", "2"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    qa = out / "qa.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if qa.exists() and len(qa.read_text().splitlines()) >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, (
        "the run finished before it could be killed: " + proc.stderr.read().decode()[-500:]
    )
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first_calls = len(log.read_text().splitlines())
    with sqlite3.connect(out / ".cache" / "llm.sqlite") as db:
        cached = db.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
    written_before = len(rows(qa))
    assert 1 <= cached < 6 and written_before < 12

    done = subprocess.run(
        args[:4] + ["0", "12", "2", "2"], capture_output=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    summary = json.loads(done.stdout.decode().strip().splitlines()[-1])
    second_calls = len(log.read_text().splitlines()) - first_calls
    # Only calls that had not finished (were not cached) when killed are made again.
    assert summary["llm_calls"] == second_calls == 6 - cached
    assert summary["cached_calls"] == cached
    ids = [p["id"] for p in rows(qa)]
    assert len(ids) == len(set(ids)) == 12
    # All planned pairs present: same ids as an uninterrupted run.
    clean = subprocess.run(
        [
            sys.executable,
            str(script),
            str(tmp_path / "clean"),
            str(tmp_path / "c.log"),
            "0",
            "12",
            "2",
            "2",
        ],
        capture_output=True,
        env=env,
        timeout=120,
    )
    assert clean.returncode == 0, clean.stderr.decode()[-2000:]
    assert set(ids) == {p["id"] for p in rows(tmp_path / "clean" / "qa.jsonl")}


# --- CLI on a real index ---------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_generate_json_on_an_ingested_index(fake, tmp_path, real_index):
    index_dir, docs = real_index
    out = tmp_path / "gen"
    args = [
        "generate",
        "--index",
        str(index_dir),
        "--out",
        str(out),
        "-n",
        "4",
        "--model",
        "fake/test-model",
        "--pairs-per-call",
        "2",
        "--json",
    ]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert {
        "kept",
        "rejected",
        "llm_calls",
        "cached_calls",
        "cost",
        "prompt_tokens",
        "completion_tokens",
        "rejected_by_reason",
    } <= set(summary)
    assert summary["checked"] is True and summary["llm_calls"] >= 2
    texts = {p.read_text(encoding="utf-8") for p in docs.glob("*.txt")}
    for p in rows(out / "qa.jsonl") + [
        r["pair"] for r in rows(out / "rejected.jsonl") if r.get("pair")
    ]:
        for ev in p["evidence"]:
            # document offsets: the evidence text sits at [start:end] of one of the source files
            assert any(t[ev["start"] : ev["end"]] == ev["text"] for t in texts)
    again = CliRunner().invoke(main, args)
    assert json.loads(again.output)["llm_calls"] == 0
    dry = CliRunner().invoke(main, args[:-1] + ["--dry-run"])
    assert dry.exit_code == 0 and "LLM calls planned" in dry.output


def test_cli_rejects_unknown_prompt(tmp_path):
    res = CliRunner().invoke(
        main,
        ["generate", "--index", str(tmp_path), "--out", str(tmp_path / "o"), "--prompt", "nope"],
    )
    assert res.exit_code == 2 and "unknown prompt 'nope'" in res.output


# --- schema constraints for small models ------------------------------------------------------------


def test_answer_candidates_are_verbatim_names_numbers_and_dates():
    text = (CORPUS / "lighthouses.txt").read_text(encoding="utf-8")
    spans = answer_candidates(text)
    assert {"1843", "48 metres", "Alan Stevenson", "Skerry Point", "Ross Head"} <= set(spans)
    assert "Each" not in spans and all(s in text for s in spans)
    assert "June 4, 2014" in answer_candidates("On June 4, 2014, the league (NFL) met.")
    assert "NFL" in answer_candidates("On June 4, 2014, the league (NFL) met.")


@pytest.mark.parametrize("style", ["json_schema", "json_object"])
def test_constrain_schema_limits_quotes_and_answers_to_passage_text(style):
    from grounded.prompting import load_prompt

    text = 'The tower was built in 1843 by Alan Stevenson. He said "never again" to the board. It stands on Skerry Point today.'
    chunk = Chunk("d:0", "d", text, 0, len(text))
    rf = constrain_schema(load_prompt("factoid").response_format(2, style), [chunk], answers=True)
    schema = rf["json_schema"]["schema"] if style == "json_schema" else rf["schema"]
    item = schema["properties"]["pairs"]["items"]["properties"]
    assert item["quote"]["enum"] == [
        "The tower was built in 1843 by Alan Stevenson.",
        "It stands on Skerry Point today.",
    ]
    assert set(item["answer"]["enum"]) >= {"1843", "Alan Stevenson", "Skerry Point"}
    un = constrain_schema(
        load_prompt("unanswerable").response_format(1, style), [chunk], answers=False
    )
    un_item = (un["json_schema"]["schema"] if style == "json_schema" else un["schema"])[
        "properties"
    ]["pairs"]["items"]["properties"]
    assert "enum" in un_item["quote"] and "enum" not in un_item["answer"]


def test_cli_generate_refuses_an_output_folder_in_use(fake, tmp_path):
    from grounded.rundir import lock_output

    out = tmp_path / "gen"
    with lock_output(out):
        res = CliRunner().invoke(
            main,
            [
                "generate",
                "--index",
                str(tmp_path / "idx"),
                "--out",
                str(out),
                "-n",
                "2",
                "--model",
                "fake/test-model",
            ],
        )
    assert res.exit_code == 1, res.output
    assert "in use by" in res.output and str(os.getpid()) in res.output


def test_no_check_summary_says_unchecked(fake, tmp_path):
    from grounded.stages import NoCheck

    s = run(tmp_path, n=2, checker=NoCheck())
    assert s.to_dict()["checked"] is False
    assert json.loads((tmp_path / "summary.json").read_text())["checked"] is False
