"""A self-contained HTML health report of a run directory: inline CSS and hand-drawn SVG, no scripts.

Reads ``qa.jsonl``, ``rejected.jsonl`` and ``summary.json`` from the run directory (each may be
missing) and writes ``report.html`` next to them.
"""

from __future__ import annotations

import datetime as _dt
from collections import Counter
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from grounded.embed import DEFAULT_EMBEDDER
from grounded.jsonl import read_jsonl
from grounded.rundir import RunFolder, atomic_write_text
from grounded.types import QAPair, count_reasons

if TYPE_CHECKING:
    from grounded.index import Index

T = TypeVar("T")

MAX_EXAMPLES = 8
MAX_DOC_BARS = 40
CONTEXT_WINDOW = 360
SET_COLOUR = "#2f6fb0"
REF_COLOUR = "#b9c3cf"
BAD_COLOUR = "#c0504d"


def write_report(
    run_dir: str | Path,
    *,
    reference: str | Path | None = None,
    embedder: Any = DEFAULT_EMBEDDER,
    out: str | Path | None = None,
) -> Path:
    """Write `run_dir/report.html` (or `out`) and return its path."""
    run = Path(run_dir)
    data = load_run(run)
    health = _health(run, data, reference=reference, embedder=embedder)
    html = render(data, health, title=f"grounded report: {run.resolve().name}")
    return atomic_write_text(Path(out) if out is not None else RunFolder(run).report, html)


# ---------------------------------------------------------------- data


def load_run(run: Path) -> dict[str, Any]:
    """The run's pairs, rejection rows and summary (empty where a file is missing)."""
    folder = RunFolder(run)
    pairs = [QAPair.from_dict(row) for row in read_jsonl(folder.qa)] if folder.qa.is_file() else []
    rejected = list(read_jsonl(folder.rejected)) if folder.rejected.is_file() else []
    return {"run": run, "pairs": pairs, "rejected": rejected, "summary": folder.read_summary()}


def _health(
    run: Path, data: Mapping[str, Any], *, reference: str | Path | None, embedder: Any
) -> dict[str, Any]:
    from grounded.eval.dataset import dataset_health
    from grounded.qaset import QASet, with_universe

    pairs = data["pairs"]
    stored = (data["summary"] or {}).get("health") or {}
    # The pipeline measured these same pairs a moment ago: reuse its figures unless asked for another reference.
    if (
        stored.get("n") == len(pairs)
        and pairs
        and (reference is None or (stored.get("reference") or {}).get("name") == str(reference))
    ):
        return dict(stored)
    qaset = with_universe(QASet(tuple(pairs), name=str(RunFolder(run).qa)), run_dir=run)
    return dataset_health(qaset, reference=reference, embedder=embedder)


def _index(data: Mapping[str, Any]) -> Index | None:
    path = RunFolder(data["run"]).index_path(data["summary"])
    if path is None:
        return None
    try:
        from grounded.index import open_index

        return open_index(path)
    except Exception:  # noqa: BLE001 - the report works without source texts, showing evidence alone
        return None


# ---------------------------------------------------------------- svg charts


def hbar_chart(
    items: Sequence[tuple[str, float]],
    *,
    width: int = 640,
    bar: int = 18,
    colour: str = SET_COLOUR,
    fmt: str = "{:g}",
    label_width: int = 220,
) -> str:
    """Horizontal bars, one per (label, value)."""
    if not items:
        return '<p class="muted">nothing to show</p>'
    top = max(v for _, v in items) or 1
    room = width - label_width - 60
    height = len(items) * (bar + 6) + 4
    rows = []
    for k, (label, value) in enumerate(items):
        y = 2 + k * (bar + 6)
        w = max(1.0, room * value / top) if value else 0
        short = label if len(label) <= 34 else label[:32] + "…"
        rows.append(
            f'<text x="{label_width - 6}" y="{y + bar * 0.72:.1f}" text-anchor="end">'
            f"<title>{escape(label)}</title>{escape(short)}</text>"
            f'<rect x="{label_width}" y="{y}" width="{w:.1f}" height="{bar}" fill="{colour}" rx="2"/>'
            f'<text x="{label_width + w + 5:.1f}" y="{y + bar * 0.72:.1f}">{escape(fmt.format(value))}</text>'
        )
    return f'<svg class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">{"".join(rows)}</svg>'


