"""Ingest throughput and memory: parse+chunk docs/s, embedding chunks/s, peak RSS at N and 2N docs.

    .venv/bin/python benchmarks/bench_ingest.py --docs 1000 --doc-kb 20

Builds a corpus of md/html/txt documents by recombining SQuAD v1.1 dev paragraphs (Wikipedia,
CC BY-SA 4.0; ../shared/bench), then measures, each stage in a fresh subprocess so peak memory
is its own:
  1. parse+chunk: grounded.loaders.load_file + grounded.chunking.chunk_document over N and 2N docs
     (the ratio of peak RSS shows whether memory stays flat as the corpus grows);
  2. embedding: the fast static embedder over the chunks of a sample, MiniLM over a smaller one;
  3. retrieval quality of each embedder: recall@1/@5 of SQuAD questions over their paragraphs;
  4. full ingest (load, chunk, embed with `fast`, upsert into Chroma) of N docs, then a re-ingest
     of the same folder (nothing changed: nothing embedded).

One big document against the same text in many files (`--scale-only` runs just this):

    .venv/bin/python benchmarks/bench_ingest.py --scale-only --scale-mb 50 --scale-files 500

  5. scale: the full `grounded.ingestion` (load, chunk, embed with `fast`, upsert into Chroma) of one
     SCALE_MB document, then of the same text split into SCALE_FILES files; time ratio (1.0 = as
     fast as many small files), chunks, and the peak RSS of each run;
  6. chunk only: `chunk_document` over 8, 16 and 24 MB of the same text (`--chunk-mb`), to show
     chunking time grows linearly with document size.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SQUAD = ROOT.parent / "shared" / "bench" / "squad" / "dev-v1.1-part-a.json"


def make_corpus(folder: Path, n_docs: int, doc_kb: int, seed: int = 0) -> int:
    """Write n_docs md/html/txt files of about doc_kb KB each; returns total bytes."""
    data = json.loads(SQUAD.read_text(encoding="utf-8"))
    paras = [
        (a["title"].replace("_", " "), p["context"].strip())
        for a in data["data"]
        for p in a["paragraphs"]
    ]
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    total = 0
    for i in range(n_docs):
        picked: list[tuple[str, str]] = []
        size = 0
        while size < doc_kb * 1024:
            picked.append(rng.choice(paras))
            size += len(picked[-1][1]) + 2
        kind = ("md", "html", "txt")[i % 3]
        title = f"Document {i}: {picked[0][0]}"
        sections = [picked[j : j + 5] for j in range(0, len(picked), 5)]
        if kind == "md":
            body = f"# {title}\n\n" + "\n\n".join(
                f"## {sec[0][0]} ({k})\n\n" + "\n\n".join(p for _, p in sec)
                for k, sec in enumerate(sections)
            )
        elif kind == "html":
            body = (
                f"<html><head><title>{html.escape(title)}</title></head><body><h1>{html.escape(title)}</h1>"
                + "".join(
                    f"<h2>{html.escape(sec[0][0])} ({k})</h2>"
                    + "".join(f"<p>{html.escape(p)}</p>" for _, p in sec)
                    for k, sec in enumerate(sections)
                )
                + "</body></html>"
            )
        else:
            body = title.upper() + "\n\n" + "\n\n".join(p for _, p in picked)
        path = folder / f"doc{i:05d}.{kind}"
        path.write_text(body, encoding="utf-8")
        total += path.stat().st_size
    return total


def scale_paragraphs(total_bytes: int, seed: int = 3) -> list[str]:
    """SQuAD paragraphs in random order, each numbered so no two chunks are the same text."""
    data = json.loads(SQUAD.read_text(encoding="utf-8"))
    paras = [p["context"].strip() for a in data["data"] for p in a["paragraphs"]]
    rng = random.Random(seed)
    out: list[str] = []
    size = 0
    while size < total_bytes:
        out.append(f"Record {len(out)}. {rng.choice(paras)}")
        size += len(out[-1].encode("utf-8")) + 2
    return out


def make_scale_corpus(work: Path, total_mb: float, n_files: int) -> tuple[Path, Path]:
    """One .txt of about total_mb MB, and a folder with the same paragraphs in n_files .txt files."""
    paras = scale_paragraphs(int(total_mb * 1e6))
    single = work / "scale-single" / "big.txt"
    single.parent.mkdir(parents=True, exist_ok=True)
    single.write_text("\n\n".join(paras), encoding="utf-8")
    many = work / "scale-many"
    many.mkdir(parents=True, exist_ok=True)
    cuts = [i * len(paras) // n_files for i in range(n_files + 1)]  # n_files nearly equal parts
    for i in range(n_files):
        part = paras[cuts[i] : cuts[i + 1]]
        (many / f"part{i:04d}.txt").write_text("\n\n".join(part), encoding="utf-8")
    return single, many


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def cpu_seconds() -> float:
    """User + system CPU time of this process (steadier than wall time on a shared machine)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# --- stages, each run in its own process ----------------------------------------------


