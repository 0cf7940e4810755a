"""Build the candidate pairs of benchmarks/data/generated_pairs.jsonl (before labelling).

    .venv/bin/python benchmarks/make_generated_set.py --work /tmp/genset [--stage all]

Stages (each resumable, `grounded generate` caches every call):
  docs      one markdown document per article of SQuAD v1.1 dev part a (paragraphs separated
            by blank lines) under WORK/docs
  ingest    `grounded ingest WORK/docs --index WORK/index --embedder fast`
  generate  `grounded generate --no-check` with the bundled model (grounded-local/smollm2) and the
            built-in prompts: factoid (seeds 0, 3, 4, 5), multi_hop (seed 1), unanswerable (seed 2)
  collect   every parsed pair with a question and an answer, from qa.jsonl and rejected.jsonl,
            as {id, doc_title, passage, question, answer, evidence, prompt, source} in
            WORK/candidates.jsonl
  human     SQuAD human pairs of a few articles (good) and same-paragraph swaps (bad) in
            WORK/human.jsonl

`--prompt-variant PATH` generates with a factoid variant on the same passages (seed 0) into
WORK/variants/NAME instead. Data: /work/shared/bench/squad (CC BY-SA 4.0).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

SQUAD = Path("/work/shared/bench/squad/dev-v1.1-part-a.json")
GROUNDED = str(Path(sys.executable).with_name("grounded"))
# (run name = folder under WORK/gen, prompt, seed, kept pairs wanted, call bound): with --no-check
# every parsed pair is kept. Raising a bound extends a run (cached calls, same seeded passage
# order); a second factoid seed lets two bundled-model processes share a slow machine.
RUNS = [
    ("factoid", "factoid", 0, 300, 100),
    ("multi_hop", "multi_hop", 1, 45, 20),
    ("unanswerable", "unanswerable", 2, 45, 20),
    ("factoid-s3", "factoid", 3, 180, 60),
    ("factoid-s4", "factoid", 4, 180, 60),
    ("factoid-s5", "factoid", 5, 180, 60),
]
HUMAN_ARTICLES = [
    "Warsaw",
    "Oxygen",
    "Black_Death",
    "Geology",
    "Harvard_University",
    "Prime_number",
    "Construction",
    "Force",
]


def articles() -> list[dict[str, Any]]:
    """The SQuAD articles of part a."""
    return json.loads(SQUAD.read_text(encoding="utf-8"))["data"]


def write_docs(folder: Path) -> None:
    """One markdown document per article: a title heading, paragraphs separated by blank lines."""
    folder.mkdir(parents=True, exist_ok=True)
    for art in articles():
        title = art["title"].replace("_", " ")
        body = "\n\n".join(p["context"].strip() for p in art["paragraphs"])
        (folder / f"{art['title']}.md").write_text(f"# {title}\n\n{body}\n", encoding="utf-8")


def ingest(work: Path) -> None:
    """Index the documents with the fast embedder."""
    subprocess.run(
        [
            GROUNDED,
            "ingest",
            str(work / "docs"),
            "--index",
            str(work / "index"),
            "--embedder",
            "fast",
        ],
        check=True,
    )


def generate(work: Path, *, prompt: str, seed: int, n: int, max_calls: int, out: Path) -> None:
    """One `grounded generate --no-check` run with the bundled model."""
    cmd = [
        GROUNDED,
        "generate",
        "--index",
        str(work / "index"),
        "--out",
        str(out),
        "--no-check",
        "--model",
        "grounded-local/smollm2",
        "--prompt",
        prompt,
        "--seed",
        str(seed),
        "-n",
        str(n),
        "--max-calls",
        str(max_calls),
        "--concurrency",
        "1",
        "--json",
    ]
    # llama.cpp threads spin at barriers: on a loaded machine one thread is several times faster
    env = {**os.environ, "GROUNDED_LOCAL_THREADS": os.environ.get("GROUNDED_LOCAL_THREADS", "1")}
    subprocess.run(cmd, check=False, env=env)  # exit 10 (calls that yielded nothing) is expected


def _chunk_texts(work: Path) -> dict[str, tuple[str, str]]:
    """chunk id -> (doc title, chunk text), read from the index."""
    from grounded.index import open_index

    index = open_index(str(work / "index"))
    titles = {d["doc_id"]: d.get("title") or "" for d in index.documents()}
    return {c.id: (titles.get(c.doc_id) or c.title or "", c.text) for c in index.chunks()}


def _rows(out: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name in ("qa.jsonl", "rejected.jsonl"):
        path = out / name
        if path.exists():
            rows += [
                json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line
            ]
    return rows


def _pair_of(row: dict[str, Any]) -> dict[str, Any] | None:
    """The pair of a qa.jsonl row or a rejected.jsonl row (None for a reply with no pair)."""
    pair = row.get("pair") if "pair" in row else row
    if not isinstance(pair, dict) or not pair.get("question") or not pair.get("answer"):
        return None
    return pair


def _title(chunks: dict[str, tuple[str, str]], pair: dict[str, Any]) -> tuple[str, str, str]:
    ids = pair.get("chunk_ids") or [e.get("chunk_id") for e in pair.get("evidence") or []]
    ids = [i for i in ids if i in chunks]
    texts = [chunks[i][1] for i in dict.fromkeys(ids)]
    title = chunks[ids[0]][0] if ids else ""
    quote = " ... ".join(e.get("text", "") for e in pair.get("evidence") or [])
    return title, "\n\n".join(texts), quote


def collect(work: Path, outs: list[tuple[str, Path]], dest: Path) -> int:
    """Write every parsed candidate (kept or rejected) as a compact row; returns the count."""
    chunks = _chunk_texts(work)
    seen: set[str] = set()
    n = 0
    with dest.open("w", encoding="utf-8") as f:
        for prompt, out in outs:
            for row in _rows(out):
                pair = _pair_of(row)
                if pair is None:
                    continue
                title, passage, quote = _title(chunks, pair)
                if not passage:
                    continue
                key = hashlib.sha1(
                    f"{prompt}|{passage}|{pair['question']}|{pair['answer']}".encode()
                ).hexdigest()
                if key in seen:
                    continue
                seen.add(key)
                quote = quote or str(pair.get("quote") or "")
                f.write(
                    json.dumps(
                        {
                            "id": f"g-{key[:12]}",
                            "doc_title": title,
                            "passage": passage,
                            "question": pair["question"],
                            "answer": pair["answer"],
                            "evidence": quote,
                            "prompt": prompt,
                            "source": "smollm2",
                        },
                        ensure_ascii=False,
                    )
                    + "\n"
                )
                n += 1
    return n


def human(dest: Path, *, per_article: int = 19, seed: int = 0) -> int:
    """SQuAD human pairs (good) and same-paragraph answer swaps (bad) from a few articles."""
    rng = random.Random(seed)
    rows = []
    for art in articles():
        if art["title"] not in HUMAN_ARTICLES:
            continue
        paras = [
            p for p in art["paragraphs"] if len({q["answers"][0]["text"] for q in p["qas"]}) >= 2
        ]
        for p in rng.sample(paras, min(per_article, len(paras))):
            qas = rng.sample(p["qas"], 2)
            a, b = qas
            title = art["title"].replace("_", " ")
            base = {"doc_title": title, "passage": p["context"], "prompt": "squad"}
            rows.append(
                {
                    "id": f"h-{a['id']}",
                    **base,
                    "question": a["question"],
                    "answer": a["answers"][0]["text"],
                    "evidence": _sentence(p["context"], a),
                    "source": "squad_human",
                    "label": "good",
                    "category": "",
                    "reason": "SQuAD human question with its annotated answer",
                }
            )
            ta, tb = (x["answers"][0]["text"].strip().lower() for x in (a, b))
            if ta not in tb and tb not in ta:  # a swap that contains the answer still answers
                rows.append(
                    {
                        "id": f"s-{a['id']}",
                        **base,
                        "question": a["question"],
                        "answer": b["answers"][0]["text"],
                        "evidence": _sentence(p["context"], b),
                        "source": "squad_swap",
                        "label": "bad",
                        "category": "answer_not_answering",
                        "reason": "answer of another question on the same paragraph",
                    }
                )
    with dest.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return len(rows)


def _sentence(context: str, qa: dict[str, Any]) -> str:
    """The sentence(s) of the context holding the whole answer (the evidence quote)."""
    start = qa["answers"][0]["answer_start"]
    end = start + len(qa["answers"][0]["text"])
    # a boundary is end punctuation, space, capital: "2.7 billion" and most initials stay whole
    cuts = [
        0,
        *(m.end() for m in re.finditer(r"[.!?][\"')\]]*\s+(?=[A-Z])", context)),
        len(context),
    ]
    left = max(c for c in cuts if c <= start)
    right = min(c for c in cuts if c >= end)
    return context[left:right].strip()


def assemble(work: Path, dest: Path) -> int:
    """Labelled candidates (WORK/labels.jsonl: id, label, category, reason) plus the human rows."""
    labels = {
        r["id"]: r for r in map(json.loads, (work / "labels.jsonl").read_text().splitlines()) if r
    }
    rows = []
    for name in [
        "candidates.jsonl",
        *(
            f"variants/{v.name}/candidates.jsonl"
            for v in sorted((work / "variants").glob("*"))
            if v.is_dir()
        ),
    ]:
        path = work / name
        for row in map(
            json.loads, path.read_text(encoding="utf-8").splitlines() if path.exists() else []
        ):
            lab = labels.get(row["id"])
            if lab is not None:
                rows.append(
                    {
                        **row,
                        "label": lab["label"],
                        "category": lab.get("category", ""),
                        "reason": lab["reason"],
                    }
                )
    rows += [
        json.loads(line) for line in (work / "human.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    dest.parent.mkdir(parents=True, exist_ok=True)
    with dest.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return len(rows)


def main() -> None:
    """Run the stages."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--work", type=Path, default=Path("/tmp/genset"))
    ap.add_argument(
        "--stage",
        default="all",
        choices=["all", "docs", "ingest", "generate", "collect", "human", "assemble"],
    )
    ap.add_argument("--only", default=None, help="with --stage generate: one run of RUNS, by name")
    ap.add_argument("--prompt-variant", type=Path, default=None)
    ap.add_argument("--variant-calls", type=int, default=48)
    args = ap.parse_args()
    work: Path = args.work
    if args.stage == "generate" and args.only:
        name, prompt, seed, n, calls = next(r for r in RUNS if r[0] == args.only)
        generate(work, prompt=prompt, seed=seed, n=n, max_calls=calls, out=work / "gen" / name)
        return
    if args.prompt_variant:
        out = work / "variants" / args.prompt_variant.stem
        generate(
            work,
            prompt=str(args.prompt_variant),
            seed=0,
            n=3 * args.variant_calls,
            max_calls=args.variant_calls,
            out=out,
        )
        print(
            collect(work, [(args.prompt_variant.stem, out)], out / "candidates.jsonl"), "candidates"
        )
        return
    stages = (
        ["docs", "ingest", "generate", "collect", "human"] if args.stage == "all" else [args.stage]
    )
    outs = [(prompt, work / "gen" / name) for name, prompt, *_ in RUNS]
    for stage in stages:
        if stage == "docs":
            write_docs(work / "docs")
        elif stage == "ingest":
            ingest(work)
        elif stage == "generate":
            for name, prompt, seed, n, calls in RUNS:
                generate(
                    work, prompt=prompt, seed=seed, n=n, max_calls=calls, out=work / "gen" / name
                )
        elif stage == "collect":
            print(collect(work, outs, work / "candidates.jsonl"), "candidates")
        elif stage == "human":
            print(human(work / "human.jsonl"), "human rows")
        elif stage == "assemble":  # after labelling; not part of "all"
            print(assemble(work, Path(__file__).parent / "data" / "generated_pairs.jsonl"), "rows")


if __name__ == "__main__":
    main()