def grouped_bars(
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[float], str]],
    *,
    width: int = 640,
    height: int = 220,
    fmt: str = "{:.0%}",
) -> str:
    """Vertical bars per category, one per series (name, values, colour), with a legend."""
    if not categories:
        return '<p class="muted">nothing to show</p>'
    top = max((v for _, vals, _ in series for v in vals), default=0) or 1
    left, bottom, plot_top = 10, 48, 26
    plot_h = height - bottom - plot_top
    # a lone category should not fill the page
    slot = min(120.0, (width - left * 2) / len(categories))
    bw = max(3.0, (slot - 8) / max(1, len(series)))
    parts = []
    for c, cat in enumerate(categories):
        x0 = left + c * slot + 4
        for s, (_, vals, colour) in enumerate(series):
            v = vals[c]
            h = plot_h * v / top
            x = x0 + s * bw
            y = plot_top + plot_h - h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bw - 1:.1f}" height="{h:.1f}" fill="{colour}"><title>{escape(cat)}: {escape(fmt.format(v))}</title></rect>'
            )
            if len(series) == 1 or s == 0:
                parts.append(
                    f'<text class="small" x="{x + bw / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle">{escape(fmt.format(v))}</text>'
                )
        parts.append(
            f'<text class="small" x="{x0 + slot / 2 - 4:.1f}" y="{plot_top + plot_h + 14}" text-anchor="middle">{escape(cat)}</text>'
        )
    parts.append(
        f'<line x1="{left}" x2="{width - left}" y1="{plot_top + plot_h}" y2="{plot_top + plot_h}" stroke="#888"/>'
    )
    lx = left
    for name, _, colour in series:
        parts.append(
            f'<rect x="{lx}" y="{height - 16}" width="12" height="12" fill="{colour}"/><text x="{lx + 16}" y="{height - 6}">{escape(name)}</text>'
        )
        lx += 24 + 8 * len(name)
    return f'<svg class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">{"".join(parts)}</svg>'


# ---------------------------------------------------------------- evidence


def _spans_in(context: str, pair: QAPair, chunk_start: int | None) -> list[tuple[int, int]]:
    """Evidence spans as offsets into `context`: stored offsets if they fit, else found by text."""
    from grounded.align import align

    spans = []
    for ev in pair.evidence:
        text = ev.text or ev.quote
        if not text:
            continue
        for base in (0, chunk_start) if chunk_start else (0,):
            s, e = ev.start - base, ev.end - base
            if 0 <= s < e <= len(context) and context[s:e] == text:
                spans.append((s, e))
                break
        else:
            pos = context.find(text)
            if pos >= 0:
                spans.append((pos, pos + len(text)))
            else:
                hit = align(text, context, min_score=80.0)
                if hit is not None:
                    spans.append((hit.start, hit.end))
    return sorted(set(spans))


def highlight(
    context: str, spans: Sequence[tuple[int, int]], *, window: int = CONTEXT_WINDOW
) -> str:
    """Escaped context with `<mark>` around the spans, cut to a window around them."""
    if not spans:
        cut = context[: window * 2]
        return escape(cut) + ("…" if len(cut) < len(context) else "")
    lo = max(0, spans[0][0] - window)
    hi = min(len(context), spans[-1][1] + window)
    out, pos = [], lo
    for s, e in spans:
        s, e = max(s, pos), max(e, pos)
        out.append(escape(context[pos:s]))
        out.append(f"<mark>{escape(context[s:e])}</mark>")
        pos = e
    out.append(escape(context[pos:hi]))
    return ("…" if lo > 0 else "") + "".join(out) + ("…" if hi < len(context) else "")


def _source_html(pair: QAPair, chunks: Mapping[str, Any]) -> str:
    for context in pair.contexts:
        spans = _spans_in(context, pair, None)
        if spans or not pair.evidence:
            return f'<div class="ctx">{highlight(context, spans)}</div>'
    for cid in pair.chunk_ids or tuple(ev.chunk_id for ev in pair.evidence):
        chunk = chunks.get(cid)
        if chunk is not None:
            spans = _spans_in(chunk.text, pair, chunk.start)
            return f'<div class="ctx">{highlight(chunk.text, spans)}</div>'
    if pair.evidence:
        quotes = "".join(
            f"<li><mark>{escape(ev.text or ev.quote)}</mark></li>" for ev in pair.evidence
        )
        return f'<div class="ctx"><span class="muted">evidence (source text not available):</span><ul>{quotes}</ul></div>'
    if pair.contexts:
        return f'<div class="ctx">{highlight(pair.contexts[0], [])}</div>'
    return '<div class="ctx muted">no evidence recorded</div>'


