"""Write a QA set in the shapes other tools read: CSV, Hugging Face datasets, Parquet, OpenAI
fine-tuning chat JSONL, Ragas and DeepEval evaluation sets.

Source texts: a pair's `contexts` when it carries them; otherwise the text of its chunks, looked
up in the index (`chunks=`); otherwise the evidence quotes. Field layouts:

- ragas: JSONL rows of Ragas' `SingleTurnSample` fields (`user_input`, `reference`,
  `reference_contexts`, with `response` "" and `retrieved_contexts` [] for the system under
  test to fill); load with `ragas.EvaluationDataset.from_jsonl(path)` or `from_list`.
- deepeval: a JSON array of DeepEval `Golden` fields (`input`, `expected_output`, `context`,
  `source_file`, `additional_metadata`); load with
  `EvaluationDataset().add_goldens_from_json_file(path)`.
- openai: `{"messages": [system, user, assistant]}` per line; the user turn is the question,
  preceded by its source text with `with_context=True`.

Formats are registered by name (`register_exporter`); the built-ins register the way a plugin
does, and a package adds its own by naming a module under the `grounded.exporters` entry point
group, imported on first use of the registry.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grounded.errors import ConfigError, MissingDependencyError
from grounded.jsonl import write_jsonl
from grounded.plugins import Registry
from grounded.rundir import atomic_write, atomic_write_json
from grounded.types import Chunk, QAPair

ENTRY_POINT_GROUP = "grounded.exporters"
CSV_COLUMNS = (
    "id", "question", "answer", "kind", "origin", "contexts", "evidence", "doc_ids", "chunk_ids",
    "source", "score", "supported", "model", "prompt", "prompt_hash",
)  # fmt: skip
DEFAULT_SYSTEM = "Answer the question using only the given documents; answer briefly and exactly."


def contexts_of(pair: QAPair, chunks: Mapping[str, Chunk] | None = None) -> list[str]:
    """The pair's source texts: inline contexts, else its chunks' texts, else its evidence quotes."""
    if pair.contexts:
        return list(pair.contexts)
    if chunks:
        ids = pair.chunk_ids or tuple(dict.fromkeys(e.chunk_id for e in pair.evidence))
        texts = [chunks[c].text for c in ids if c in chunks]
        if texts:
            return texts
    return [e.text for e in pair.evidence if e.text]


def sources_of(pair: QAPair, chunks: Mapping[str, Chunk] | None = None) -> list[str]:
    """Source file paths of the pair's chunks (needs the chunks), else a `source` in its metadata."""
    found = [
        chunks[c].source for c in pair.chunk_ids if chunks and c in chunks and chunks[c].source
    ]
    if not found and pair.metadata.get("source"):
        found = [str(pair.metadata["source"])]
    return list(dict.fromkeys(found))


def flat_row(pair: QAPair, chunks: Mapping[str, Chunk] | None = None) -> dict[str, Any]:
    """One flat record per pair (lists stay lists; CSV joins them)."""
    v = pair.verdict
    return {
        "id": pair.id,
        "question": pair.question,
        "answer": pair.answer,
        "kind": pair.kind,
        "origin": pair.origin,
        "contexts": contexts_of(pair, chunks),
        "evidence": [e.text for e in pair.evidence],
        "evidence_spans": [
            {
                "doc_id": e.doc_id,
                "chunk_id": e.chunk_id,
                "start": e.start,
                "end": e.end,
                "score": float(e.score),
            }
            for e in pair.evidence
        ],
        "doc_ids": list(pair.doc_ids),
        "chunk_ids": list(pair.chunk_ids),
        "source": sources_of(pair, chunks),
        "score": float(v.score) if v is not None else None,
        "supported": bool(v.supported) if v is not None else None,
        "model": pair.provenance.model,
        "prompt": pair.provenance.prompt,
        "prompt_hash": pair.provenance.prompt_hash,
    }


@dataclass(frozen=True, slots=True)
class ExportOptions:
    """What an exporter may need besides the pairs: the index's chunks and the openai options."""

    chunks: Mapping[str, Chunk] | None = None
    system: str = DEFAULT_SYSTEM
    with_context: bool = False


