"""The pipeline: runs the checks on each pair and turns their signals into a calibrated verdict."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Unpack

from grounded.checker.builtin import BUILTIN_CHECKS
from grounded.checker.calibration import (
    CALIBRATION,
    DEFAULT_THRESHOLDS,
    FIT_NEUTRAL,
    calibration_for,
)
from grounded.checker.context import (
    Check,
    CheckResult,
    Context,
    ModelCheck,
    says_not_in_sources,
    short,
)
from grounded.checker.judge import JudgeCheck
from grounded.checker.registry import blocking_codes, checks
from grounded.errors import CheckError
from grounded.options import CheckOptions, CheckSettings
from grounded.types import Chunk, QAPair, Reason, Verdict

# What a non-English pair skips (English word lists); reported as `checks_skipped_language`.
SKIPPED_LANGUAGE: dict[str, str] = {
    "qa": "not English: skipped the question-word, question-answer fit, negation and name checks (English word lists)",
    "claim": "not English: skipped the negation and name checks (English word lists)",
}
# How a model-backed check picks its pairs: every pair, those near the threshold, or those the
# cheap checks have not already rejected (its signals at their best case still reach the threshold).
MODEL_POLICIES: tuple[str, ...] = ("all", "borderline", "keepable")
# Reasons that reject a pair whatever its score: the built-in checks' (a registered check adds its
# own to the checkers `default_checker` builds).
BLOCKING: frozenset[str] = blocking_codes(BUILTIN_CHECKS)


class PipelineChecker:
    """Runs the checks on each pair and turns their signals into a calibrated verdict.

    Mode "qa" reads the answer with its question; mode "claim" (options.answer_only) checks a
    standalone statement. Each has its own calibration and default threshold (options.threshold
    overrides it). checks: the lexical checks, run on every pair in order. models: the
    model-backed checks (ModelCheck) with their policy ("all", "borderline": only when the score
    is within the check's band of the threshold, or "keepable": pairs not already rejected), in
    order, each batched over the pairs it selects. judge: called on the pairs whose score is
    within options.judge_band of the threshold (options.judge_mode "borderline") or on all.
    blocking: the reason codes that reject a pair whatever its score.
    Refusals (kind "unanswerable", or an answer saying the documents do not tell) are not
    scored by the calibration: they pass unless the sources answer the question
    (`answerable_in_sources`); their score is 1 - the question's best window coverage.
    """

    def __init__(
        self,
        checks: Sequence[Check] = (),
        *,
        models: Sequence[tuple[ModelCheck, str]] = (),
        judge: JudgeCheck | None = None,
        options: CheckOptions | None = None,
        blocking: frozenset[str] = BLOCKING,
    ) -> None:
        options = options or CheckOptions()
        for model, policy in models:
            if policy not in MODEL_POLICIES:
                raise CheckError(
                    f"{model.name}: policy must be one of {', '.join(MODEL_POLICIES)}, not {policy!r}"
                )
        if options.judge_mode not in ("borderline", "all"):
            raise CheckError(f"judge mode must be borderline or all, not {options.judge_mode!r}")
        self.mode = options.mode
        threshold = (
            DEFAULT_THRESHOLDS[self.mode] if options.threshold is None else float(options.threshold)
        )
        if not 0.0 <= threshold <= 1.0:
            raise CheckError(f"threshold must be in [0, 1], not {threshold}")
        self.threshold = threshold
        self.options = options
        # the lexical checks in the order they run, on every pair
        self.checks: list[Check] = list(checks)
        # the model-backed checks in the order they run, each with its policy
        self.models: list[tuple[ModelCheck, str]] = list(models)
        self.judge = judge
        self.judge_mode = options.judge_mode
        self.judge_band = options.judge_band
        self.blocking = blocking
        self.answer_only = options.answer_only

    def get(self, name: str) -> Any:
        """The check (lexical, model-backed or the judge) registered as `name`; None if it does not run."""
        found = [*self.checks, *(m for m, _ in self.models), self.judge]
        return next((c for c in found if c is not None and c.name == name), None)

    # The built-in checks by name, as the checker had them before the registry.
    quotes = property(lambda self: self.get("quotes"))
    support = property(lambda self: self.get("support"))
    question = property(lambda self: self.get("question"))
    fit = property(lambda self: self.get("fit"))
    instructions = property(lambda self: self.get("instructions"))
    semantic = property(lambda self: self.get("semantic"))

    def check(self, pair: QAPair, sources: Sequence[Chunk]) -> Verdict:
        return self.check_many([(pair, sources)])[0]

    async def acheck(self, pair: QAPair, sources: Sequence[Chunk]) -> Verdict:
        """`check` for an event loop: the judge's call (when it runs) is awaited, never blocked on."""
        ctx, partial = self.score_batch([(pair, sources)])[0]
        judged = await self.judge.arun(ctx) if self.wants_judge(partial[2]) and self.judge else None
        return self.finish(ctx, *partial, judged=judged)

    def check_many(self, items: Sequence[tuple[QAPair, Sequence[Chunk]]]) -> list[Verdict]:
        """Check a batch: the lexical parts per pair, each model-backed check's calls batched."""
        return [self.finish(ctx, *part) for ctx, part in self.score_batch(items)]

    def score_batch(
        self, items: Sequence[tuple[QAPair, Sequence[Chunk]]]
    ) -> list[tuple[Context, tuple[list[Reason], dict[str, float], float]]]:
        """Each pair's context with its reasons, signals and score before the judge."""
        ctxs = [Context(p, s, answer_only=self.answer_only) for p, s in items]
        partial = [self.lexical(c) for c in ctxs]
        for model, policy in self.models:
            need = [
                i
                for i, (reasons, _, score) in enumerate(partial)
                if self._wants_model(model, policy, ctxs[i], reasons, score)
            ]
            if not need:
                continue
            model.prefetch([ctxs[i] for i in need])
            for i in need:
                reasons, signals, _ = partial[i]
                out = model.run(ctxs[i])
                reasons.extend(out.reasons)
                signals.update(out.signals)
                if model.signal in signals:
                    partial[i] = (
                        reasons,
                        signals,
                        calibration_for(self.mode, signals).score(signals),
                    )
        return list(zip(ctxs, partial, strict=True))

    def _wants_model(
        self, model: ModelCheck, policy: str, ctx: Context, reasons: Sequence[Reason], score: float
    ) -> bool:
        if ctx.is_refusal and not ctx.answer_only:
            return False
        if policy == "all":
            return True
        if self.mode not in model.modes:
            return False
        if policy == "keepable":
            # its signals start at their best case (`neutral`): a blocked pair, or one whose score
            # is below the threshold even so, is rejected whatever the check would find
            return score >= self.threshold - model.band and not any(
                r.code in self.blocking for r in reasons
            )
        # borderline: only near the threshold, and only where the fit gave the signal a real weight
        cal = CALIBRATION.get(f"{self.mode}+{model.signal}")
        if cal is None or abs(cal.weights[cal.features.index(model.signal)]) < model.min_weight:
            return False
        return abs(score - self.threshold) <= model.band

    def lexical(self, ctx: Context) -> tuple[list[Reason], dict[str, float], float]:
        """A pair's reasons, signals and score from the cheap checks (no model, no judge)."""
        reasons: list[Reason] = []
        signals: dict[str, float] = {}
        for chk in self.checks:
            out = chk.run(ctx)
            reasons.extend(out.reasons)
            signals.update(out.signals)
        if not ctx.english:
            reasons.append(Reason("checks_skipped_language", SKIPPED_LANGUAGE[self.mode]))
        if ctx.is_refusal and not ctx.answer_only:
            answered = self._answered_by_model(ctx)
            if answered is not None and not any(r.code == "answerable_in_sources" for r in reasons):
                reasons.append(answered)
            return reasons, signals, 1.0 - signals.get("question_coverage", 0.0)
        # a model check's best case first (it may still run), then the fit checks' neutral values
        for model, _ in self.models:
            if self.mode in model.modes:
                for k, v in model.neutral.items():
                    signals.setdefault(k, v)
        if self.mode == "qa":
            for k, v in FIT_NEUTRAL.items():
                signals.setdefault(k, v)
        return reasons, signals, CALIBRATION[self.mode].score(signals)

    def _answered_by_model(self, ctx: Context) -> Reason | None:
        """For an unanswerable pair, `answerable_in_sources` when the model's own non-refusal answer
        (the pair's answer, or metadata "model_answer") passes the checks as a factoid pair."""
        proposed = ctx.pair.answer
        if says_not_in_sources(proposed):
            proposed = str(ctx.pair.metadata.get("model_answer") or "")
        if not proposed.strip() or says_not_in_sources(proposed):
            return None
        sub = Context(replace(ctx.pair, answer=proposed, kind="factoid"), ctx.sources)
        reasons, _, score = self.lexical(sub)
        if score < self.threshold or any(r.code in self.blocking for r in reasons):
            return None
        return Reason(
            "answerable_in_sources",
            f"the sources support the model's own answer {short(proposed, 40)!r}",
        )

    def wants_judge(self, score: float) -> bool:
        """Whether the judge reads a pair with this score (there is one, and the pair is in its band)."""
        return self.judge is not None and (
            self.judge_mode == "all" or abs(score - self.threshold) <= self.judge_band
        )

    def finish(
        self,
        ctx: Context,
        reasons: list[Reason],
        signals: dict[str, float],
        score: float,
        *,
        judged: CheckResult | None = None,
    ) -> Verdict:
        """The verdict from `score_batch`'s partial result (the judge's, when given, or it is called)."""
        if judged is None and self.judge is not None and self.wants_judge(score):
            judged = self.judge.run(ctx)
        if judged is not None:
            out = judged
            reasons.extend(out.reasons)
            signals.update(out.signals)
            if "judge" in out.signals:
                # the judge's share of supported claims replaces the score when it answered
                score = 0.5 * score + 0.5 * out.signals["judge"]
        signals["score"] = score
        blocked = [r for r in reasons if r.code in self.blocking]
        refusal = ctx.is_refusal and not ctx.answer_only
        supported = (refusal or score >= self.threshold) and not blocked
        if score < self.threshold and not refusal:
            reasons.append(
                Reason(
                    "low_support", f"support score {score:.2f} below threshold {self.threshold:.2f}"
                )
            )
        return Verdict(
            supported=supported,
            score=round(score, 4),
            reasons=tuple(reasons),
            signals={k: round(float(v), 4) for k, v in signals.items()},
        )


def default_checker(
    options: CheckOptions | None = None, **settings: Unpack[CheckSettings]
) -> PipelineChecker:
    """The registered checks with the documented defaults; every default can be overridden.

    options: a CheckOptions; keywords override its fields (`default_checker(threshold=0.5)`).
    threshold: the minimum calibrated score (default: the mode's fitted threshold).
    semantic: when MiniLM similarity runs: "borderline" (default), "all" or "off".
    judge: a litellm model string or an object with `complete(messages, **kw)` (e.g. grounded.llm.LLM);
    a model string gets an LLM whose calls are cached in `judge_cache` (default_judge_cache()).
    judge_mode: "borderline" (pairs within judge_band of the threshold) or "all".
    answer_only: the answer is a standalone claim (no question to read it with), as in WiCE.
    question_checks: False skips the question checks (not_a_question, answer_in_question,
    question_not_about_evidence; benchmarks whose questions are not ours).
    fit_checks: False skips the question-answer fit checks (QAFitCheck: answer type, vague
    question, question terms around the answer); they never run on claims (answer_only).
    answer_types: how the spaCy answer-type check (AnswerTypeCheck) picks pairs: "keepable"
    (default: those the cheap checks have not rejected), "all", or "off"; with the fit checks only.
    reader: the same policies for the span reader (ReaderCheck: signals rd_score, rd_margin),
    with the fit checks only.
    verifier: the same policies for the learned verifier (VerifierCheck, signal `ver`), in qa mode,
    when its weights ship (grounded.checker.verifier.Verifier.available()).
    read: an LLM that reads each pair (LLMReadCheck: its own answer to the question and a Yes/No
    from token probabilities; signals llm_yes, llm_agree), a litellm model string or an object
    with `complete(messages, **kw)`; its calls are cached in `judge_cache`. read_mode: the
    policies above ("keepable" by default), in qa mode.
    policies: a registered check's policy by name ("off" leaves it out).
    """
    options = replace(options or CheckOptions(), **settings)
    specs = list(checks().values())
    lexical: list[Check] = []
    models: list[tuple[ModelCheck, str]] = []
    judge = None
    for spec in specs:
        policy = spec.policy_for(options)
        if policy == "off":
            continue
        built = spec.build(options)
        if built is None:
            continue
        if spec.kind == "model":
            models.append((built, policy))
        elif spec.kind == "judge":
            judge = built
        else:
            lexical.append(built)
    return PipelineChecker(
        lexical, models=models, judge=judge, options=options, blocking=blocking_codes(specs)
    )