def _fetch_chunks(data: Mapping[str, Any], pairs: Sequence[QAPair]) -> dict[str, Any]:
    from grounded.export import cited_chunk_ids

    wanted = cited_chunk_ids(pairs)
    if not wanted:
        return {}
    # the run's open index when the caller passes it (data["index"]), else opened and closed here
    owned = data.get("index") is None
    index = _index(data) if owned else data["index"]
    if index is None:
        return {}
    try:
        return {c.id: c for c in index.get_chunks(wanted)}
    except Exception:  # noqa: BLE001 - missing chunks only cost the highlighting
        return {}
    finally:
        if owned:
            index.close()


def _pair_card(
    pair: QAPair,
    chunks: Mapping[str, Any],
    *,
    reasons: Sequence[Mapping[str, Any]] = (),
    duplicate_of: str = "",
) -> str:
    meta = [f"id {escape(pair.id)}", escape(pair.kind)]
    if pair.verdict is not None:
        meta.append(f"score {pair.verdict.score:.2f}")
    if pair.provenance.model:
        meta.append(escape(pair.provenance.model))
    if pair.origin != "synthetic":
        meta.append(escape(pair.origin))
    why = ""
    if reasons:
        items = _reason_items(reasons)
        dup = f' <span class="muted">(duplicate of {escape(duplicate_of)})</span>'
        why = f'<ul class="reasons">{items}</ul>{dup if duplicate_of else ""}'
    return (
        '<div class="card">'
        f'<div class="q">Q: {escape(pair.question)}</div>'
        f'<div class="a">A: {escape(pair.answer)}</div>'
        f"{why}{_source_html(pair, chunks)}"
        f'<div class="meta">{" · ".join(meta)}</div>'
        "</div>"
    )


def _reason_items(reasons: Sequence[Mapping[str, Any]]) -> str:
    return "".join(
        f"<li><code>{escape(str(r.get('code', '')))}</code> {escape(str(r.get('message', '')))}</li>"
        for r in reasons
    )


def _raw_card(row: Mapping[str, Any]) -> str:
    reasons = _reason_items(row.get("reasons") or ())
    raw = str(row.get("raw") or "")
    cut = raw[:600] + ("…" if len(raw) > 600 else "")
    return (
        '<div class="card">'
        f'<div class="q muted">stage {escape(str(row.get("stage", "")))}: no pair could be read</div>'
        f'<ul class="reasons">{reasons}</ul><pre class="ctx">{escape(cut)}</pre></div>'
    )


def _spread_examples(pairs: Sequence[QAPair], k: int) -> list[QAPair]:
    """Up to k pairs taken round-robin over their documents, so the examples are not all from one."""
    by_doc: dict[str, list[QAPair]] = {}
    for pair in pairs:
        by_doc.setdefault(pair.doc_ids[0] if pair.doc_ids else "", []).append(pair)
    return _round_robin(by_doc, k)


def _pick_rejections(rows: Sequence[Mapping[str, Any]], k: int) -> list[Mapping[str, Any]]:
    """Up to k rows, one per reason code first, so the examples show the different failures."""
    by_code: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        code = str(((row.get("reasons") or [{}])[0]).get("code", "unknown"))
        by_code.setdefault(code, []).append(row)
    return _round_robin(by_code, k)


def _round_robin(groups: Mapping[str, list[T]], k: int) -> list[T]:
    """Up to k items: the first of each group, then the second of each, and so on."""
    picked: list[T] = []
    depth = 0
    while len(picked) < k and any(len(v) > depth for v in groups.values()):
        for group in groups.values():
            if len(group) > depth and len(picked) < k:
                picked.append(group[depth])
        depth += 1
    return picked


# ---------------------------------------------------------------- page


def _fmt(v: Any, spec: str = ".3f") -> str:
    if isinstance(v, bool) or v is None:
        return "–"
    if isinstance(v, (int, float)):
        return format(v, spec)
    return escape(str(v))