def stage_parse(folder: str, chunk_tokens: int, overlap: int) -> dict:
    from grounded.chunking import chunk_document
    from grounded.loaders import load_file, walk

    files = [s.path for s in walk([folder])]
    load_file(files[0])  # warm-up: imports, spaCy model
    base = peak_rss_mb()
    docs = chunks = tokens = chars = 0
    t0 = time.perf_counter()
    for f in files:
        for doc in load_file(f):
            docs += 1
            chars += len(doc.text)
            for c in chunk_document(doc, chunk_tokens=chunk_tokens, overlap_tokens=overlap):
                chunks += 1
                tokens += c.tokens
    dt = time.perf_counter() - t0
    return {
        "docs": docs,
        "chunks": chunks,
        "tokens": tokens,
        "chars": chars,
        "seconds": round(dt, 2),
        "docs_per_s": round(docs / dt, 1),
        "chunks_per_s": round(chunks / dt, 1),
        "mb_per_s": round(chars / dt / 1e6, 2),
        "rss_after_warmup_mb": round(base, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def stage_embed(folder: str, embedder: str, limit: int, chunk_tokens: int, overlap: int) -> dict:
    from grounded.chunking import chunk_document
    from grounded.embed import get_embedder
    from grounded.loaders import load_file, walk

    texts: list[str] = []
    for s in walk([folder]):
        for doc in load_file(s.path):
            texts.extend(
                c.text
                for c in chunk_document(doc, chunk_tokens=chunk_tokens, overlap_tokens=overlap)
            )
        if len(texts) >= limit:
            break
    texts = texts[:limit]
    t0 = time.perf_counter()
    emb = get_embedder(embedder)
    load_s = time.perf_counter() - t0
    emb.embed(texts[:8])  # warm-up
    t0 = time.perf_counter()
    vecs = emb.embed(texts)
    dt = time.perf_counter() - t0
    return {
        "embedder": embedder,
        "chunks": len(texts),
        "dim": int(vecs.shape[1]),
        "load_s": round(load_s, 1),
        "seconds": round(dt, 2),
        "chunks_per_s": round(len(texts) / dt, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def stage_quality(embedder: str, n_paras: int, n_questions: int) -> dict:
    """Retrieval recall of SQuAD questions over SQuAD paragraphs (each paragraph one chunk)."""
    import numpy as np

    from grounded.embed import get_embedder

    data = json.loads(SQUAD.read_text(encoding="utf-8"))
    paras: list[str] = []
    questions: list[tuple[str, int]] = []
    for article in data["data"]:
        for p in article["paragraphs"]:
            if len(paras) >= n_paras:
                break
            paras.append(p["context"])
            questions.extend((q["question"], len(paras) - 1) for q in p["qas"][:2])
    rng = random.Random(0)
    rng.shuffle(questions)
    questions = questions[:n_questions]
    emb = get_embedder(embedder)
    t0 = time.perf_counter()
    pv = emb.embed(paras)
    qv = emb.embed([q for q, _ in questions])
    dt = time.perf_counter() - t0
    ranks = np.argsort(-(qv @ pv.T), axis=1)
    gold = np.array([g for _, g in questions])
    at = {k: float(np.mean([gold[i] in ranks[i, :k] for i in range(len(gold))])) for k in (1, 5)}
    return {
        "embedder": embedder,
        "paragraphs": len(paras),
        "questions": len(questions),
        "recall_at_1": round(at[1], 3),
        "recall_at_5": round(at[5], 3),
        "seconds": round(dt, 1),
    }


def stage_ingest(
    folder: str, index: str, embedder: str, workers: int, chunk_tokens: int, overlap: int
) -> dict:
    from grounded.ingestion import ingest

    t0 = time.perf_counter()
    s = ingest(
        [folder],
        index=index,
        embedder=embedder,
        chunk_tokens=chunk_tokens,
        overlap_tokens=overlap,
        workers=workers,
    )
    dt = time.perf_counter() - t0
    t1 = time.perf_counter()
    again = ingest(
        [folder], index=index, embedder=embedder, chunk_tokens=chunk_tokens, overlap_tokens=overlap
    )
    dt2 = time.perf_counter() - t1
    return {
        "embedder": embedder,
        "documents": s.documents,
        "chunks": s.chunks,
        "skipped": len(s.skipped),
        "seconds": round(dt, 1),
        "docs_per_s": round(s.documents / dt, 1),
        "chunks_per_s": round(s.chunks / dt, 1),
        "reingest_seconds": round(dt2, 1),
        "reingest_embedded": again.embedded,
        "reingest_unchanged": again.unchanged,
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def stage_scale(path: str, index: str) -> dict:
    """The full ingest of a file or folder with the fast embedder; models warmed up first."""
    from grounded.embed import get_embedder
    from grounded.ingestion import ingest
    from grounded.loaders import load_file

    get_embedder("fast").embed(["warm-up"])  # distil (once per machine) and load: not timed
    warm = Path(index).with_name("warm.txt")
    warm.write_text("Warm-up text for the loader.", encoding="utf-8")
    load_file(warm)
    base = peak_rss_mb()
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    s = ingest([path], index=index, embedder="fast")
    dt, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    return {
        "documents": s.documents,
        "chunks": s.chunks,
        "embedded": s.embedded,
        "skipped": len(s.skipped),
        "seconds": round(dt, 1),
        "cpu_seconds": round(cpu, 1),
        "rss_after_warmup_mb": round(base, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def stage_chunk(sizes_mb: str, chunk_tokens: int, overlap: int) -> dict:
    """Seconds to chunk one document of each size (MB), same text prefix."""
    from grounded.chunking import chunk_document
    from grounded.types import Document

    sizes = [float(x) for x in sizes_mb.split(",")]
    text = "\n\n".join(scale_paragraphs(int(max(sizes) * 1e6)))
    chunk_document(Document.from_text(text[:100_000], source="warm"))  # tokenizer tables
    out: dict[str, dict] = {}
    for mb in sizes:
        doc = Document.from_text(text[: int(mb * 1e6)], source=f"{mb}mb")
        t0 = time.perf_counter()
        n = sum(1 for _ in chunk_document(doc, chunk_tokens=chunk_tokens, overlap_tokens=overlap))
        out[f"{mb:g}"] = {"chunks": n, "seconds": round(time.perf_counter() - t0, 2)}
    return {"sizes": out, "peak_rss_mb": round(peak_rss_mb(), 1)}


def run_scale(work: Path, total_mb: float, n_files: int, chunk_mb: str, common: list[str]) -> None:
    """Section 5 and 6: one big document against the same text in many files; chunking alone."""
    t0 = time.perf_counter()
    single, many = make_scale_corpus(work, total_mb, n_files)
    size = single.stat().st_size / 1e6
    print(
        f"scale corpus: one {size:.1f} MB .txt and the same paragraphs in {n_files} files ({time.perf_counter() - t0:.1f}s)"
    )
    one = run_stage("scale", str(single), str(work / "index-single"))
    split = run_stage("scale", str(many), str(work / "index-many"))
    for name, r in ((f"1 file of {size:.0f} MB", one), (f"{n_files} files", split)):
        print(
            f"  ingest {name:>16} (fast embedder, Chroma): {r['seconds']}s ({r['cpu_seconds']}s CPU), {r['documents']} docs, "
            f"{r['chunks']} chunks, peak RSS {r['peak_rss_mb']} MB (after warm-up {r['rss_after_warmup_mb']} MB)"
        )
    print(
        f"  one document / many files: time {one['seconds'] / split['seconds']:.2f}x, "
        f"CPU {one['cpu_seconds'] / split['cpu_seconds']:.2f}x (<= 1.5 wanted)"
    )
    if chunk_mb:
        r = run_stage("chunk", chunk_mb, *common)
        figures = ", ".join(
            f"{mb} MB {v['seconds']}s ({v['chunks']} chunks)" for mb, v in r["sizes"].items()
        )
        print(f"chunk_document alone: {figures}; peak RSS {r['peak_rss_mb']} MB")


def run_stage(*args: str, env: dict[str, str] | None = None) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--stage", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
    )
    if proc.returncode != 0:
        raise SystemExit(f"stage {args[0]} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description="grounded ingest benchmark")
    ap.add_argument("--docs", type=int, default=1000, help="N: documents in the base corpus")
    ap.add_argument("--doc-kb", type=int, default=20, help="approximate size of each document")
    ap.add_argument("--chunk-tokens", type=int, default=256)
    ap.add_argument("--overlap-tokens", type=int, default=32)
    ap.add_argument(
        "--fast-sample", type=int, default=5000, help="chunks embedded with the fast embedder"
    )
    ap.add_argument("--minilm-sample", type=int, default=256, help="chunks embedded with MiniLM")
    ap.add_argument("--no-double", action="store_true", help="skip the 2N memory run")
    ap.add_argument(
        "--ingest-docs", type=int, default=300, help="documents for the full ingest stage (0: skip)"
    )
    ap.add_argument(
        "--baseline-docs",
        type=int,
        default=100,
        help="docs parsed with the full spaCy model (0: skip)",
    )
    ap.add_argument(
        "--quality",
        type=int,
        default=300,
        help="SQuAD paragraphs for the retrieval check (0: skip)",
    )
    ap.add_argument(
        "--workers", type=int, default=1, help="ingest worker processes for the full ingest stage"
    )
    ap.add_argument(
        "--scale-mb", type=float, default=50, help="size of the one big document (0: skip)"
    )
    ap.add_argument(
        "--scale-files", type=int, default=500, help="files the same text is split into"
    )
    ap.add_argument(
        "--chunk-mb", default="8,16,24", help="document sizes for the chunk-only timing ('': skip)"
    )
    ap.add_argument(
        "--scale-only", action="store_true", help="run only the big-document sections (5, 6)"
    )
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--stage", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.stage:
        name, *rest = args.stage
        ct, ov = args.chunk_tokens, args.overlap_tokens
        if name == "parse":
            out = stage_parse(rest[0], ct, ov)
        elif name == "quality":
            out = stage_quality(rest[0], int(rest[1]), int(rest[2]))
        elif name == "embed":
            out = stage_embed(rest[0], rest[1], int(rest[2]), ct, ov)
        elif name == "scale":
            out = stage_scale(rest[0], rest[1])
        elif name == "chunk":
            out = stage_chunk(rest[0], ct, ov)
        else:
            out = stage_ingest(rest[0], rest[1], rest[2], int(rest[3]), ct, ov)
        print(json.dumps(out))
        return

    work = args.workdir or Path(tempfile.mkdtemp(prefix="grounded-bench-"))
    sizes = [args.docs] if args.no_double else [args.docs, 2 * args.docs]
    common = [
        "--chunk-tokens",
        str(args.chunk_tokens),
        "--overlap-tokens",
        str(args.overlap_tokens),
    ]
    results = {}
    try:
        if args.scale_only:
            run_scale(work, args.scale_mb, args.scale_files, args.chunk_mb, common)
            return
        print(
            f"corpus: SQuAD paragraphs recombined into md/html/txt files of ~{args.doc_kb} KB, in {work}"
        )
        for n in sizes:
            folder = work / f"corpus-{n}"
            t0 = time.perf_counter()
            nbytes = make_corpus(folder, n, args.doc_kb)
            print(f"  generated {n} docs, {nbytes / 1e6:.1f} MB in {time.perf_counter() - t0:.1f}s")
            r = run_stage("parse", str(folder), *common)
            results[n] = r
            print(
                f"parse+chunk {n:>5} docs ({nbytes / 1e6:.1f} MB): {r['docs_per_s']} docs/s, "
                f"{r['chunks_per_s']} chunks/s, {r['mb_per_s']} MB/s, {r['chunks']} chunks in {r['seconds']}s, "
                f"peak RSS {r['peak_rss_mb']} MB (after warm-up {r['rss_after_warmup_mb']} MB)"
            )
        if len(sizes) == 2:
            a, b = results[sizes[0]], results[sizes[1]]
            print(
                f"memory: peak RSS at 2N / N = {b['peak_rss_mb'] / a['peak_rss_mb']:.2f} (1.00 = flat)"
            )
        if args.baseline_docs > 0:
            # Baseline: the same parse with unstructured's statistical spaCy model (GROUNDED_NLP=full).
            sub = work / "baseline"
            make_corpus(sub, args.baseline_docs, args.doc_kb, seed=2)
            light = run_stage("parse", str(sub), *common)
            full = run_stage("parse", str(sub), *common, env={"GROUNDED_NLP": "full"})
            print(
                f"baseline on {args.baseline_docs} docs: light NLP {light['docs_per_s']} docs/s vs full spaCy model "
                f"{full['docs_per_s']} docs/s = {light['docs_per_s'] / full['docs_per_s']:.1f}x"
            )
        folder = work / f"corpus-{sizes[0]}"
        speeds = {}
        for name, n in (("fast", args.fast_sample), ("minilm", args.minilm_sample)):
            if n <= 0:
                continue
            r = run_stage("embed", str(folder), name, str(n), *common)
            speeds[name] = r["chunks_per_s"]
            print(
                f"embed {name:>6}: {r['chunks_per_s']} chunks/s ({r['chunks']} chunks of <= {args.chunk_tokens} "
                f"tokens, dim {r['dim']}, model load {r['load_s']}s)"
            )
        if len(speeds) == 2:
            print(f"embed fast / minilm = {speeds['fast'] / speeds['minilm']:.0f}x")
        if args.quality > 0:
            for name in ("fast", "minilm"):
                r = run_stage("quality", name, str(args.quality), "500", *common)
                print(
                    f"retrieval {name:>6}: recall@1 {r['recall_at_1']:.3f}, recall@5 {r['recall_at_5']:.3f} "
                    f"({r['questions']} SQuAD questions over {r['paragraphs']} paragraphs)"
                )
        if args.ingest_docs > 0:
            sub = work / f"ingest-{args.ingest_docs}"
            make_corpus(sub, args.ingest_docs, args.doc_kb, seed=1)
            r = run_stage(
                "ingest", str(sub), str(work / "index"), "fast", str(args.workers), *common
            )
            print(
                f"full ingest (fast embedder, Chroma, {args.workers} worker(s)): {r['documents']} docs, {r['chunks']} chunks in "
                f"{r['seconds']}s = {r['docs_per_s']} docs/s, {r['chunks_per_s']} chunks/s, peak RSS {r['peak_rss_mb']} MB"
            )
            print(
                f"re-ingest unchanged: {r['reingest_seconds']}s, {r['reingest_unchanged']} files unchanged, "
                f"{r['reingest_embedded']} chunks embedded"
            )
        if args.scale_mb > 0:
            run_scale(work, args.scale_mb, args.scale_files, args.chunk_mb, common)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
