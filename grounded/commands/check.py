"""`grounded check`: run the faithfulness checker on any QA set (ours or someone else's)."""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from grounded.cli import emit_json, handle_errors, json_option
from grounded.errors import EXIT_PARTIAL

if TYPE_CHECKING:
    from grounded.check import CheckSummary
    from grounded.types import QAPair, Reason, Rejection


@click.command("check")
@click.argument("qa", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--index", default=None, type=click.Path(file_okay=False), help="Index directory the evidence points into (optional when contexts are inline).")
@click.option("--chroma-url", default=None, help="Use a Chroma server instead of an embedded index.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Writes OUT/qa.jsonl (kept) and OUT/rejected.jsonl.")
@click.option("--threshold", default=None, type=click.FloatRange(0, 1), help="Minimum support score (default: the documented dev-tuned value).")
@click.option("--semantic", default="borderline", show_default=True, type=click.Choice(["borderline", "all", "off"]), help="When to compute MiniLM similarity.")
@click.option("--judge", default=None, help="litellm model string of an LLM judge (optional).")
@click.option("--judge-mode", default="borderline", show_default=True, type=click.Choice(["borderline", "all"]))
@click.option("--judge-cache", default=None, type=click.Path(dir_okay=False), help="SQLite cache of judge calls (default OUT/judge-cache.sqlite).")
@click.option("--fail-on-reject", is_flag=True, help=f"Exit {EXIT_PARTIAL} when any pair is rejected.")
@json_option
@handle_errors
def check(
    qa: Path,
    index: str | None,
    chroma_url: str | None,
    out: Path,
    threshold: float | None,
    semantic: str,
    judge: str | None,
    judge_mode: str,
    judge_cache: str | None,
    fail_on_reject: bool,
    as_json: bool,
) -> None:
    """Check the pairs of QA (JSONL or SQuAD JSON) and split them into kept and rejected, with reasons."""
    options: dict[str, object] = {"semantic": semantic, "judge_mode": judge_mode}
    if threshold is not None:
        options["threshold"] = threshold
    if judge:
        options["judge"] = judge
        options["judge_cache"] = judge_cache or str(out / "judge-cache.sqlite")
    summary = check_qa_file(qa, out=out, index=index, chroma_url=chroma_url, **options)
    if as_json:
        emit_json(summary.to_dict())
    else:
        click.echo(f"checked {summary.n} pairs: kept {summary.kept}, rejected {summary.rejected} ({summary.pairs_per_s} pairs/s)")
        top = list(summary.rejected_by_reason.items())[:6]
        if top:
            click.echo("rejection reasons: " + ", ".join(f"{k} ({v})" for k, v in top))
        click.echo(f"wrote {summary.files['qa']} and {summary.files['rejected']}")
        unchecked = summary.rejected_by_reason.get("no_sources", 0)
        if unchecked and index is None:
            click.echo(f"{unchecked} row(s) had nothing to check against: give them context/contexts, "
                       "or pass --index DIR when their evidence points into an index", err=True)
    if fail_on_reject and summary.rejected:
        sys.exit(EXIT_PARTIAL)


def check_qa_file(qa: Path, *, out: Path, index: str | None, chroma_url: str | None, **options: Any) -> CheckSummary:
    """Check every row of QA; a row that cannot be read or has nothing to check against is rejected with its reason."""
    from grounded.check import CheckSummary, check, default_checker
    from grounded.jsonl import write_jsonl
    from grounded.types import Rejection

    started = time.perf_counter()
    idx = _open(index, chroma_url)
    rows: list[dict[str, Any]] = []  # in input order; "supported" tells kept from rejected
    todo: list[tuple[int, QAPair]] = []
    try:
        for item in _read_rows(qa):
            if isinstance(item, Rejection):
                rows.append({"kept": False, "row": item.to_dict(), "codes": [r.code for r in item.reasons]})
                continue
            pair = locate_quotes(item, idx) if idx is not None else item
            reason = _no_sources(pair, has_index=idx is not None)
            if reason is not None:
                rows.append({"kept": False, "row": Rejection("check", (reason,), pair=pair).to_dict(), "codes": [reason.code]})
                continue
            todo.append((len(rows), pair))
            rows.append({})
        checker = default_checker(**options)
        for (pos, _), (pair, verdict) in zip(todo, check([p for _, p in todo], index=idx, checker=checker), strict=True):
            codes = [r.code for r in verdict.reasons]
            row = pair.to_dict() if verdict.supported else Rejection("check", verdict.reasons, pair=pair).to_dict()
            rows[pos] = {"kept": verdict.supported, "row": row, "codes": codes}
    finally:
        if idx is not None:
            idx.close()
    out.mkdir(parents=True, exist_ok=True)
    qa_path, rej_path = out / "qa.jsonl", out / "rejected.jsonl"
    write_jsonl(qa_path, (r["row"] for r in rows if r["kept"]))
    write_jsonl(rej_path, (r["row"] for r in rows if not r["kept"]))
    seconds = time.perf_counter() - started
    by_reason = Counter(c for r in rows if not r["kept"] for c in set(r["codes"]))
    kept = sum(1 for r in rows if r["kept"])
    return CheckSummary(
        n=len(rows),
        kept=kept,
        rejected=len(rows) - kept,
        rejected_by_reason=dict(by_reason.most_common()),
        reasons=dict(Counter(c for r in rows for c in set(r["codes"])).most_common()),
        seconds=round(seconds, 3),
        pairs_per_s=round(len(rows) / seconds, 1) if seconds > 0 else 0.0,
        threshold=float(getattr(checker, "threshold", 0.0)),
        files={"qa": str(qa_path), "rejected": str(rej_path)},
    )


def _open(index: str | None, chroma_url: str | None) -> Any:
    if index is None:
        return None
    from grounded.index import open_index

    return open_index(index, chroma_url=chroma_url)


def _read_rows(qa: Path) -> Iterator[QAPair | Rejection]:
    """Pairs from SQuAD JSON or JSONL rows of any documented shape; an unreadable row as a Rejection."""
    from grounded.errors import CheckError
    from grounded.eval.dataset import detect_format, parse_row, read_squad
    from grounded.jsonl import dumps, read_jsonl
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
        return Reason("no_sources", "the row cites evidence but has no context; pass --index DIR to check it against the index")
    return Reason("no_sources", "the row has no context, contexts or evidence to check the answer against")


def locate_quotes(pair: QAPair, index: Any, *, k: int = 5) -> QAPair:
    """Point evidence quotes that cite no chunk at the indexed chunk that holds them (search, then align)."""
    from grounded.align import align

    if pair.chunk_ids or not any(not e.chunk_id and (e.quote or e.text).strip() for e in pair.evidence):
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
            ev = replace(ev, doc_id=chunk.doc_id, chunk_id=chunk.id, start=chunk.start + a.start,
                         end=chunk.start + a.end, text=chunk.text[a.start : a.end], quote=quote)
        else:  # a fuzzy match: cite the chunk and let the checker score the quote against it
            ev = replace(ev, doc_id=chunk.doc_id, chunk_id=chunk.id, quote=quote)
        evidence.append(ev)
    return replace(
        pair,
        evidence=tuple(evidence),
        doc_ids=pair.doc_ids or tuple(dict.fromkeys(e.doc_id for e in evidence if e.doc_id)),
    )