def _section(title: str, body: str, anchor: str) -> str:
    return f'<section id="{anchor}"><h2>{escape(title)}</h2>{body}</section>'


def render(
    data: Mapping[str, Any], health: Mapping[str, Any], *, title: str = "grounded report"
) -> str:
    """The report page as one HTML string."""
    pairs: list[QAPair] = data["pairs"]
    rejected: list[Mapping[str, Any]] = data["rejected"]
    summary: Mapping[str, Any] = data["summary"]
    ingest = summary.get("ingest") or {}
    gen = summary.get("generate") or {}
    ref = health.get("reference") or {}
    sections = [
        _overview(pairs, rejected, summary, gen),
        _failures(summary, gen),
        _notice(summary),
        _banner(health.get("narrowing") or {}, bool(ref)),
        _funnel(pairs, rejected, ingest, gen, summary.get("rejected_by_reason")),
        _coverage(health.get("coverage") or {}),
        _diversity(health, ref),
        _wh(health, ref),
        _lengths(health, ref),
        _examples(data, pairs, rejected),
    ]
    created = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body><main>"
        f'<h1>{escape(title)}</h1><p class="muted">written {created} · {escape(str(data["run"]))}</p>'
        + "".join(sections)
        + "</main></body></html>\n"
    )


def _overview(
    pairs: Sequence[QAPair],
    rejected: Sequence[Mapping[str, Any]],
    summary: Mapping[str, Any],
    gen: Mapping[str, Any],
) -> str:
    dups = sum(1 for r in rejected if r.get("stage") == "dedup")
    # the folder's whole spend: a resumed run's own spend would read $0 for cached calls
    cost = summary.get("cost_total", gen.get("cost_total", summary.get("cost", gen.get("cost"))))
    calls = summary.get("llm_calls", gen.get("llm_calls"))
    cached = summary.get("cached_calls", gen.get("cached_calls"))
    cards = [
        ("kept pairs", str(len(pairs))),
        ("rejected", str(len(rejected) - dups)),
        ("duplicates removed", str(dups)),
        (
            "LLM calls (cached)",
            f"{calls if calls is not None else '–'} ({cached if cached is not None else '–'})",
        ),
        ("cost", f"${cost:.4f}" if isinstance(cost, (int, float)) else "–"),
    ]
    body = "".join(
        f'<div class="stat"><div class="v">{escape(v)}</div><div class="k">{escape(k)}</div></div>'
        for k, v in cards
    )
    return f'<div class="stats">{body}</div>'


def _failures(summary: Mapping[str, Any], gen: Mapping[str, Any]) -> str:
    """LLM calls that failed for good: their count and each distinct message, near the top."""
    failed = summary.get("failed_calls", gen.get("failed_calls")) or 0
    if not failed:
        return ""
    errors = summary.get("errors")
    if not isinstance(errors, list):  # a generate summary: plain messages, maybe repeated
        errors = [
            {"message": m, "count": c}
            for m, c in Counter(map(str, gen.get("errors") or ())).most_common()
        ]
    items = "".join(_error_item(e) for e in errors[:10] if isinstance(e, Mapping))
    return (
        f'<div class="banner warn" id="failed-calls"><strong>{failed} LLM calls failed</strong>'
        f" and wrote nothing; rerun the same command to retry them.<ul>{items}</ul></div>"
    )


def _error_item(error: Mapping[str, Any]) -> str:
    count = error.get("count") or 0
    times = f" ({count} calls)" if count > 1 else ""
    return f"<li>{escape(str(error.get('message')))}{times}</li>"


def _notice(summary: Mapping[str, Any]) -> str:
    """The plain line a run with the bundled small model carries (what it kept, what to use)."""
    notice = summary.get("notice")
    return f'<div class="banner note" id="notice">{escape(str(notice))}</div>' if notice else ""


def _banner(narrowing: Mapping[str, Any], has_ref: bool) -> str:
    if narrowing.get("warning"):
        items = "".join(f"<li>{escape(r)}</li>" for r in narrowing.get("reasons") or ())
        return f'<div class="banner warn" id="narrowing"><strong>Narrowing warning:</strong> this set is markedly less diverse or covers less than {"the reference" if has_ref else "expected"}.<ul>{items}</ul></div>'
    note = narrowing.get("note") or ("compared with the reference" if has_ref else "")
    return f'<div class="banner ok" id="narrowing"><strong>No narrowing warning</strong>{" — " + escape(note) if note else ""}</div>'


