"""Every documented input row shape goes through check, export, dedup, mix and eval dataset.

Each row is either processed or rejected with a reason; no command dies on a shape the README
accepts (evidence as objects with offsets, strings, one string; context/contexts; no evidence;
SQuAD JSON files).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grounded.cli import main
from grounded.jsonl import read_jsonl
from grounded.types import Evidence, Provenance, QAPair, Verdict

DOC = (
    "The Corbin Bridge spans 412 metres across the Ashby estuary. It opened in 1967.\n\n"
    "The Norwell lighthouse was built in 1871 and automated in 1965.\n\n"
    "Pell Island has a population of 340. Its only school closed in 2011."
)
SENTENCES = [s for para in DOC.split("\n\n") for s in para.replace(". ", ".\n").splitlines()]
QUESTIONS = [
    "When did the Corbin Bridge open?",
    "How long is the Corbin Bridge?",
    "When was the Norwell lighthouse built?",
    "How many people live on Pell Island?",
]
SQUAD = Path(__file__).parent / "data" / "check" / "squad.json"
EXPORT_FORMATS = (
    ["jsonl", "csv", "openai", "ragas", "deepeval"]
    + (["parquet"] if importlib.util.find_spec("pyarrow") else [])
    + (
        ["hf"]
        if importlib.util.find_spec("datasets") and importlib.util.find_spec("pyarrow")
        else []
    )
)
SHAPES = (
    "canonical",
    "evidence_strings",
    "evidence_string",
    "evidence_objects",
    "evidence_object",
    "context",
    "contexts",
    "context_list",
    "no_evidence",
    "squad_answers",
    "hf_answers",
)


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    return path


def _lines(path: Path) -> list[dict[str, Any]]:
    # the project's reader: str.splitlines() would also split at U+2028 inside a JSON string
    return list(read_jsonl(path))


def _cli(*args: str) -> Any:
    res = CliRunner().invoke(main, [str(a) for a in args])
    assert "internal error" not in res.output and "Traceback" not in res.output, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), res.output
    return res


def shaped_row(shape: str, question: str, answer: str, sentence: str) -> dict[str, Any]:
    """One row of a documented shape, quoting `sentence` where the shape carries evidence."""
    start = DOC.find(sentence)
    if shape == "canonical":
        ev = Evidence(
            doc_id="doc",
            chunk_id="doc:0-10",
            start=max(start, 0),
            end=max(start, 0) + len(sentence),
            text=sentence,
            score=1.0,
        )
        return QAPair(
            id=QAPair.make_id(question, answer),
            question=question,
            answer=answer,
            evidence=(ev,),
            doc_ids=("doc",),
            contexts=(DOC,),
            provenance=Provenance(model="m"),
            verdict=Verdict(True, 0.9),
        ).to_dict()
    base: dict[str, Any] = {"question": question, "answer": answer}
    extra: dict[str, Any] = {
        "evidence_strings": {"evidence": [sentence]},
        "evidence_string": {"evidence": sentence},
        "evidence_objects": {
            "evidence": [{"chunk_id": "", "text": sentence, "start": 0, "end": 0}]
        },
        "evidence_object": {"evidence": {"quote": sentence}},
        "context": {"context": DOC},
        "contexts": {"contexts": [DOC, sentence]},
        "context_list": {"context": [DOC]},
        "no_evidence": {},
        "squad_answers": {"answer": [{"text": answer, "answer_start": 0}], "context": DOC},
        "hf_answers": {"answers": {"text": [answer], "answer_start": [0]}, "context": DOC},
    }[shape]
    if shape == "hf_answers":
        del base["answer"]
    return {**base, **extra}


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shapes")
    (root / "docs").mkdir()
    (root / "docs" / "places.txt").write_text(DOC, encoding="utf-8")
    res = _cli("ingest", root / "docs", "--index", root / "index")
    assert res.exit_code == 0, res.output
    return root / "index"


# ------------------------------------------------------------------ issue 8: the CLI failures


@pytest.mark.parametrize(
    "shape", ["evidence_strings", "evidence_string", "evidence_object", "hf_answers"]
)
def test_export_dedup_mix_eval_accept_string_evidence(tmp_path, shape):
    rows = [shaped_row(shape, q, "1967", SENTENCES[1]) for q in QUESTIONS]
    qa = _write(tmp_path / "qa.jsonl", rows)
    res = _cli("export", qa, "--format", "csv", "--out", tmp_path / "qa.csv", "--json")
    assert res.exit_code == 0 and json.loads(res.output)["rows"] == 4
    res = _cli("dedup", qa, "--out", tmp_path / "d", "--embedder", "none", "--json")
    assert res.exit_code == 0 and json.loads(res.output)["input"] == 4
    res = _cli(
        "mix",
        "--real",
        SQUAD,
        "--synthetic",
        qa,
        "--ratio",
        "0.5",
        "--out",
        tmp_path / "m.jsonl",
        "--json",
    )
    assert res.exit_code in (0, 10) and json.loads(res.output)["synthetic"]["available"] == 4
    res = _cli("eval", "dataset", qa, "--embedder", "none", "--json")
    assert res.exit_code == 0 and json.loads(res.output)["n"] == 4


def test_check_finds_string_evidence_in_the_index(tmp_path, index_dir):
    rows = [
        {
            "question": "When did the Corbin Bridge open?",
            "answer": "1967",
            "evidence": ["It opened in 1967."],
        },
        {
            "question": "How many people live on Pell Island?",
            "answer": "340",
            "evidence": "Pell Island has a population of 340.",
        },
    ]
    qa = _write(tmp_path / "qa.jsonl", rows)
    res = _cli(
        "check", qa, "--index", index_dir, "--out", tmp_path / "o", "--semantic", "off", "--json"
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary["kept"] == 2 and "no_sources" not in summary["reasons"], summary
    kept = _lines(tmp_path / "o" / "qa.jsonl")
    ev = kept[0]["evidence"][0]
    assert ev["chunk_id"] and DOC[ev["start"] : ev["end"]] == "It opened in 1967."


def test_check_rejects_a_row_without_context_and_checks_the_rest(tmp_path):
    rows = [
        {"question": "When did the Corbin Bridge open?", "answer": "1967", "context": DOC},
        {"question": "When was the lighthouse built?", "answer": "1871"},
        {
            "question": "How long is the bridge?",
            "answer": "412 metres",
            "evidence": ["spans 412 metres"],
        },
        {"answer": "no question here"},
    ]
    qa = _write(tmp_path / "qa.jsonl", rows)
    res = _cli("check", qa, "--out", tmp_path / "o", "--semantic", "off")
    assert res.exit_code == 0, res.output
    assert "no_sources (2)" in res.output and "--index" in res.output
    assert len(_lines(tmp_path / "o" / "qa.jsonl")) == 1
    rejected = _lines(tmp_path / "o" / "rejected.jsonl")
    assert [r["reasons"][0]["code"] for r in rejected] == [
        "no_sources",
        "no_sources",
        "unreadable_row",
    ]
    assert "question" in rejected[2]["reasons"][0]["message"] and rejected[2]["raw"]


@pytest.mark.parametrize("command", ["check", "export", "dedup", "eval dataset"])
def test_squad_json_is_read_everywhere(tmp_path, command):
    n = sum(len(p["qas"]) for a in json.loads(SQUAD.read_text())["data"] for p in a["paragraphs"])
    args = {
        "check": ["check", SQUAD, "--out", tmp_path / "o", "--semantic", "off", "--json"],
        "export": ["export", SQUAD, "--format", "ragas", "--out", tmp_path / "r.jsonl", "--json"],
        "dedup": ["dedup", SQUAD, "--out", tmp_path / "d", "--embedder", "none", "--json"],
        "eval dataset": ["eval", "dataset", SQUAD, "--embedder", "none", "--json"],
    }[command]
    res = _cli(*args)
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary.get("n", summary.get("rows", summary.get("input"))) == n


def test_a_malformed_row_is_an_error_naming_the_row_not_a_crash(tmp_path):
    qa = _write(tmp_path / "qa.jsonl", [{"question": "Q?", "answer": "A", "evidence": [3]}])
    for args in (
        ["export", qa, "--format", "csv", "--out", tmp_path / "x.csv"],
        ["dedup", qa, "--out", tmp_path / "d", "--embedder", "none"],
        ["eval", "dataset", qa, "--embedder", "none"],
    ):
        res = _cli(*args)
        assert (
            res.exit_code == 1
            and f"{qa}:1: evidence items must be strings or objects" in res.output
        )


# ------------------------------------------------------------------ the property: no shape crashes

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
_row = st.builds(
    shaped_row,
    st.sampled_from(SHAPES),
    st.sampled_from(QUESTIONS) | _text,
    st.sampled_from(["1967", "412 metres", "340", "1871", ""]) | _text,
    st.sampled_from(SENTENCES) | _text,
)


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(_row, min_size=1, max_size=6))
def test_every_documented_shape_is_processed_or_rejected_with_a_reason(
    tmp_path_factory, index_dir, rows
):
    tmp = tmp_path_factory.mktemp("prop")
    qa = _write(tmp / "qa.jsonl", rows)
    n = len(rows)
    for index in ([], ["--index", index_dir]):
        out = tmp / ("checked-index" if index else "checked")
        res = _cli("check", qa, *index, "--out", out, "--semantic", "off", "--json")
        assert res.exit_code == 0, res.output
        summary = json.loads(res.output)
        kept, rejected = _lines(out / "qa.jsonl"), _lines(out / "rejected.jsonl")
        assert summary["n"] == len(kept) + len(rejected) == n
        assert all(r["reasons"] and r["reasons"][0]["code"] for r in rejected)
    for fmt in EXPORT_FORMATS:
        res = _cli("export", qa, "--format", fmt, "--out", tmp / f"x-{fmt}", "--json")
        assert res.exit_code == 0 and json.loads(res.output)["rows"] == n, res.output
    res = _cli("dedup", qa, "--out", tmp / "d", "--embedder", "none", "--json")
    assert (
        res.exit_code == 0
        and json.loads(res.output)["kept"] + json.loads(res.output)["removed"] == n
    )
    for real in (qa, SQUAD):
        res = _cli(
            "mix",
            "--real",
            real,
            "--synthetic",
            qa,
            "--ratio",
            "0.5",
            "--out",
            tmp / "m.jsonl",
            "-n",
            "2",
            "--json",
        )
        assert res.exit_code in (0, 10) and json.loads(res.output)["synthetic"]["available"] == n, (
            res.output
        )
    res = _cli("eval", "dataset", qa, "--embedder", "none", "--json")
    assert res.exit_code == 0 and json.loads(res.output)["n"] == n, res.output
