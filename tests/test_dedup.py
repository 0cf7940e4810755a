"""Deduplication: exact, near and paraphrase duplicates; the best-supported copy survives."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from grounded.commands.dataset import dedup as dedup_command
from grounded.dedup import answers_compatible, dedup, normalise
from grounded.types import Evidence, QAPair, Verdict


class TableEmbedder:
    """Vectors from a table: texts in the same group get the same direction, others orthogonal."""

    name = "table"

    def __init__(self, groups: dict[str, int], dim: int = 16) -> None:
        self.groups = groups
        self.dim = dim
        self.calls: list[list[str]] = []

    def embed(self, texts):
        self.calls.append(list(texts))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            out[i, self.groups.get(text, self.dim - 1 - i % 4)] = 1.0
        return out


def qa(
    pid: str, question: str, answer: str = "Paris", score: float | None = None, evidence: int = 0
) -> QAPair:
    ev = tuple(
        Evidence(doc_id="d", chunk_id="c", start=k, end=k + 1, text="x", score=1.0)
        for k in range(evidence)
    )
    verdict = Verdict(supported=True, score=score) if score is not None else None
    return QAPair(id=pid, question=question, answer=answer, evidence=ev, verdict=verdict)


def test_normalise():
    assert normalise("  What's   the CAPITAL of France?? ") == "what s the capital of france"


def test_exact_duplicates_keep_best_supported():
    pairs = [
        qa("a", "What is the capital of France?", score=0.5),
        qa("b", "what is the capital of france", score=0.9),
        qa("c", "Who wrote Hamlet?", "Shakespeare"),
    ]
    kept, removed = dedup(pairs, embedder=None)
    assert [p.id for p in kept] == ["b", "c"]
    (rej,) = removed
    assert rej.stage == "dedup" and rej.pair.id == "a" and rej.duplicate_of == "b"
    assert rej.reasons[0].code == "duplicate" and "exact" in rej.reasons[0].message


def test_ties_on_score_go_to_more_evidence_then_input_order():
    pairs = [
        qa("a", "Who wrote Hamlet?", "Shakespeare", score=0.8, evidence=1),
        qa("b", "Who wrote Hamlet?", "Shakespeare", score=0.8, evidence=2),
    ]
    kept, removed = dedup(pairs, embedder=None)
    assert [p.id for p in kept] == ["b"] and removed[0].duplicate_of == "b"
    kept, _ = dedup([qa("x", "Who wrote Hamlet?"), qa("y", "Who wrote Hamlet?")], embedder=None)
    assert [p.id for p in kept] == ["x"]


def test_near_duplicates_by_characters():
    pairs = [
        qa("a", "When did Levi's Stadium open?", "2014", score=0.7),
        qa("b", "When did Lev's Stadium open?", "2014", score=0.9),
        qa("c", "Super Bowl 50 was won by which team?", "Denver Broncos"),
        qa("d", "Which team was Super Bowl 50 won by?", "Denver Broncos"),  # reordered words
    ]
    kept, removed = dedup(pairs, embedder=None, near=0.9)
    assert [p.id for p in kept] == ["b", "c"]
    assert {r.pair.id: r.duplicate_of for r in removed} == {"a": "b", "d": "c"}
    assert all("near duplicate" in r.reasons[0].message for r in removed)


def test_near_questions_with_different_answers_are_kept():
    pairs = [
        qa("a", "When was Marie Curie born?", "1867"),
        qa("b", "When was Pierre Curie born?", "1859"),
    ]
    kept, removed = dedup(pairs, embedder=None, near=0.85)
    assert len(kept) == 2 and not removed


def test_paraphrases_by_embedding():
    q1, q2, q3 = (
        "Who painted the Mona Lisa?",
        "The Mona Lisa is a work by which artist?",
        "Where is the Louvre?",
    )
    emb = TableEmbedder({q1: 0, q2: 0, q3: 1})
    pairs = [
        qa("a", q1, "Leonardo da Vinci", score=0.6),
        qa("b", q2, "da Vinci", score=0.8),
        qa("c", q3, "Paris"),
    ]
    kept, removed = dedup(pairs, embedder=emb, semantic=0.92)
    assert [p.id for p in kept] == ["b", "c"]
    (rej,) = removed
    assert rej.duplicate_of == "b" and "paraphrase" in rej.reasons[0].message
    # Switching the semantic test off keeps both.
    kept, _ = dedup(pairs, embedder=emb, semantic=None)
    assert len(kept) == 3


def test_embedder_only_sees_questions_left_after_cheaper_tests():
    emb = TableEmbedder({})
    dedup(
        [qa("a", "Who wrote Hamlet?"), qa("b", "who wrote hamlet"), qa("c", "Where is Paris?")],
        embedder=emb,
    )
    assert emb.calls == [["Who wrote Hamlet?", "Where is Paris?"]]


def test_answers_compatible():
    assert answers_compatible("Leonardo da Vinci", "da Vinci")
    assert answers_compatible("2014.", "2014")
    assert not answers_compatible("1867", "1859")


def test_scales_in_blocks_beyond_one_block():
    # 1,300 distinct questions plus exact and near copies spread over several blocks.
    rng = random.Random(7)
    vocab = [
        f"{a}{b}"
        for a in ("bra", "cle", "dru", "fis", "glo", "hum", "jin", "kor")
        for b in ("ma", "ne", "pi", "so", "tu", "vy", "wo", "xe")
    ]
    base = [
        qa(f"q{i}", "Why " + " ".join(rng.sample(vocab, 6)) + "?", " ".join(rng.sample(vocab, 3)))
        for i in range(1300)
    ]
    copies = [qa(f"e{i}", base[i].question.upper(), base[i].answer) for i in range(0, 1300, 13)]
    nears = [
        qa(f"n{i}", base[i].question.replace("Question", "Questions"), base[i].answer)
        for i in range(5, 1300, 13)
    ]
    kept, removed = dedup(base + copies + nears, embedder=None)
    assert {p.id for p in kept} == {p.id for p in base}
    assert len(removed) == len(copies) + len(nears)


@pytest.fixture
def qa_file(tmp_path: Path) -> Path:
    path = tmp_path / "in.jsonl"
    rows = [
        qa("a", "Who wrote Hamlet?", "Shakespeare", score=0.4),
        qa("b", "who wrote Hamlet", "Shakespeare", score=0.9),
        qa("c", "Where is Paris?", "France"),
    ]
    path.write_text("".join(json.dumps(r.to_dict()) + "\n" for r in rows), encoding="utf-8")
    return path


def test_cli_writes_kept_and_appends_rejections(qa_file, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "rejected.jsonl").write_text(
        json.dumps({"stage": "check", "reasons": [{"code": "low_support", "message": ""}]}) + "\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        dedup_command, [str(qa_file), "--out", str(out), "--embedder", "none", "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["kept"] == 2 and summary["removed"] == 1
    kept = [json.loads(line)["id"] for line in (out / "qa.jsonl").read_text().splitlines()]
    assert kept == ["b", "c"]
    rejected = [json.loads(line) for line in (out / "rejected.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in rejected] == ["check", "dedup"]
    assert rejected[1]["duplicate_of"] == "b" and rejected[1]["pair"]["id"] == "a"


@pytest.fixture(scope="module")
def minilm():
    from grounded.embed import get_embedder

    return get_embedder("minilm")


@pytest.mark.slow
def test_paraphrases_with_minilm_at_the_default_threshold(minilm):
    pairs = [
        qa("a", "How much did it cost to build the stadium?", "$1.2 billion", score=0.7),
        qa("b", "What was the construction cost of the stadium?", "$1.2 billion", score=0.9),
        qa("c", "How many seats does the stadium have?", "68,500"),
        qa("d", "Who designed the Eddystone lighthouse?", "James Douglass"),
        # cosine 0.93 with d, but a different answer: a different question
        qa("e", "Who built the first Eddystone lighthouse?", "Henry Winstanley"),
    ]
    kept, removed = dedup(pairs, embedder=minilm)
    assert [p.id for p in kept] == ["b", "c", "d", "e"]
    assert (
        removed[0].pair.id == "a"
        and removed[0].duplicate_of == "b"
        and "paraphrase" in removed[0].reasons[0].message
    )