def _funnel(
    pairs: Sequence[QAPair],
    rejected: Sequence[Mapping[str, Any]],
    ingest: Mapping[str, Any],
    gen: Mapping[str, Any],
    by_reason: Mapping[str, int] | None = None,
) -> str:
    """The funnel and the rejections by reason: the run's ledger (`by_reason`, summary.json's
    `rejected_by_reason`) when given, else the rows counted by the same rule."""
    with_pair = sum(1 for r in rejected if r.get("pair"))
    dups = sum(1 for r in rejected if r.get("stage") == "dedup")
    steps: list[tuple[str, float]] = []
    if isinstance(ingest.get("documents"), int):
        steps.append(("documents", ingest["documents"]))
    if isinstance(ingest.get("chunks"), int):
        steps.append(("chunks", ingest["chunks"]))
    if isinstance(gen.get("llm_calls"), int) or isinstance(gen.get("cached_calls"), int):
        steps.append(
            ("LLM calls", int(gen.get("llm_calls") or 0) + int(gen.get("cached_calls") or 0))
        )
    steps += [
        ("pairs generated", len(pairs) + with_pair),
        ("passed the checker", len(pairs) + dups),
        ("kept after dedup", len(pairs)),
    ]
    skipped = ingest.get("skipped")
    note = ""
    if isinstance(skipped, list) and skipped:
        items = "".join(
            f"<li>{escape(str(s.get('path', s)))}: {escape(str(s.get('reason', '')))}</li>"
            if isinstance(s, dict)
            else f"<li>{escape(str(s))}</li>"
            for s in skipped[:10]
        )
        note = f'<p class="muted">{len(skipped)} input files skipped at ingest:</p><ul class="muted">{items}</ul>'
    elif isinstance(skipped, int) and skipped:
        note = f'<p class="muted">{skipped} input files skipped at ingest.</p>'
    body = (
        hbar_chart(steps, fmt="{:.0f}")
        + note
        + "<h3>Rejections by reason</h3>"
        + hbar_chart(
            list((by_reason or count_reasons(rejected)).items())[:20],
            colour=BAD_COLOUR,
            fmt="{:.0f}",
        )
    )
    return _section("Funnel", body, "funnel")


def _coverage(cov: Mapping[str, Any]) -> str:
    if not cov:
        body = '<p class="muted">No pair cites a document, so coverage cannot be measured.</p>'
        return _section("Coverage", body, "coverage")
    lines = [
        f"{what.capitalize()} cited: <b>{cov.get(f'{what}_cited')}</b>"
        + (
            f" of {cov[f'{what}_total']} ({_fmt(cov.get(f'{what}_share'), '.0%')})"
            if cov.get(f"{what}_total")
            else ""
        )
        for what in ("documents", "chunks")
    ]
    docs = [d for d in cov.get("documents") or () if d.get("doc_id")]
    docs.sort(key=lambda d: -int(d.get("pairs") or 0))
    bars = [
        (str(d.get("title") or d.get("doc_id")), float(d.get("pairs") or 0))
        for d in docs[:MAX_DOC_BARS]
    ]
    more = (
        f'<p class="muted">showing {MAX_DOC_BARS} of {len(docs)} documents</p>'
        if len(docs) > MAX_DOC_BARS
        else ""
    )
    unused = cov.get("unused_documents") or []
    unused_html = ""
    if unused:
        shown = ", ".join(escape(str(u)) for u in unused[:30])
        unused_html = (
            f"<p><b>Never cited ({len(unused)}):</b> {shown}{' …' if len(unused) > 30 else ''}</p>"
        )
    body = (
        "<p>"
        + "<br>".join(lines)
        + "</p><h3>Pairs per document</h3>"
        + hbar_chart(bars, fmt="{:.0f}")
        + more
        + unused_html
    )
    return _section("Coverage", body, "coverage")


