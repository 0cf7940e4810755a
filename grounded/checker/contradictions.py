"""Negation, number, date, unit and name mismatches between a claim and the evidence it aligns with."""

from __future__ import annotations

import re
from collections.abc import Sequence

from grounded.checker.context import Bag, Context
from grounded.text import (
    NEGATIONS,
    Token,
    content,
    fold,
    is_date_like,
    is_negation,
    is_numeric,
    split_sentences,
    stem,
    tokens_of,
)
from grounded.types import Reason

# A mismatch (number, date, unit, name, negation) blocks when the evidence window it was found in
# covers at least this share of the claim's other content words (the "alignment"); below it, the
# window may be the wrong one (a long page in claim mode) and the mismatch only lowers the score
# (reason `possible_mismatch`, not blocking). Names differ more often by paraphrase: a higher bar.
ALIGN_MIN: dict[str, float] = {"qa": 0.0, "claim": 0.75}
ENTITY_ALIGN_MIN: float = 0.9
MISMATCH_CODES: tuple[str, ...] = (
    "negation_mismatch",
    "number_mismatch",
    "date_mismatch",
    "unit_mismatch",
    "entity_mismatch",
)

# Units whose swap for another of the same kind changes a quantity ("412 metres" / "412 feet").
UNIT_KINDS: dict[str, str] = {
    **dict.fromkeys(
        "metre meter kilometre kilometer km centimetre centimeter cm millimetre mm mile "
        "foot feet inch yard".split(),
        "length",
    ),
    **dict.fromkeys("kilogram kg gram pound lb ton tonne ounce".split(), "mass"),
    **dict.fromkeys("second minute hour day week month year decade century".split(), "time"),
    **dict.fromkeys("dollar euro pound yen franc rupee cent".split(), "money"),
    **dict.fromkeys("percent acre hectare litre liter gallon".split(), "other"),
}
# "not only ..." and "not until ..." do not negate what follows.
_NOT_NEGATING: frozenset[str] = frozenset({"only", "just", "merely", "least", "until", "unlike"})
_SCOPE_BREAK = re.compile(
    r"[,;:()]|\b(?:and|but|while|whereas|which|who|although|though|because)\b", re.IGNORECASE
)
_NEG_HINT = re.compile("|".join(sorted(NEGATIONS - {"n't"})) + r"|n['’]t", re.IGNORECASE)
# Content words after a negation cue that make up its scope.
NEG_SCOPE = 2


def negation_scopes(text: str) -> list[tuple[str, ...]]:
    """For each negation cue of `text`, the stems of the next NEG_SCOPE content words in its clause.

    Two cues with no content word between them ("are not also not allowed") cancel out.
    """
    folded = fold(text)
    toks = tokens_of(text)
    out: list[tuple[str, ...]] = []
    consumed: set[int] = set()
    for i, tok in enumerate(toks):
        if (
            i in consumed
            or not is_negation(tok)
            or (i + 1 < len(toks) and toks[i + 1].text.lower() in _NOT_NEGATING)
        ):
            continue
        scope: list[str] = []
        cues = 1
        end = tok.start + len(tok.text)
        for j in range(i + 1, len(toks)):
            nxt = toks[j]
            if is_negation(nxt):
                if scope:
                    break
                cues += 1
                consumed.add(j)
                continue
            # a clause break ends the scope once it holds a word ("not, by their account, towed")
            if scope and _SCOPE_BREAK.search(folded, end, nxt.start + len(nxt.text)):
                break
            end = nxt.start + len(nxt.text)
            if content([nxt]):
                scope.append(nxt.stem)
                if len(scope) >= NEG_SCOPE:
                    break
        if scope and cues % 2 == 1:
            out.append(tuple(scope))
    return out


def negation_conflict(claim: str, evidence: str) -> str | None:
    """Why the claim and the evidence disagree on a negation, or None.

    A negation counts when the first word it scopes over is in the other text and the other text
    negates none of its scope: "are allowed" / "are not allowed" conflict, "not only" does not.
    """
    if not (_NEG_HINT.search(claim) or _NEG_HINT.search(evidence)):
        return None
    c_scopes, e_scopes = negation_scopes(claim), negation_scopes(evidence)
    if not c_scopes and not e_scopes:
        return None
    c_stems = {t.stem for t in tokens_of(claim)}
    e_stems = {t.stem for t in tokens_of(evidence)}
    for sc in c_scopes:
        if sc[0] in e_stems and not any(set(sc) & set(se) for se in e_scopes):
            return f"the answer negates what the evidence states ({sc[0]!r})"
    for se in e_scopes:
        if se[0] in c_stems and not any(set(se) & set(sc) for sc in c_scopes):
            return f"the evidence negates what the answer states ({se[0]!r})"
    return None


def _number_units(tokens: Sequence[Token]) -> set[tuple[float, str]]:
    """(value, unit stem) for each number directly followed by a unit word."""
    out = set()
    for tok, nxt in zip(tokens, tokens[1:], strict=False):
        unit = stem(nxt.text) if nxt.text.lower() != "feet" else "feet"
        if tok.number is not None and unit in UNIT_KINDS:
            out.add((round(tok.number, 6), unit))
    return out