# Writes the pairs to a path (creating what it needs there) and returns the rows written.
Exporter = Callable[[Sequence[QAPair], Path, ExportOptions], int]

EXPORTERS: Registry[Exporter] = Registry("exporter", ENTRY_POINT_GROUP)


def register_exporter(name: str, exporter: Exporter | None = None, *, replace: bool = True) -> Any:
    """Register `exporter` as `export --format NAME`; usable as a decorator."""

    def add(fn: Exporter) -> Exporter:
        return EXPORTERS.register(name, fn, replace=replace)

    return add(exporter) if exporter is not None else add


def unregister_exporter(name: str) -> None:
    """Remove one format (no error if it is not registered)."""
    EXPORTERS.unregister(name)


def formats() -> list[str]:
    """The registered format names, built-ins first."""
    return EXPORTERS.names()


def export(
    pairs: Iterable[QAPair],
    out: str | Path,
    *,
    format: str,
    chunks: Mapping[str, Chunk] | None = None,
    system: str = DEFAULT_SYSTEM,
    with_context: bool = False,
) -> int:
    """Write `pairs` to `out` in `format` (a registered name); return the number of rows written."""
    exporter = EXPORTERS.get(format)
    if exporter is None:
        raise ConfigError(
            f"unknown export format {format!r}", hint="use one of " + ", ".join(formats())
        )
    options = ExportOptions(chunks=chunks, system=system, with_context=with_context)
    return exporter(list(pairs), Path(out), options)


def _file(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


@register_exporter("jsonl")
def _export_jsonl(pairs: Sequence[QAPair], path: Path, options: ExportOptions) -> int:
    return write_jsonl(_file(path), (p.to_dict() for p in pairs))


@register_exporter("csv")
def _export_csv(pairs: Sequence[QAPair], path: Path, options: ExportOptions) -> int:
    return _write_csv(_file(path), [flat_row(p, options.chunks) for p in pairs])


@register_exporter("hf")
def _export_hf(pairs: Sequence[QAPair], path: Path, options: ExportOptions) -> int:
    return _write_hf(path, [flat_row(p, options.chunks) for p in pairs])


@register_exporter("parquet")
def _export_parquet(pairs: Sequence[QAPair], path: Path, options: ExportOptions) -> int:
    return _write_parquet(_file(path), [flat_row(p, options.chunks) for p in pairs])


@register_exporter("openai")
def _export_openai(pairs: Sequence[QAPair], path: Path, options: ExportOptions) -> int:
    rows = (
        openai_row(p, options.chunks, system=options.system, with_context=options.with_context)
        for p in pairs
    )
    return write_jsonl(_file(path), rows)


@register_exporter("ragas")
def _export_ragas(pairs: Sequence[QAPair], path: Path, options: ExportOptions) -> int:
    return write_jsonl(_file(path), (ragas_row(p, options.chunks) for p in pairs))


@register_exporter("deepeval")
def _export_deepeval(pairs: Sequence[QAPair], path: Path, options: ExportOptions) -> int:
    return _write_json(_file(path), [deepeval_row(p, options.chunks) for p in pairs])


def openai_row(
    pair: QAPair,
    chunks: Mapping[str, Chunk] | None = None,
    *,
    system: str = DEFAULT_SYSTEM,
    with_context: bool = False,
) -> dict[str, Any]:
    user = pair.question
    if with_context:
        docs = "\n\n".join(contexts_of(pair, chunks))
        user = f"Documents:\n{docs}\n\nQuestion: {pair.question}"
    return {
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": user},
            {"role": "assistant", "content": pair.answer},
        ]
    }


def ragas_row(pair: QAPair, chunks: Mapping[str, Chunk] | None = None) -> dict[str, Any]:
    return {
        "user_input": pair.question,
        "reference": pair.answer,
        "reference_contexts": contexts_of(pair, chunks),
        "response": "",
        "retrieved_contexts": [],
    }