def _diversity(health: Mapping[str, Any], ref: Mapping[str, Any]) -> str:
    match = health.get("matched") or {}
    checks = (health.get("narrowing") or {}).get("checks") or {}
    rows: list[tuple[str, str, str, bool]] = [
        ("questions", str(health.get("n", 0)), str(ref.get("n", "")) if ref else "", False)
    ]
    for n in (1, 2, 3):
        key = f"distinct_{n}"
        if match:
            rows.append(
                (
                    f"distinct-{n} (equal samples of {match.get('size')})",
                    _fmt(match[key]["set"]),
                    _fmt(match[key]["reference"]),
                    bool(checks.get(key, {}).get("fired")),
                )
            )
        else:
            rows.append((f"distinct-{n}", _fmt(health.get(key)), "", False))
    rows.append(
        (
            "question-type entropy (bits)",
            _fmt(health.get("wh", {}).get("entropy_bits"), ".2f"),
            _fmt((ref.get("wh") or {}).get("entropy_bits"), ".2f") if ref else "",
            bool(checks.get("wh_entropy", {}).get("fired")),
        )
    )
    sim = (health.get("similarity") or {}).get("mean_cosine")
    if sim is not None:
        rows.append(
            (
                "mean pairwise cosine (lower = more varied)",
                _fmt(sim),
                _fmt((ref.get("similarity") or {}).get("mean_cosine")) if ref else "",
                bool(checks.get("similarity", {}).get("fired")),
            )
        )
    tp = health.get("top_prefix") or {}
    rows.append(
        (
            f"most common opening: “{escape(str(tp.get('prefix', '')))}”",
            _fmt(tp.get("share"), ".0%"),
            _fmt((ref.get("top_prefix") or {}).get("share"), ".0%") if ref else "",
            bool(checks.get("top_prefix", {}).get("fired")),
        )
    )
    spread = match.get("document_spread") or {}
    if spread:
        rows.append(
            (
                "document spread (equal samples)",
                _fmt(spread.get("set"), ".2f"),
                _fmt(spread.get("reference"), ".2f"),
                bool(checks.get("document_spread", {}).get("fired")),
            )
        )
    head = f"<tr><th>figure</th><th>this set</th><th>{'reference' if ref else ''}</th></tr>"
    body_rows = "".join(
        f"<tr{' class=fired' if fired else ''}><td>{name}</td><td>{a}</td><td>{b}</td></tr>"
        for name, a, b, fired in rows
    )
    ref_note = (
        f'<p class="muted">Reference: {escape(str(ref.get("name", "")))}. Distinct-n depends on set size, so both sides are compared on equal-size random samples (averaged over draws).</p>'
        if ref
        else '<p class="muted">No reference given: pass a human QA set (SQuAD JSON or JSONL) with <code>--reference</code> to compare.</p>'
    )
    return _section("Diversity", f"<table>{head}{body_rows}</table>{ref_note}", "diversity")


def _wh(health: Mapping[str, Any], ref: Mapping[str, Any]) -> str:
    from grounded.eval.dataset import WH_TYPES

    shares = (health.get("wh") or {}).get("shares") or {}
    ref_shares = (ref.get("wh") or {}).get("shares") or {}
    cats = [t for t in WH_TYPES if t in shares or t in ref_shares]
    series = [("this set", [float(shares.get(t, 0)) for t in cats], SET_COLOUR)]
    if ref:
        series.append(("reference", [float(ref_shares.get(t, 0)) for t in cats], REF_COLOUR))
    return _section("Question types", grouped_bars(cats, series, width=760), "question-types")


def _lengths(health: Mapping[str, Any], ref: Mapping[str, Any]) -> str:
    hist = (health.get("answer_length") or {}).get("histogram") or {}
    ref_hist = (ref.get("answer_length") or {}).get("histogram") or {}
    cats = list(hist or ref_hist)
    used = [i for i, c in enumerate(cats) if hist.get(c) or ref_hist.get(c)]
    # Empty buckets at either end only stretch the chart.
    cats = cats[used[0] : used[-1] + 1] if used else []
    n = sum(hist.values()) or 1
    rn = sum(ref_hist.values()) or 1
    series = [("this set", [hist.get(c, 0) / n for c in cats], SET_COLOUR)]
    if ref:
        series.append(("reference", [ref_hist.get(c, 0) / rn for c in cats], REF_COLOUR))
    stats = health.get("answer_length") or {}
    line = f"<p>Answer length in words: mean {_fmt(stats.get('mean'), '.1f')}, median {_fmt(stats.get('median'), '.0f')}, 90th percentile {_fmt(stats.get('p90'), '.0f')}, longest {_fmt(stats.get('max'), 'd')}."
    if ref:
        rs = ref.get("answer_length") or {}
        line += f" Reference: mean {_fmt(rs.get('mean'), '.1f')}, median {_fmt(rs.get('median'), '.0f')}."
    return _section(
        "Answer lengths", line + "</p>" + grouped_bars(cats, series, width=760), "answer-lengths"
    )


