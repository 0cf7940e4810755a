"""Dataset health figures on hand-computable sets, and the narrowing warning on shipped fixtures."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from grounded.commands.dataset import eval_dataset
from grounded.eval.dataset import (
    coverage,
    dataset_health,
    distinct_n,
    entropy_bits,
    length_stats,
    mean_pairwise_similarity,
    wh_type,
)
from grounded.qaset import QASet, read_qa_set, read_squad
from grounded.types import Evidence, QAPair

DATA = Path(__file__).parent / "data" / "health"


class FakeEmbedder:
    """Bag-of-words vectors: identical word sets give cosine 1, disjoint ones 0."""

    name = "fake-bow"
    dim = 64

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def embed(self, texts):
        self.calls.append(list(texts))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                out[i, sum(map(ord, word)) % self.dim] = 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1
        return out / norms


def pair(q: str, a: str = "x", doc: str = "", chunk: str = "") -> QAPair:
    return QAPair(
        id=q, question=q, answer=a,
        doc_ids=(doc,) if doc else (), chunk_ids=(chunk,) if chunk else (),
    )  # fmt: skip


def test_distinct_n_by_hand():
    texts = ["a b a b", "a b c"]
    # unigrams: a b a b a b c -> 3 unique / 7
    assert distinct_n(texts, 1) == pytest.approx(3 / 7)
    # bigrams: ab ba ab | ab bc -> {ab, ba, bc} 3 / 5 (no bigram crosses the texts)
    assert distinct_n(texts, 2) == pytest.approx(3 / 5)
    assert distinct_n(texts, 3) == pytest.approx(3 / 3)
    assert distinct_n([], 2) == 0.0


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("What is the capital of France?", "what"),
        ("In which year did it open?", "which"),
        ("How many moons does Mars have?", "how many"),
        ("How much did it cost?", "how much"),
        ("How did the war end?", "how"),
        ("The tower was designed by whom?", "whom"),
        ("Is the tower still manned?", "yes/no"),
        ("Name the designer.", "other"),
    ],
)
def test_wh_type(question, kind):
    assert wh_type(question) == kind


def test_entropy_and_lengths_by_hand():
    assert entropy_bits({"what": 2, "who": 2}) == pytest.approx(1.0)
    assert entropy_bits({"what": 4}) == 0.0
    assert entropy_bits({"a": 1, "b": 1, "c": 1, "d": 1}) == pytest.approx(2.0)
    stats = length_stats(["one", "one two three", "a b c d e"])
    assert stats["mean"] == pytest.approx(3.0)
    assert stats["median"] == 3.0
    assert (stats["min"], stats["max"]) == (1, 5)
    assert sum(stats["histogram"].values()) == 3
    assert (
        stats["histogram"]["1"] == 1
        and stats["histogram"]["3"] == 1
        and stats["histogram"]["4-5"] == 1
    )


def test_mean_pairwise_similarity_by_hand():
    emb = FakeEmbedder()
    same = mean_pairwise_similarity(["alpha beta", "alpha beta", "alpha beta"], emb)
    assert same["mean_cosine"] == pytest.approx(1.0, abs=1e-5)
    # cos(ab, ab)=1, cos(ab, cd)=0 twice -> mean over 3 pairs = 1/3 (hash buckets differ for these words)
    mixed = mean_pairwise_similarity(["alpha beta", "alpha beta", "gamma delta"], emb)
    assert mixed["mean_cosine"] == pytest.approx(1 / 3, abs=1e-4)
    assert mixed["sampled"] == 3 and mixed["embedder"] == "fake-bow"


def test_mean_pairwise_similarity_samples_large_sets():
    emb = FakeEmbedder()
    result = mean_pairwise_similarity([f"q{i} word" for i in range(50)], emb, sample=10)
    assert result["sampled"] == 10 and len(emb.calls[0]) == 10


def test_coverage_shares_and_unused_documents():
    universe = (
        {"doc_id": "d1", "title": "One", "chunks": 2},
        {"doc_id": "d2", "title": "Two", "chunks": 1},
        {"doc_id": "d3", "title": "Three", "chunks": 1},
    )
    pairs = (
        pair("q1", doc="d1", chunk="d1#0"),
        pair("q2", doc="d1", chunk="d1#1"),
        pair("q3", doc="d2", chunk="d2#0"),
    )
    cov = coverage(QASet(pairs, documents=universe, chunks_total=4))
    assert cov["documents_cited"] == 2 and cov["documents_total"] == 3
    assert cov["documents_share"] == pytest.approx(2 / 3, abs=1e-4)
    assert cov["chunks_cited"] == 3 and cov["chunks_share"] == pytest.approx(0.75)
    assert cov["unused_documents"] == ["Three"]
    assert {d["doc_id"]: d["pairs"] for d in cov["documents"]} == {"d1": 2, "d2": 1, "d3": 0}
    # spread: 2 documents cited by 3 pairs out of 3 possible
    assert cov["document_spread"] == pytest.approx(2 / 3, abs=1e-4)


def test_coverage_counts_evidence_and_is_absent_without_citations():
    ev = Evidence(doc_id="d9", chunk_id="d9#3", start=0, end=1, text="x", score=1.0)
    cov = coverage(QASet((QAPair(id="1", question="q?", answer="x", evidence=(ev,)),)))
    assert cov["documents_cited"] == 1 and cov["chunks_cited"] == 1 and "documents_total" not in cov
    assert coverage(QASet((pair("Who?"),))) is None


def test_read_squad_fixture():
    qaset = read_squad(DATA / "human-a.json")
    assert len(qaset) == 24 and qaset.chunks_total == 2
    assert [d["doc_id"] for d in qaset.documents] == ["Lighthouses", "Sourdough"]
    first = qaset.pairs[0]
    assert (
        first.origin == "real"
        and first.contexts[0][first.evidence[0].start : first.evidence[0].end] == first.answer
    )


def test_read_plain_jsonl_rows(tmp_path):
    path = tmp_path / "plain.jsonl"
    path.write_text(
        '{"question": "Who?", "answer": "Me", "context": "Me and you"}\n', encoding="utf-8"
    )
    (only,) = read_qa_set(path).pairs
    assert (only.question, only.answer, only.contexts) == ("Who?", "Me", ("Me and you",))
    path.write_text('{"answer": "Me"}\n', encoding="utf-8")
    with pytest.raises(Exception, match="no 'question'"):
        read_qa_set(path)


def test_run_dir_summary_supplies_document_totals(tmp_path):
    (tmp_path / "qa.jsonl").write_text(
        json.dumps(pair("Who?", doc="d1", chunk="c1").to_dict()) + "\n", encoding="utf-8"
    )
    (tmp_path / "summary.json").write_text(
        json.dumps({"ingest": {"documents": 4, "chunks": 10}}), encoding="utf-8"
    )
    cov = dataset_health(tmp_path / "qa.jsonl", embedder=None)["coverage"]
    assert cov["documents_share"] == 0.25 and cov["chunks_share"] == 0.1


def test_narrowing_quiet_on_human_halves():
    health = dataset_health(
        DATA / "human-a.json", reference=DATA / "human-b.json", embedder=FakeEmbedder()
    )
    assert health["narrowing"]["warning"] is False, health["narrowing"]
    assert health["matched"]["size"] == 24
    assert set(health["narrowing"]["checks"]) >= {
        "distinct_2",
        "wh_entropy",
        "similarity",
        "top_prefix",
        "document_spread",
    }


def test_narrowing_fires_on_collapsed_templates():
    health = dataset_health(
        DATA / "collapsed.jsonl", reference=DATA / "human-b.json", embedder=FakeEmbedder()
    )
    narrowing = health["narrowing"]
    assert narrowing["warning"] is True
    fired = {k for k, v in narrowing["checks"].items() if v["fired"]}
    assert {"distinct_2", "wh_entropy"} <= fired
    assert health["wh"]["shares"] == {"what": 1.0}


def test_narrowing_needs_enough_questions():
    small = QASet(tuple(pair(f"What is {i}?") for i in range(3)))
    health = dataset_health(small, reference=DATA / "human-b.json", embedder=None)
    assert health["narrowing"]["warning"] is False and "too few" in health["narrowing"]["note"]


def test_distinct_n_compared_on_equal_sizes():
    health = dataset_health(
        DATA / "collapsed.jsonl", reference=DATA / "human-b.json", embedder=None
    )
    assert health["n"] == 32 and health["reference"]["n"] == 24
    assert health["matched"]["size"] == 24
    # The 32-question set is subsampled to 24 in each draw, so its matched figure differs from the full one.
    assert health["matched"]["distinct_2"]["set"] != health["distinct_2"]


def test_cli_json_summary():
    result = CliRunner().invoke(
        eval_dataset,
        [
            str(DATA / "collapsed.jsonl"),
            "--reference",
            str(DATA / "human-a.json"),
            "--embedder",
            "none",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["n"] == 32 and "distinct_2" in data and data["coverage"]["documents_cited"] == 4
    assert data["narrowing"]["warning"] is True and data["narrowing"]["reasons"]


def test_cli_text_output_and_bad_file(tmp_path):
    result = CliRunner().invoke(eval_dataset, [str(DATA / "human-a.json"), "--embedder", "none"])
    assert (
        result.exit_code == 0
        and "distinct_2" in result.output
        and "no narrowing warning" in result.output
    )
    bad = tmp_path / "bad.json"
    bad.write_text('{"data": 3}', encoding="utf-8")
    result = CliRunner().invoke(eval_dataset, [str(bad), "--format", "squad", "--embedder", "none"])
    assert result.exit_code == 1 and "not SQuAD JSON" in result.output


def test_entropy_matches_definition():
    health = dataset_health(DATA / "human-a.json", embedder=None)
    shares = health["wh"]["shares"]
    assert health["wh"]["entropy_bits"] == pytest.approx(
        -sum(s * math.log2(s) for s in shares.values()), abs=1e-3
    )
