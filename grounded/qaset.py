"""Reading QA sets: QA JSONL rows of any documented shape and SQuAD JSON, into `QAPair`s.

`check`, `dedup`, `mix`, `export` and the dataset-health figures all read their input here;
a `QASet` also carries, when known, the documents the set could have cited.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from grounded.errors import CheckError
from grounded.jsonl import numbered_rows
from grounded.rundir import RunFolder
from grounded.types import Evidence, QAPair

# The layouts a QA set is read from (`detect_format` tells them apart).
QA_FORMATS = ("jsonl", "squad")


def squad_articles(path: str | Path) -> list[dict[str, Any]]:
    """The articles of a SQuAD v1.x/2.0 JSON file; CheckError names the file when it is not one."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckError(f"cannot read SQuAD JSON {p}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise CheckError(f"{p}: not SQuAD JSON (expected an object with a 'data' list)")
    return [a for a in data["data"] if isinstance(a, dict)]


@dataclass(frozen=True, slots=True)
class QASet:
    """A QA set and, when known, the universe of documents it could have cited."""

    pairs: tuple[QAPair, ...]
    name: str = ""
    documents: tuple[Mapping[str, Any], ...] | None = None  # [{doc_id, title, chunks}]
    chunks_total: int | None = None

    def __len__(self) -> int:
        return len(self.pairs)


def read_squad(path: str | Path) -> QASet:
    """Read SQuAD JSON: one pair per question (first answer), articles as documents, paragraphs as chunks."""
    p = Path(path)
    pairs: list[QAPair] = []
    documents: list[dict[str, Any]] = []
    chunks_total = 0
    for a_idx, article in enumerate(squad_articles(p)):
        title = str(article.get("title") or f"article-{a_idx}")
        paragraphs = article.get("paragraphs") or []
        documents.append(
            {"doc_id": title, "title": title.replace("_", " "), "chunks": len(paragraphs)}
        )
        chunks_total += len(paragraphs)
        for p_idx, para in enumerate(paragraphs):
            context = str(para.get("context", ""))
            chunk_id = f"{title}#{p_idx}"
            for qa in para.get("qas") or []:
                answers = qa.get("answers") or []
                is_impossible = bool(qa.get("is_impossible")) or not answers
                answer = "" if is_impossible else str(answers[0].get("text", ""))
                evidence: tuple[Evidence, ...] = ()
                if answers and "answer_start" in answers[0]:
                    start = int(answers[0]["answer_start"])
                    evidence = (
                        Evidence(doc_id=title, chunk_id=chunk_id, start=start,
                                 end=start + len(answer), text=answer, score=1.0),
                    )  # fmt: skip
                question = str(qa.get("question", ""))
                pairs.append(
                    QAPair(
                        id=str(qa.get("id") or QAPair.make_id(question, answer, chunk_id)),
                        question=question,
                        answer=answer,
                        evidence=evidence,
                        kind="unanswerable" if is_impossible else "factoid",
                        doc_ids=(title,),
                        chunk_ids=(chunk_id,),
                        contexts=(context,),
                        origin="real",
                    )
                )
    return QASet(tuple(pairs), name=str(p), documents=tuple(documents), chunks_total=chunks_total)


def parse_row(row: Mapping[str, Any], *, where: str) -> QAPair:
    """A QAPair from one JSONL row of any documented shape; CheckError names the row and field."""
    if "question" not in row:
        raise CheckError(f"{where}: row has no 'question' field")
    try:
        return QAPair.from_dict(row)
    except (TypeError, ValueError) as exc:
        raise CheckError(f"{where}: {exc}") from exc


def read_pairs_jsonl(path: str | Path) -> list[QAPair]:
    """Read canonical QA JSONL (`QAPair.to_dict()` rows) or plain rows (see `QAPair.from_dict`)."""
    return [parse_row(row, where=f"{path}:{line}") for line, row in numbered_rows(path)]


def read_pairs(path: str | Path, *, format: str | None = None) -> list[QAPair]:
    """Pairs from QA JSONL or SQuAD JSON (format guessed when None), without the document universe."""
    fmt = format or detect_format(path)
    if fmt == "squad":
        return list(read_squad(path).pairs)
    return read_pairs_jsonl(path)


def detect_format(path: str | Path) -> str:
    """`squad` for a JSON document with a `data` list, else `jsonl`."""
    p = Path(path)
    if p.suffix.lower() == ".jsonl":
        return "jsonl"
    with p.open("rb") as fh:
        head = fh.read(4096).lstrip()
    return (
        "squad"
        if head.startswith(b"{") and b'"data"' in head and p.suffix.lower() == ".json"
        else "jsonl"
    )


def read_qa_set(
    path: str | Path,
    *,
    format: str | None = None,
    index: str | Path | None = None,
    chroma_url: str | None = None,
) -> QASet:
    """Read a QA set (SQuAD JSON or JSONL); for JSONL take document totals from an index or a run dir's summary."""
    p = Path(path)
    if not p.exists():
        raise CheckError(f"QA set not found: {p}")
    fmt = format or detect_format(p)
    if fmt == "squad":
        return read_squad(p)
    if fmt != "jsonl":
        raise CheckError(f"unknown QA set format {fmt!r}", hint="use " + " or ".join(QA_FORMATS))
    qaset = QASet(tuple(read_pairs_jsonl(p)), name=str(p))
    return with_universe(qaset, index=index, chroma_url=chroma_url, run_dir=p.parent)


def with_universe(
    qaset: QASet,
    *,
    index: str | Path | None = None,
    chroma_url: str | None = None,
    run_dir: str | Path | None = None,
) -> QASet:
    """Attach the documents the set could have cited: from an index, else a run dir's summary.json."""
    if index is not None:
        docs = _index_documents(index, chroma_url=chroma_url)
        return replace(
            qaset, documents=docs, chunks_total=sum(int(d.get("chunks") or 0) for d in docs)
        )
    if run_dir is not None:
        run = RunFolder(run_dir)
        summary = run.read_summary()
        idx = run.index_path(summary)
        if idx is not None:
            try:
                return with_universe(qaset, index=idx)
            except Exception:  # noqa: BLE001 - a stale index path falls back to the counts
                pass
        ingest = summary.get("ingest") or {}
        docs_n, chunks_n = ingest.get("documents"), ingest.get("chunks")
        if isinstance(docs_n, int) and docs_n > 0:
            placeholders = tuple({"doc_id": None, "title": "", "chunks": 0} for _ in range(docs_n))
            return replace(
                qaset,
                documents=placeholders,
                chunks_total=chunks_n if isinstance(chunks_n, int) else None,
            )
    return qaset


def _index_documents(
    index: str | Path, *, chroma_url: str | None = None
) -> tuple[Mapping[str, Any], ...]:
    from grounded.index import open_index

    with open_index(index, chroma_url=chroma_url) as idx:
        return tuple(dict(d) for d in idx.documents())
