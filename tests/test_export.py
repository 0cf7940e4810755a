"""Each export format has the columns its reader expects and round-trips the pairs."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from grounded.commands.dataset import export as export_command
from grounded.errors import ConfigError
from grounded.export import CSV_COLUMNS, export
from grounded.qaset import read_pairs_jsonl
from grounded.types import Chunk, Evidence, Provenance, QAPair, Verdict

DATA = Path(__file__).parent / "data" / "health"
DOC = "The Eddystone Lighthouse stands on dangerous rocks south of Plymouth. Keepers lived in the tower until 1982."


@pytest.fixture(scope="module")
def pairs() -> list[QAPair]:
    ev = Evidence(
        doc_id="doc1",
        chunk_id="doc1:0-110",
        start=71,
        end=110,
        text="Keepers lived in the tower until 1982.",
        score=1.0,
    )
    chunk_pair = QAPair(
        id="p1", question="Until when did keepers live in the tower?", answer="1982", evidence=(ev,),
        doc_ids=("doc1",), chunk_ids=("doc1:0-110",), verdict=Verdict(True, 0.93),
        provenance=Provenance(model="openai/gpt-4o-mini", prompt="factoid", prompt_hash="abc"),
    )  # fmt: skip
    inline = QAPair(
        id="p2",
        question="Where are the rocks?",
        answer="south of Plymouth",
        contexts=('Context, with "quotes"\nand a newline.',),
        origin="real",
    )
    return [chunk_pair, inline]


@pytest.fixture(scope="module")
def chunks() -> dict[str, Chunk]:
    return {
        "doc1:0-110": Chunk(
            id="doc1:0-110", doc_id="doc1", text=DOC, start=0, end=110, source="docs/eddystone.md"
        )
    }


def test_jsonl_round_trips(tmp_path, pairs):
    out = tmp_path / "qa.jsonl"
    assert export(pairs, out, format="jsonl") == 2
    assert read_pairs_jsonl(out) == pairs


def test_csv_columns_and_values(tmp_path, pairs, chunks):
    out = tmp_path / "qa.csv"
    export(pairs, out, format="csv", chunks=chunks)
    with out.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == CSV_COLUMNS
    first, second = rows
    assert (first["id"], first["question"], first["answer"], first["kind"]) == (
        "p1",
        pairs[0].question,
        "1982",
        "factoid",
    )
    assert (
        first["contexts"] == DOC and first["evidence"] == "Keepers lived in the tower until 1982."
    )
    assert (first["doc_ids"], first["source"], first["score"], first["supported"]) == (
        "doc1",
        "docs/eddystone.md",
        "0.9300",
        "true",
    )
    assert (first["model"], first["prompt"]) == ("openai/gpt-4o-mini", "factoid")
    assert (
        second["contexts"] == 'Context, with "quotes"\nand a newline.'
        and second["score"] == ""
        and second["origin"] == "real"
    )


def test_without_chunks_contexts_fall_back_to_evidence(tmp_path, pairs):
    out = tmp_path / "ragas.jsonl"
    export(pairs, out, format="ragas")
    first = json.loads(out.read_text(encoding="utf-8").splitlines()[0])
    assert first["reference_contexts"] == ["Keepers lived in the tower until 1982."]


def test_openai_chat_rows(tmp_path, pairs, chunks):
    out = tmp_path / "ft.jsonl"
    export(pairs, out, format="openai", chunks=chunks, system="Be brief.")
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [m["role"] for m in rows[0]["messages"]] == ["system", "user", "assistant"]
    assert rows[0]["messages"][0]["content"] == "Be brief."
    assert (
        rows[0]["messages"][1]["content"] == pairs[0].question
        and rows[0]["messages"][2]["content"] == "1982"
    )
    export(pairs, out, format="openai", chunks=chunks, with_context=True)
    user = json.loads(out.read_text(encoding="utf-8").splitlines()[0])["messages"][1]["content"]
    assert user.startswith("Documents:\n" + DOC) and user.endswith("Question: " + pairs[0].question)


def test_ragas_fields(tmp_path, pairs, chunks):
    out = tmp_path / "ragas.jsonl"
    export(pairs, out, format="ragas", chunks=chunks)
    first = json.loads(out.read_text(encoding="utf-8").splitlines()[0])
    # SingleTurnSample field names (ragas.dataset_schema)
    assert first == {
        "user_input": pairs[0].question,
        "reference": "1982",
        "reference_contexts": [DOC],
        "response": "",
        "retrieved_contexts": [],
    }


def test_deepeval_goldens(tmp_path, pairs, chunks):
    out = tmp_path / "goldens.json"
    export(pairs, out, format="deepeval", chunks=chunks)
    goldens = json.loads(out.read_text(encoding="utf-8"))
    # Golden field names (deepeval.dataset.golden); add_goldens_from_json_file reads a JSON array.
    assert isinstance(goldens, list) and set(goldens[0]) == {
        "input",
        "expected_output",
        "context",
        "source_file",
        "additional_metadata",
    }
    assert (
        goldens[0]["input"],
        goldens[0]["expected_output"],
        goldens[0]["context"],
        goldens[0]["source_file"],
    ) == (pairs[0].question, "1982", [DOC], "docs/eddystone.md")
    assert goldens[0]["additional_metadata"]["id"] == "p1" and goldens[1]["source_file"] is None


def test_parquet_round_trip(tmp_path, pairs, chunks):
    pq = pytest.importorskip(
        "pyarrow.parquet", reason="pyarrow not installed (pip install 'grounded[export]')"
    )
    out = tmp_path / "qa.parquet"
    export(pairs, out, format="parquet", chunks=chunks)
    table = pq.read_table(out)
    assert set(CSV_COLUMNS) <= set(table.column_names)
    rows = table.to_pylist()
    assert (
        rows[0]["question"] == pairs[0].question
        and rows[0]["contexts"] == [DOC]
        and rows[0]["score"] == pytest.approx(0.93)
    )
    assert rows[0]["evidence_spans"][0]["start"] == 71 and rows[1]["score"] is None


def test_hf_save_to_disk_round_trip(tmp_path, pairs, chunks):
    datasets = pytest.importorskip(
        "datasets", reason="datasets not installed (pip install 'grounded[export]')"
    )
    out = tmp_path / "hf"
    export(pairs, out, format="hf", chunks=chunks)
    ds = datasets.load_from_disk(str(out))
    assert (
        len(ds) == 2 and ds[0]["answer"] == "1982" and ds[1]["contexts"] == list(pairs[1].contexts)
    )


def test_unknown_format(tmp_path, pairs):
    with pytest.raises(ConfigError, match="unknown export format"):
        export(pairs, tmp_path / "x", format="xml")


def test_cli_export(tmp_path):
    out = tmp_path / "qa.csv"
    result = CliRunner().invoke(
        export_command,
        [str(DATA / "run" / "qa.jsonl"), "--format", "csv", "--out", str(out), "--json"],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["rows"] == 30
    with out.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 30 and rows[0]["contexts"].startswith("The Eddystone Lighthouse")
    result = CliRunner().invoke(
        export_command, [str(DATA / "run" / "qa.jsonl"), "--format", "xml", "--out", str(out)]
    )
    assert result.exit_code == 2


@pytest.mark.parametrize(("fmt", "module"), [("hf", "datasets"), ("parquet", "pyarrow")])
def test_missing_optional_dependency_says_what_to_install(
    tmp_path, pairs, monkeypatch, fmt, module
):
    from grounded.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    with pytest.raises(MissingDependencyError) as info:
        export(pairs, tmp_path / "out", format=fmt)
    assert "grounded[export]" in info.value.hint


def test_exporter_plugin_from_an_entry_point_is_a_cli_format(tmp_path, monkeypatch):
    from plugin_dist import install_plugin

    from grounded.export import EXPORTERS, formats, unregister_exporter

    install_plugin(
        tmp_path,
        monkeypatch,
        group="grounded.exporters",
        module="grounded_tsv_exporter",
        source="""
        from grounded.export import register_exporter

        @register_exporter("tsv")
        def export_tsv(pairs, path, options):
            lines = [f"{p.question}\\t{p.answer}" for p in pairs]
            path.write_text("\\n".join(lines) + "\\n", encoding="utf-8")
            return len(lines)
        """,
    )
    EXPORTERS.load_plugins(again=True)
    try:
        assert formats()[-1] == "tsv" and formats()[:2] == ["jsonl", "csv"]
        out = tmp_path / "qa.tsv"
        args = [str(DATA / "run" / "qa.jsonl"), "--format", "tsv", "--out", str(out), "--json"]
        result = CliRunner().invoke(export_command, args)
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["rows"] == 30
        lines = out.read_text(encoding="utf-8").splitlines()
        assert len(lines) == 30 and all(line.count("\t") == 1 for line in lines)
        assert "tsv" in CliRunner().invoke(export_command, ["--help"]).output
    finally:
        unregister_exporter("tsv")
    result = CliRunner().invoke(
        export_command, [str(DATA / "run" / "qa.jsonl"), "--format", "tsv", "--out", str(out)]
    )
    assert result.exit_code == 2