def _examples(
    data: Mapping[str, Any], pairs: Sequence[QAPair], rejected: Sequence[Mapping[str, Any]]
) -> str:
    kept = _spread_examples(pairs, MAX_EXAMPLES)
    rej_rows = _pick_rejections(rejected, MAX_EXAMPLES)
    rej_pairs = []
    for row in rej_rows:
        try:
            rej_pairs.append(QAPair.from_dict(row["pair"]) if row.get("pair") else None)
        except (KeyError, TypeError, ValueError):
            rej_pairs.append(None)
    chunks = _fetch_chunks(data, kept + [p for p in rej_pairs if p is not None])
    kept_html = "".join(_pair_card(p, chunks) for p in kept) or '<p class="muted">no kept pairs</p>'
    rej_html = (
        "".join(
            _pair_card(
                p,
                chunks,
                reasons=row.get("reasons") or (),
                duplicate_of=str(row.get("duplicate_of") or ""),
            )
            if p is not None
            else _raw_card(row)
            for row, p in zip(rej_rows, rej_pairs, strict=True)
        )
        or '<p class="muted">no rejections</p>'
    )
    body = f'<div class="cols"><div><h3>Kept</h3>{kept_html}</div><div><h3>Rejected</h3>{rej_html}</div></div>'
    return _section("Examples", body, "examples")


CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2430;background:#f6f7f9;margin:0}
main{max-width:1180px;margin:0 auto;padding:20px 28px 60px}
h1{font-size:24px;margin:8px 0 2px}h2{font-size:19px;margin:0 0 10px;border-bottom:1px solid #e2e5ea;padding-bottom:4px}
h3{font-size:15px;margin:14px 0 6px}
section{background:#fff;border:1px solid #e2e5ea;border-radius:8px;padding:14px 18px;margin:16px 0}
.muted{color:#6b7480}.stats{display:flex;gap:12px;flex-wrap:wrap;margin:14px 0}
.stat{background:#fff;border:1px solid #e2e5ea;border-radius:8px;padding:10px 16px;min-width:130px}
.stat .v{font-size:22px;font-weight:600}.stat .k{color:#6b7480;font-size:12px}
.banner{border-radius:8px;padding:10px 16px;margin:12px 0}.banner ul{margin:6px 0 0 0}
.banner.warn{background:#fdecea;border:1px solid #e3a39f;color:#7a1f1a}
.banner.ok{background:#eaf6ec;border:1px solid #a6d3ae;color:#1f5a2a}
.banner.note{background:#fff8e1;border:1px solid #e6cf8b;color:#5c4a0f}
svg.chart{display:block;max-width:100%;height:auto;font-size:12px;fill:#1d2430}svg .small{font-size:11px}
table{border-collapse:collapse;min-width:520px}td,th{padding:4px 12px;border-bottom:1px solid #edf0f3;text-align:left}
td:nth-child(n+2),th:nth-child(n+2){text-align:right;font-variant-numeric:tabular-nums}
tr.fired td{background:#fdecea;color:#7a1f1a;font-weight:600}
.cols{display:grid;grid-template-columns:1fr 1fr;gap:18px}
.card{border:1px solid #e2e5ea;border-radius:6px;padding:8px 10px;margin:0 0 10px;background:#fcfcfd;overflow-wrap:anywhere}
.card .q{font-weight:600}.card .a{margin:2px 0 4px}.card .meta{color:#6b7480;font-size:12px;margin-top:4px}
.ctx{font-size:12.5px;background:#f3f5f8;border-radius:4px;padding:6px 8px;white-space:pre-wrap;margin:4px 0}
.ctx ul{margin:2px 0}mark{background:#ffe27a;padding:0 1px;border-radius:2px}
.reasons{margin:2px 0 4px;padding-left:18px;color:#7a1f1a;font-size:13px}code{font-size:12px}
"""
