"""Check a QA file of any documented shape: every row is kept or rejected with its reason.

The file-level half of the checker (`grounded check`, `check_qa_file`): reads JSONL or
SQuAD JSON, points string evidence at the indexed chunk that holds it, rejects rows that cannot
be read or have nothing to check against, and writes OUT/qa.jsonl and OUT/rejected.jsonl.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack

from grounded.checker.calibration import DEFAULT_THRESHOLD
from grounded.errors import CheckError

if TYPE_CHECKING:
    from grounded.checker import Checker
    from grounded.options import CheckSettings
    from grounded.types import Candidate, QAPair, Reason, Rejection


def pair_from_row(row: Mapping[str, Any], *, where: str = "") -> QAPair:
    """A QAPair from a row of any documented shape (canonical, SQuAD-like, string evidence)."""
    from grounded.qaset import parse_row

    if not isinstance(row, Mapping):
        raise CheckError(f"{where}: expected a JSON object")
    if "question" not in row or ("answer" not in row and "answers" not in row):
        raise CheckError(f"{where}: a QA row needs 'question' and 'answer'")
    return parse_row(row, where=where)


MODEL_SIGNALS: tuple[str, ...] = ("sem", "ver", "judge", "llm_yes")


@dataclass
class CheckSummary:
    """What `check_qa_file` did: counts, reasons, speed, files."""

    n: int = 0
    kept: int = 0
    rejected: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    pairs_per_s: float = 0.0
    threshold: float = DEFAULT_THRESHOLD
    files: dict[str, str] = field(default_factory=dict)
    # pairs each model-backed signal was computed for: "sem" (MiniLM), "ver" (learned verifier),
    # "judge" (LLM judge)
    model_signals: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def check_qa_file(
    qa: str | Path,
    *,
    out: str | Path,
    index: Any = None,
    chroma_url: str | None = None,
    checker: Checker | None = None,
    workers: int = 1,
    **options: Unpack[CheckSettings],
) -> CheckSummary:
    """Check every row of QA (in `workers` processes); a row that cannot be read or has nothing
    to check against is rejected with its reason."""
    from grounded.checker import default_checker
    from grounded.jsonl import write_jsonl
    from grounded.stages import CheckStage, Context
    from grounded.types import QAPair, Rejection

    qa, out = Path(qa), Path(out)
    if not qa.is_file():
        raise CheckError(f"no such QA file: {qa}")
    started = time.perf_counter()
    owned = isinstance(index, (str, Path))
    idx = _open(index, chroma_url) if owned else index
    ctx = Context()  # the drop ledger the summary reads
    if checker is None:
        checker = default_checker(**options)
    stage = CheckStage(checker, workers=workers)
    rows: list[dict[str, Any]] = []  # in input order; "kept" tells kept from rejected
    try:
        for rec in stage.run(_candidates(qa, idx), ctx):
            pair = rec if isinstance(rec, QAPair) else rec.pair
            verdict = pair.verdict if pair is not None else None
            if isinstance(rec, QAPair) and verdict is not None:
                row, kept = rec.to_dict(), True
            elif pair is not None and verdict is not None:
                row, kept = Rejection("check", verdict.reasons, pair=pair).to_dict(), False
            else:  # rejected before the check: unreadable, or nothing to check against
                rows.append(
                    {"kept": False, "row": rec.to_dict(), "codes": [r.code for r in rec.reasons]}
                )
                continue
            rows.append(
                {
                    "kept": kept,
                    "row": row,
                    "codes": [r.code for r in verdict.reasons],
                    "models": [k for k in MODEL_SIGNALS if k in verdict.signals],
                }
            )
    finally:
        if owned and idx is not None:
            idx.close()
    out.mkdir(parents=True, exist_ok=True)
    qa_path, rej_path = out / "qa.jsonl", out / "rejected.jsonl"
    write_jsonl(qa_path, (r["row"] for r in rows if r["kept"]))
    write_jsonl(rej_path, (r["row"] for r in rows if not r["kept"]))
    seconds = time.perf_counter() - started
    n_kept = sum(1 for r in rows if r["kept"])
    return CheckSummary(
        n=len(rows),
        kept=n_kept,
        rejected=len(rows) - n_kept,
        rejected_by_reason=ctx.ledger.rejected_by_reason,
        reasons=dict(Counter(c for r in rows for c in set(r["codes"])).most_common()),
        seconds=round(seconds, 3),
        pairs_per_s=round(len(rows) / seconds, 1) if seconds > 0 else 0.0,
        threshold=float(getattr(checker, "threshold", 0.0)),
        files={"qa": str(qa_path), "rejected": str(rej_path)},
        model_signals={k: sum(1 for r in rows if k in r.get("models", ())) for k in MODEL_SIGNALS},
    )


def _candidates(qa: Path, index: Any) -> Iterator[Candidate | Rejection]:
    """The file's rows in order: a candidate with its sources, or a `check` rejection for a row
    that cannot be read or has nothing to check against."""
    from grounded.checker.stream import sources_for
    from grounded.types import Candidate, Rejection

    for item in _read_rows(qa):
        if isinstance(item, Rejection):
            yield item
            continue
        pair = locate_quotes(item, index) if index is not None else item
        reason = _no_sources(pair, has_index=index is not None)
        if reason is not None:
            yield Rejection("check", (reason,), pair=pair)
            continue
        yield Candidate(pair, tuple(sources_for(pair, index)))


def _open(index: str | Path | None, chroma_url: str | None) -> Any:
    if index is None:
        return None
    from grounded.index import open_index

    return open_index(index, chroma_url=chroma_url)


def _read_rows(qa: Path) -> Iterator[QAPair | Rejection]:
    """Pairs from SQuAD JSON or JSONL rows of any documented shape; an unreadable row as a Rejection."""
    from grounded.errors import CheckError
    from grounded.jsonl import dumps, read_jsonl
    from grounded.qaset import detect_format, parse_row, read_squad
    from grounded.types import Reason, Rejection

    if detect_format(qa) == "squad":
        yield from read_squad(qa).pairs
        return
    for i, row in enumerate(read_jsonl(qa), 1):
        where = f"{qa}:{i}"
        try:
            if "answer" not in row and "answers" not in row:
                raise CheckError(f"{where}: a QA row needs 'question' and 'answer'")
            yield parse_row(row, where=where)
        except CheckError as exc:
            yield Rejection("check", (Reason("unreadable_row", str(exc)),), raw=dumps(row))


def _no_sources(pair: QAPair, *, has_index: bool) -> Reason | None:
    """Why a pair cannot be checked at all (nothing to check its answer against), or None."""
    from grounded.types import Reason

    if pair.contexts or (has_index and (pair.evidence or pair.chunk_ids)):
        return None
    if pair.evidence or pair.chunk_ids:
        return Reason(
            "no_sources",
            "the row cites evidence but has no context; pass --index DIR to check it against the index",
        )
    return Reason(
        "no_sources", "the row has no context, contexts or evidence to check the answer against"
    )


def locate_quotes(pair: QAPair, index: Any, *, k: int = 5) -> QAPair:
    """Point evidence quotes that cite no chunk at the indexed chunk that holds them (search, then align)."""
    from grounded.align import align

    if pair.chunk_ids or not any(
        not e.chunk_id and (e.quote or e.text).strip() for e in pair.evidence
    ):
        return pair
    evidence = []
    for ev in pair.evidence:
        quote = ev.quote or ev.text
        hits = index.search(quote, k) if not ev.chunk_id and quote.strip() else []
        found = [(a, h.chunk) for h in hits if (a := align(quote, h.chunk.text)) is not None]
        if not found:
            evidence.append(ev)
            continue
        a, chunk = max(found, key=lambda f: f[0].score)
        if a.score >= 1.0:  # exact (or whitespace/case-normalised) match: record its offsets
            ev = replace(
                ev,
                doc_id=chunk.doc_id,
                chunk_id=chunk.id,
                start=chunk.start + a.start,
                end=chunk.start + a.end,
                text=chunk.text[a.start : a.end],
                quote=quote,
            )
        else:  # a fuzzy match: cite the chunk and let the checker score the quote against it
            ev = replace(ev, doc_id=chunk.doc_id, chunk_id=chunk.id, quote=quote)
        evidence.append(ev)
    return replace(
        pair,
        evidence=tuple(evidence),
        doc_ids=pair.doc_ids or tuple(dict.fromkeys(e.doc_id for e in evidence if e.doc_id)),
    )
