"""Dataset health commands: `eval dataset`, `dedup`, `report`, `export`, `mix`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from grounded.cli import emit_json, handle_errors, json_option
from grounded.commands import RegistryChoice
from grounded.embed import DEFAULT_EMBEDDER
from grounded.export import EXPORTERS
from grounded.qaset import QA_FORMATS

_FORMATS = click.Choice(QA_FORMATS)


def _pct(value: Any) -> str:
    return f"{value:.0%}" if isinstance(value, (int, float)) else "-"


# Options `grounded eval dataset` and `grounded report` share, defined once.
REFERENCE_OPTION = click.option(
    "--reference",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Human QA set to compare with (SQuAD JSON or JSONL).",
)
QUESTION_EMBEDDER_OPTION = click.option(
    "--embedder",
    default=DEFAULT_EMBEDDER,
    show_default=True,
    help="Embedder for question similarity, or 'none' to skip it.",
)


def _num(value: Any, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) else "-"


@click.command("dataset")
@click.argument("qa", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@REFERENCE_OPTION
@click.option(
    "--format",
    "fmt",
    default=None,
    type=_FORMATS,
    help="Format of QA (default: guessed from the file).",
)
@click.option(
    "--reference-format", default=None, type=_FORMATS, help="Format of REF (default: guessed)."
)
@click.option(
    "--index",
    default=None,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Index directory: total documents and chunks for coverage.",
)
@QUESTION_EMBEDDER_OPTION
@click.option(
    "--seed", default=0, show_default=True, type=int, help="Seed of the equal-size samples."
)
@json_option
@handle_errors
def eval_dataset(
    qa: Path,
    reference: Path | None,
    fmt: str | None,
    reference_format: str | None,
    index: Path | None,
    embedder: str,
    seed: int,
    as_json: bool,
) -> None:
    """Diversity, question types, answer lengths and coverage of QA; warn if it is narrower than REF."""
    from grounded.eval.dataset import dataset_health

    health = dataset_health(
        qa,
        reference=reference,
        index=index,
        format=fmt,
        reference_format=reference_format,
        embedder=embedder,
        seed=seed,
    )
    if as_json:
        emit_json(health)
        return
    ref = health.get("reference") or {}
    match = health.get("matched") or {}
    rows: list[tuple[str, str, str]] = [("questions", str(health["n"]), str(ref.get("n", "")))]
    for n in (1, 2, 3):
        key = f"distinct_{n}"
        if match:
            rows.append(
                (
                    f"{key} (on {match['size']} each)",
                    _num(match[key]["set"]),
                    _num(match[key]["reference"]),
                )
            )
        else:
            rows.append((key, _num(health[key]), ""))
    rows.append(
        (
            "wh-type entropy (bits)",
            _num(health["wh"]["entropy_bits"], 2),
            _num((ref.get("wh") or {}).get("entropy_bits"), 2) if ref else "",
        )
    )
    sim = (health.get("similarity") or {}).get("mean_cosine")
    if sim is not None:
        rows.append(
            (
                "mean pairwise cosine",
                _num(sim),
                _num((ref.get("similarity") or {}).get("mean_cosine")) if ref else "",
            )
        )
    rows.append(
        (
            "top opening share",
            _pct(health["top_prefix"]["share"]),
            _pct(ref["top_prefix"]["share"]) if ref else "",
        )
    )
    rows.append(
        (
            "answer length (mean words)",
            _num(health["answer_length"]["mean"], 1),
            _num(ref["answer_length"]["mean"], 1) if ref else "",
        )
    )
    cov = health.get("coverage") or {}
    ref_cov = ref.get("coverage") or {}
    if cov:
        rows.append(
            (
                "documents cited",
                f"{cov['documents_cited']}/{cov.get('documents_total', '?')}",
                f"{ref_cov.get('documents_cited', '')}/{ref_cov.get('documents_total', '?')}"
                if ref_cov
                else "",
            )
        )
        rows.append(
            (
                "chunks cited",
                f"{cov['chunks_cited']}/{cov.get('chunks_total', '?')}",
                f"{ref_cov.get('chunks_cited', '')}/{ref_cov.get('chunks_total', '?')}"
                if ref_cov
                else "",
            )
        )
    width = max(len(r[0]) for r in rows)
    click.echo(f"{'':{width}}  {'set':>10}  {'reference' if ref else '':>10}")
    for name, mine, theirs in rows:
        click.echo(f"{name:{width}}  {mine:>10}  {theirs:>10}")
    shares = health["wh"]["shares"]
    click.echo("question types: " + ", ".join(f"{t} {s:.0%}" for t, s in shares.items()))
    if cov.get("unused_documents"):
        unused = cov["unused_documents"]
        more = f" (+{len(unused) - 10} more)" if len(unused) > 10 else ""
        click.echo(f"never cited ({len(unused)}): " + ", ".join(map(str, unused[:10])) + more)
    narrowing = health["narrowing"]
    if narrowing["warning"]:
        click.echo("NARROWING WARNING: " + "; ".join(narrowing["reasons"]))
    elif narrowing.get("note"):
        click.echo(f"no narrowing warning: {narrowing['note']}")
    else:
        click.echo("no narrowing warning")


@click.command()
@click.argument("qa", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for qa.jsonl (kept) and rejected.jsonl (removals appended).",
)
@click.option(
    "--near",
    default=0.9,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Character similarity for near duplicates.",
)
@click.option(
    "--semantic",
    default=0.92,
    show_default=True,
    type=click.FloatRange(-1, 1),
    help="Embedding cosine for paraphrases.",
)
@click.option(
    "--embedder",
    default=DEFAULT_EMBEDDER,
    show_default=True,
    help="Embedder for paraphrases, or 'none' to skip that test.",
)
@json_option
@handle_errors
def dedup(qa: Path, out: Path, near: float, semantic: float, embedder: str, as_json: bool) -> None:
    """Remove duplicate questions from QA (JSONL or SQuAD JSON), keeping the best-supported copy of each."""
    from collections import Counter

    from grounded.dedup import dedup as run_dedup
    from grounded.jsonl import JsonlWriter, write_jsonl
    from grounded.qaset import read_pairs
    from grounded.rundir import RunFolder

    pairs = read_pairs(qa)
    kept, removed = run_dedup(pairs, near=near, semantic=semantic, embedder=embedder)
    folder = RunFolder(out)
    write_jsonl(folder.qa, (p.to_dict() for p in kept))
    with JsonlWriter(folder.rejected) as writer:
        writer.write_many(r.to_dict() for r in removed)
    kinds = Counter(r.reasons[0].message.split(" (")[0].split(" of ")[0] for r in removed)
    summary = {
        "input": len(pairs),
        "kept": len(kept),
        "removed": len(removed),
        "by_kind": dict(kinds),
        "files": {"qa": str(folder.qa), "rejected": str(folder.rejected)},
    }
    if as_json:
        emit_json(summary)
    else:
        detail = ", ".join(f"{k} {v}" for k, v in kinds.items())
        click.echo(
            f"kept {len(kept)} of {len(pairs)} pairs, removed {len(removed)} duplicates"
            + (f" ({detail})" if detail else "")
        )
        click.echo(f"files: {folder.qa}, {folder.rejected}")


@click.command()
@click.argument("out_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@REFERENCE_OPTION
@QUESTION_EMBEDDER_OPTION
@json_option
@handle_errors
def report(out_dir: Path, reference: Path | None, embedder: str, as_json: bool) -> None:
    """Write OUT_DIR/report.html from its qa.jsonl, rejected.jsonl and summary.json."""
    from grounded.errors import CheckError
    from grounded.eval.report import write_report
    from grounded.rundir import RunFolder

    run = RunFolder(out_dir)
    if not any(p.is_file() for p in (run.qa, run.rejected, run.summary)):
        raise CheckError(
            f"{out_dir} has no qa.jsonl, rejected.jsonl or summary.json",
            hint="point at a run directory",
        )
    path = write_report(out_dir, reference=reference, embedder=embedder)
    if as_json:
        emit_json({"report": str(path)})
    else:
        click.echo(f"report: {path}")


@click.command()
@click.argument("qa", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    required=True,
    type=RegistryChoice(EXPORTERS),
    help="Output layout.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="Output file (a directory for hf).",
)
@click.option(
    "--index",
    default=None,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Index to read source texts from (default: the run directory's index, if any).",
)
@click.option("--system", default=None, help="System message for --format openai.")
@click.option(
    "--with-context/--no-context",
    default=False,
    show_default=True,
    help="openai: put the source text before the question.",
)
@json_option
@handle_errors
def export(
    qa: Path,
    fmt: str,
    out: Path,
    index: Path | None,
    system: str | None,
    with_context: bool,
    as_json: bool,
) -> None:
    """Write QA (JSONL rows or SQuAD JSON) as CSV, Hugging Face datasets, Parquet, OpenAI, Ragas or DeepEval data."""
    from grounded.export import DEFAULT_SYSTEM, chunks_from_index
    from grounded.export import export as run_export
    from grounded.qaset import read_pairs
    from grounded.rundir import RunFolder

    pairs = read_pairs(qa)
    source = index or RunFolder.of(qa).index_path()
    chunks = chunks_from_index(pairs, source) if source is not None else {}
    n = run_export(
        pairs,
        out,
        format=fmt,
        chunks=chunks,
        system=system or DEFAULT_SYSTEM,
        with_context=with_context,
    )
    summary = {"format": fmt, "rows": n, "out": str(out), "index": str(source) if source else None}
    if as_json:
        emit_json(summary)
    else:
        click.echo(f"wrote {n} rows as {fmt} to {out}")


@click.command()
@click.option(
    "--real",
    "real_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Human QA set (SQuAD JSON or JSONL).",
)
@click.option(
    "--synthetic",
    "synthetic_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Generated QA set (JSONL).",
)
@click.option(
    "--ratio",
    required=True,
    type=float,
    help="Share of real rows in the output, from 0 to 1 (0.25 = one real row in four).",
)
@click.option(
    "--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Output JSONL."
)
@click.option(
    "-n",
    "n",
    default=None,
    type=click.IntRange(min=1),
    help="Rows wanted (default: as many as keep the ratio exact).",
)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--real-format", default=None, type=_FORMATS, help="Format of --real (default: guessed)."
)
@json_option
@handle_errors
def mix(
    real_path: Path,
    synthetic_path: Path,
    ratio: float,
    out: Path,
    n: int | None,
    seed: int,
    real_format: str | None,
    as_json: bool,
) -> None:
    """Mix real and synthetic QA pairs at RATIO real; every row keeps its origin and provenance."""
    from grounded.errors import EXIT_PARTIAL
    from grounded.jsonl import write_jsonl
    from grounded.mix import check_ratio, read_side
    from grounded.mix import mix as run_mix

    check_ratio(ratio)  # fail before reading any file
    real = read_side(real_path, format=real_format)
    synthetic = read_side(synthetic_path, format="jsonl")
    rows, rep = run_mix(
        real,
        synthetic,
        ratio=ratio,
        n=n,
        seed=seed,
        real_source=str(real_path),
        synthetic_source=str(synthetic_path),
    )
    write_jsonl(out, (p.to_dict() for p in rows))
    summary = {**rep.to_dict(), "out": str(out), "seed": seed}
    if as_json:
        emit_json(summary)
    else:
        click.echo(
            f"wrote {rep.total} rows to {out}: {rep.real_used} real + {rep.synthetic_used} synthetic (real share {rep.real_share:.1%})"
        )
        for side in rep.short:
            have = rep.real_available if side == "real" else rep.synthetic_available
            want = rep.real_wanted if side == "real" else rep.synthetic_wanted
            click.echo(f"short: {side} has {have} rows, {want} were asked for", err=True)
    if rep.short:
        sys.exit(EXIT_PARTIAL)