def deepeval_row(pair: QAPair, chunks: Mapping[str, Chunk] | None = None) -> dict[str, Any]:
    sources = sources_of(pair, chunks)
    return {
        "input": pair.question,
        "expected_output": pair.answer,
        "context": contexts_of(pair, chunks),
        "source_file": sources[0] if sources else None,
        "additional_metadata": {
            "id": pair.id,
            "kind": pair.kind,
            "origin": pair.origin,
            "doc_ids": list(pair.doc_ids),
            "chunk_ids": list(pair.chunk_ids),
            "evidence": [e.text for e in pair.evidence],
            "score": pair.verdict.score if pair.verdict is not None else None,
            "model": pair.provenance.model,
        },
    }


def _write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> int:
    with atomic_write(path, newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(CSV_COLUMNS), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            flat = dict(row)
            flat["contexts"] = "\n\n".join(row["contexts"])
            flat["evidence"] = "\n\n".join(row["evidence"])
            for key in ("doc_ids", "chunk_ids", "source"):
                flat[key] = "; ".join(row[key])
            flat["score"] = "" if row["score"] is None else f"{row['score']:.4f}"
            flat["supported"] = "" if row["supported"] is None else str(row["supported"]).lower()
            writer.writerow(flat)
    return len(rows)


def _write_json(path: Path, rows: list[dict[str, Any]]) -> int:
    atomic_write_json(path, rows, indent=1)
    return len(rows)


def _write_parquet(path: Path, rows: list[dict[str, Any]]) -> int:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise MissingDependencyError(
            "export --format parquet", "'grounded[export]'  # pyarrow"
        ) from exc
    pq.write_table(pa.Table.from_pylist(rows, schema=_schema(pa)), path)
    return len(rows)


def _write_hf(path: Path, rows: list[dict[str, Any]]) -> int:
    try:
        import datasets
        import pyarrow as pa
    except ImportError as exc:
        raise MissingDependencyError(
            "export --format hf", "'grounded[export]'  # datasets, pyarrow"
        ) from exc
    table = pa.Table.from_pylist(rows, schema=_schema(pa))
    getattr(datasets, "disable_progress_bars", lambda: None)()  # keep stderr for our own messages
    datasets.Dataset(table).save_to_disk(str(path))
    return len(rows)


def _schema(pa: Any) -> Any:
    """Explicit types, so an empty set or all-missing scores still give the same columns."""
    strings = pa.list_(pa.string())
    span = pa.struct(
        [
            ("doc_id", pa.string()),
            ("chunk_id", pa.string()),
            ("start", pa.int64()),
            ("end", pa.int64()),
            ("score", pa.float64()),
        ]
    )
    return pa.schema(
        [
            ("id", pa.string()),
            ("question", pa.string()),
            ("answer", pa.string()),
            ("kind", pa.string()),
            ("origin", pa.string()),
            ("contexts", strings),
            ("evidence", strings),
            ("evidence_spans", pa.list_(span)),
            ("doc_ids", strings),
            ("chunk_ids", strings),
            ("source", strings),
            ("score", pa.float64()),
            ("supported", pa.bool_()),
            ("model", pa.string()),
            ("prompt", pa.string()),
            ("prompt_hash", pa.string()),
        ]  # fmt: skip
    )


def cited_chunk_ids(pairs: Iterable[QAPair]) -> list[str]:
    """Sorted ids of the chunks cited by pairs that carry no inline contexts."""
    return sorted(
        {
            c
            for p in pairs
            if not p.contexts
            for c in (*p.chunk_ids, *(e.chunk_id for e in p.evidence))
            if c
        }
    )


def chunks_from_index(
    pairs: Sequence[QAPair], index: str | Path, *, chroma_url: str | None = None
) -> dict[str, Chunk]:
    """The chunks the pairs cite, read from an index (only for pairs without inline contexts)."""
    wanted = cited_chunk_ids(pairs)
    if not wanted:
        return {}
    from grounded.index import open_index

    with open_index(index, chroma_url=chroma_url) as idx:
        return {c.id: c for c in idx.get_chunks(wanted)}
