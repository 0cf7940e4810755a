"""The public faithfulness benchmarks' files, each read into labelled `Example`s.

- HaluEval QA (JSON lines `{knowledge, question, right_answer, hallucinated_answer}`): every
  record gives one supported answer (right_answer) and one unsupported (hallucinated_answer),
  with `knowledge` as the context.
- WiCE claims (JSON lines `{label, claim, evidence: [sentences], supporting_sentences}`): the
  claim against *all* its evidence sentences (the cited web page). `supporting_sentences` is
  never used: for not_supported claims it is empty, so it would leak the label.
  supported -> True, not_supported -> False, partially_supported -> label None, subset "partial"
  (reported separately, not in the main metric).
- SQuAD v1.x JSON: each human answer (the first of its answers) is supported by its paragraph.
  Negatives are built by answer swapping: a question paired with the answer of another question
  from a *different* paragraph of the same article, kept only when that answer's text does not
  occur in this paragraph (a plausible-looking but unsupported answer). One negative per
  question, chosen deterministically. `negatives="same-paragraph"` builds the harder negatives
  instead: the answer of ANOTHER question of the SAME paragraph (so it is in the context and
  lexical support passes) whose text differs from, and shares no word or character span with,
  every human answer of this question: the answer is in the evidence but does not answer the
  question. `negatives="none"` yields the human pairs only.
- Plain JSONL `{context|contexts, question, answer, label}`: label true/false, 1/0, or the strings
  supported / unsupported / not_supported / hallucinated / faithful.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grounded.errors import CheckError
from grounded.jsonl import numbered_rows
from grounded.qaset import squad_articles
from grounded.types import content_hash

FORMATS = ("halueval", "wice", "squad", "jsonl")
SQUAD_NEGATIVES = ("other-paragraph", "same-paragraph", "none")


@dataclass(frozen=True, slots=True)
class Example:
    """One labelled faithfulness example: is `answer` supported by `contexts`?"""

    id: str
    contexts: tuple[str, ...]
    answer: str
    question: str = ""
    label: bool | None = None  # True supported, False unsupported, None: not in the main metric
    subset: str = ""  # e.g. "partial" for WiCE partially_supported
    metadata: dict[str, Any] = field(default_factory=dict)


def read_examples(path: str | Path, fmt: str, *, negatives: str | None = None) -> Iterator[Example]:
    """Examples from a benchmark file in one of FORMATS.

    negatives: for SQuAD, one of SQUAD_NEGATIVES (default "other-paragraph"); other formats
    carry their own negatives and accept only None.
    """
    readers = {
        "halueval": read_halueval,
        "wice": read_wice,
        "squad": squad_examples,
        "jsonl": read_plain,
    }
    if fmt not in readers:
        raise CheckError(f"unknown format {fmt!r}", hint=f"use one of {', '.join(FORMATS)}")
    if negatives is not None and fmt != "squad":
        raise CheckError(f"--negatives applies to SQuAD only, not {fmt!r}")
    path = Path(path)
    if not path.is_file():
        raise CheckError(f"no such file: {path}")
    if fmt == "squad":
        return squad_examples(path, negatives=negatives or "other-paragraph")
    return readers[fmt](path)


def _json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    return numbered_rows(path, error=CheckError)


def _need(row: dict[str, Any], keys: tuple[str, ...], where: str) -> None:
    missing = [k for k in keys if k not in row]
    if missing:
        raise CheckError(f"{where}: missing field(s) {', '.join(missing)}")


def read_halueval(path: Path) -> Iterator[Example]:
    for lineno, row in _json_lines(path):
        _need(
            row,
            ("knowledge", "question", "right_answer", "hallucinated_answer"),
            f"{path}:{lineno}",
        )
        ctx = (str(row["knowledge"]),)
        q = str(row["question"])
        yield Example(f"halueval-{lineno}-right", ctx, str(row["right_answer"]), q, True)
        yield Example(
            f"halueval-{lineno}-hallucinated", ctx, str(row["hallucinated_answer"]), q, False
        )


_WICE_LABELS = {"supported": True, "not_supported": False, "partially_supported": None}


def read_wice(path: Path) -> Iterator[Example]:
    for lineno, row in _json_lines(path):
        _need(row, ("claim", "evidence", "label"), f"{path}:{lineno}")
        label = str(row["label"])
        if label not in _WICE_LABELS:
            raise CheckError(f"{path}:{lineno}: unknown WiCE label {label!r}")
        sentences = [str(s) for s in row["evidence"]]
        yield Example(
            f"wice-{lineno}",
            ("\n".join(sentences),),
            str(row["claim"]),
            "",
            _WICE_LABELS[label],
            subset="partial" if label == "partially_supported" else "",
            metadata={"label": label},
        )


def squad_examples(path: Path, *, negatives: str = "other-paragraph") -> Iterator[Example]:
    """Each human answer as supported by its paragraph, plus one negative per question (see above)."""
    if negatives not in SQUAD_NEGATIVES:
        raise CheckError(
            f"unknown SQuAD negatives {negatives!r}",
            hint=f"use one of {', '.join(SQUAD_NEGATIVES)}",
        )
    for article in squad_articles(path):
        paragraphs = article.get("paragraphs") or []
        answers = [
            (pi, qa["answers"][0]["text"])
            for pi, para in enumerate(paragraphs)
            for qa in para.get("qas") or ()
            if qa.get("answers")
        ]
        for pi, para in enumerate(paragraphs):
            context = str(para.get("context", ""))
            for qa in para.get("qas") or ():
                if not qa.get("answers"):
                    continue  # SQuAD 2.0 unanswerable questions have no human answer
                question = str(qa["question"])
                qid = str(qa.get("id") or content_hash(question))
                yield Example(
                    f"squad-{qid}", (context,), str(qa["answers"][0]["text"]), question, True
                )
                if negatives == "other-paragraph":
                    negative = _swap_answer(answers, pi, context, qid)
                    if negative is not None:
                        yield Example(
                            f"squad-{qid}-swapped",
                            (context,),
                            negative,
                            question,
                            False,
                            metadata={"negative": "answer_swap"},
                        )
                elif negatives == "same-paragraph":
                    negative = _same_paragraph_answer(para, qa, qid)
                    if negative is not None:
                        yield Example(
                            f"squad-{qid}-same-paragraph",
                            (context,),
                            negative,
                            question,
                            False,
                            metadata={"negative": "same_paragraph_swap"},
                        )


def _swap_answer(answers: list[tuple[int, str]], pi: int, context: str, qid: str) -> str | None:
    """A deterministic answer from another paragraph whose text is not in this one."""
    if not answers:
        return None
    start = int(content_hash(qid), 16) % len(answers)
    low = context.lower()
    for k in range(len(answers)):
        other_pi, text = answers[(start + k) % len(answers)]
        if other_pi != pi and text.strip() and text.lower() not in low:
            return text
    return None


_WORDS = re.compile(r"\w+")
_SMALL = frozenset("a an the of in on at to for by with and or is was are were be as from".split())


def _words(text: str) -> set[str]:
    return {w for w in _WORDS.findall(text.lower()) if w not in _SMALL}


def _same_paragraph_answer(para: dict[str, Any], qa: dict[str, Any], qid: str) -> str | None:
    """A deterministic answer of another question of this paragraph that cannot be a right one.

    Rejected candidates: any that shares a word (stopwords aside), contains or is contained in,
    or overlaps the character span of ANY human answer of this question.
    """
    mine = [a for a in qa.get("answers") or () if str(a.get("text", "")).strip()]
    texts = [str(a["text"]).lower() for a in mine]
    spans = [
        (int(a.get("answer_start", -1)), int(a.get("answer_start", -1)) + len(str(a["text"])))
        for a in mine
    ]
    words = set().union(*(_words(t) for t in texts)) if texts else set()
    cands: list[str] = []
    for other in para.get("qas") or ():
        if other is qa or not other.get("answers"):
            continue
        ans = other["answers"][0]
        text = str(ans.get("text", "")).strip()
        low = text.lower()
        if not text or any(low in t or t in low for t in texts) or _words(text) & words:
            continue
        start = int(ans.get("answer_start", -1))
        end = start + len(text)
        if start >= 0 and any(s >= 0 and start < e and s < end for s, e in spans):
            continue
        if text not in cands:
            cands.append(text)
    if not cands:
        return None
    return cands[int(content_hash(qid), 16) % len(cands)]


_PLAIN_TRUE = {"true", "1", "supported", "faithful", "yes", "correct", "entailment"}
_PLAIN_FALSE = {
    "false",
    "0",
    "unsupported",
    "not_supported",
    "hallucinated",
    "no",
    "incorrect",
    "unfaithful",
    "contradiction",
}


def read_plain(path: Path) -> Iterator[Example]:
    for lineno, row in _json_lines(path):
        where = f"{path}:{lineno}"
        _need(row, ("answer", "label"), where)
        if "contexts" in row:
            contexts = tuple(str(c) for c in row["contexts"])
        elif "context" in row:
            contexts = (str(row["context"]),)
        else:
            raise CheckError(f"{where}: missing field context (or contexts)")
        raw = row["label"]
        key = str(raw).strip().lower()
        if isinstance(raw, bool):
            label: bool | None = raw
        elif key in _PLAIN_TRUE:
            label = True
        elif key in _PLAIN_FALSE:
            label = False
        else:
            raise CheckError(f"{where}: label {raw!r} is not supported/unsupported")
        yield Example(
            str(row.get("id") or f"row-{lineno}"),
            contexts,
            str(row["answer"]),
            str(row.get("question") or ""),
            label,
        )