def contradictions(
    ctx: Context, absent_numbers: Sequence[Token], missing_ents: Sequence[Token]
) -> tuple[list[Reason], dict[str, float]]:
    """Negation, number, date, unit and name mismatches with the evidence window the claim aligns
    with (the one covering most of its other content words). A mismatch blocks when that window
    covers at least ALIGN_MIN of the claim (ENTITY_ALIGN_MIN for names), else it is reported as
    `possible_mismatch`; either way its signal (0.5 + 0.5 * alignment) lowers the score."""
    mode = "claim" if ctx.answer_only else "qa"
    signals = dict.fromkeys(
        ("negation", "number_mismatch", "date_mismatch", "unit_mismatch", "entity_mismatch"), 0.0
    )
    reasons: list[Reason] = []
    statement = content(tokens_of(ctx.statement))
    # what the claim says besides the facts compared (numbers and units): aligns it with a window
    anchor = [t for t in statement if not is_numeric(t) and t.stem not in UNIT_KINDS]

    def report(code: str, signal: str, align: float, min_align: float, message: str) -> None:
        signals[signal] = max(signals[signal], 0.5 + 0.5 * align)
        if align >= min_align:
            reasons.append(Reason(code, message))
        else:
            reasons.append(
                Reason(
                    "possible_mismatch",
                    f"{code} in a passage matching {align:.0%} of the claim: {message}",
                )
            )

    ranked = ctx.ranked_windows(anchor, k=len(ctx.windows))
    align, text = (ranked[0][0], ranked[0][1]) if ranked else (1.0, " ".join(ctx.support_texts))
    if absent_numbers:
        # among the best-aligned windows, the shortest that gives numbers to compare with
        wbag = next(
            (bag for c, _, bag in ranked if c >= align - 1e-9 and (bag.numbers or bag.months)),
            ranked[0][2] if ranked else ctx.support_bag,
        )
    for tok in absent_numbers:
        date = is_date_like(tok)
        same = sorted(wbag.dates if date else wbag.numbers - wbag.dates)
        if same:
            code = "date_mismatch" if date else "number_mismatch"
            report(
                code,
                code,
                align,
                ALIGN_MIN[mode],
                f"the answer says {tok.text} where the evidence says {', '.join(f'{v:g}' for v in same[:3])}",
            )
        elif wbag.numbers or wbag.months or wbag.raw_numbers:
            report(
                "number_mismatch",
                "number_mismatch",
                align,
                ALIGN_MIN[mode],
                f"answer number {tok.text} not in the evidence, which gives other numbers",
            )
        else:
            reasons.append(
                Reason("number_not_found", f"answer number {tok.text} not in the evidence")
            )
    claim_units = _number_units(ctx.answer_tokens)
    if claim_units:
        support_units = set().union(*(_number_units(tokens_of(t)) for t in ctx.support_texts))
        for value, unit in sorted(claim_units - support_units):
            other = [
                u
                for v, u in sorted(support_units)
                if v == value and UNIT_KINDS[u] == UNIT_KINDS[unit]
            ]
            if other:
                report(
                    "unit_mismatch",
                    "unit_mismatch",
                    align,
                    ALIGN_MIN[mode],
                    f"the answer gives {value:g} {unit} where the evidence gives {value:g} {other[0]}",
                )
    if not ctx.english:
        return reasons, signals
    # negation only means something in a statement (not in 'no', or a short name)
    # (the answer alone: a question's own "not" is not the answer's claim)
    if len(ctx.answer_tokens) >= (4 if ctx.answer_only else 6) and not ctx.is_yes_no:
        own = ctx.ranked_windows([t for t in content(ctx.answer_tokens) if not is_numeric(t)], k=1)
        n_align, n_text = (own[0][0], own[0][1]) if own else (align, text)
        why = negation_conflict(ctx.pair.answer, n_text) if n_align >= 0.5 else None
        if why is not None:
            report("negation_mismatch", "negation", n_align, ALIGN_MIN[mode], why)
    if missing_ents:
        rest = [t for t in anchor if t not in missing_ents]
        ent_window = ctx.ranked_windows(rest, k=1)
        if ent_window:
            e_align, e_text = ent_window[0][0], ent_window[0][1]
            mine = Bag(statement)
            others = [
                t
                for s in split_sentences(e_text)
                for t in content(tokens_of(s)[1:])
                if t.capital and not is_numeric(t) and not mine.has(t)
            ]
            if others:
                report(
                    "entity_mismatch",
                    "entity_mismatch",
                    e_align,
                    ENTITY_ALIGN_MIN,
                    f"the answer names {', '.join(t.text for t in missing_ents[:3])} where the evidence names "
                    f"{', '.join(dict.fromkeys(t.text for t in others[:3]))}",
                )
    return reasons, signals
