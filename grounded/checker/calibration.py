"""The fitted calibration: logistic models over the checks' signals, shipped as package data.

One model per mode ("qa": an answer read with its question; "claim": a standalone statement), and
one per model-backed signal that may join it ("qa+sem"), each sign-constrained (SIGNS). Written by
`benchmarks/fit_checker.py --write` to grounded/checker/calibration.json, with the data sets and
halves it was fitted on; the figures it reached are in that file, not here."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Calibration:
    """score = sigmoid(bias + sum(weight * signal)) over `features`."""

    features: tuple[str, ...]
    weights: tuple[float, ...]
    bias: float

    def score(self, signals: Mapping[str, float]) -> float:
        z = self.bias + sum(
            w * float(signals.get(f, 0.0)) for f, w in zip(self.features, self.weights, strict=True)
        )
        return _sigmoid(z)


FEATURES: tuple[str, ...] = (
    "lex_cov",
    "lex_window",
    "ent_cov",
    "num_cov",
    "missing",
    "bigram_cov",
    "clause_min",
    "negation",
    "number_mismatch",
    "date_mismatch",
    "unit_mismatch",
    "entity_mismatch",
)
# Mode "qa" also reads the answer with its question (QAFitCheck, and spaCy's AnswerTypeCheck:
# type_agree, type_conflict, focus_near): these signals join the model.
QA_FEATURES: tuple[str, ...] = (
    *FEATURES,
    "type_ok",
    "type_match",
    "vague",
    "q_near",
    "q_near_sent",
    "q_near_tok",
    "q_sent_gap",
    "ans_in_q",
    "type_agree",
    "type_conflict",
    "focus_near",
    "rd_score",
    "rd_margin",
)
# Their values when the fit check did not run (no question, or it was switched off).
FIT_NEUTRAL: dict[str, float] = {
    "type_ok": 1.0,
    "type_match": 0.0,
    "vague": 0.0,
    "q_near": 1.0,
    "q_near_sent": 1.0,
    "q_near_tok": 1.0,
    "q_sent_gap": 0.0,
    "ans_in_q": 0.0,
    # the span reader's "no information" values (off, or the pair has nothing for it to read)
    "rd_score": 0.5,
    "rd_margin": 0.0,
}
# The sign each fitted weight is constrained to: support signals (+1) can only raise the score,
# mismatch signals (-1) can only lower it (benchmarks/fit_checker.py fits with these bounds).
SIGNS: dict[str, int] = {
    **dict.fromkeys(
        (
            "lex_cov",
            "lex_window",
            "ent_cov",
            "num_cov",
            "bigram_cov",
            "clause_min",
            "sem",
            "type_ok",
            "type_match",
            "q_near",
            "q_near_sent",
            "q_near_tok",
            "q_sent_gap",
            "type_agree",
            "focus_near",
            "rd_score",
            "rd_margin",
            # the local model's Yes/No log-odds and its reader's agreement (grounded.checker.llm_read)
            "llm_yes",
            "llm_agree",
        ),
        1,
    ),
    **dict.fromkeys(
        (
            "missing",
            "negation",
            "number_mismatch",
            "date_mismatch",
            "unit_mismatch",
            "entity_mismatch",
            "vague",
            "ans_in_q",
            "type_conflict",
        ),
        -1,
    ),
}
# The fitted models and thresholds are package data, written by benchmarks/fit_checker.py --write.
CALIBRATION_FILE = "calibration.json"


def load_calibration(
    data: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Calibration], dict[str, float]]:
    """The fitted models and default thresholds (from grounded/checker/calibration.json by default)."""
    if data is None:
        import json
        from importlib.resources import files

        data = json.loads(
            files("grounded.checker").joinpath(CALIBRATION_FILE).read_text(encoding="utf-8")
        )
    models = {
        name: Calibration(
            tuple(m["features"]), tuple(float(w) for w in m["weights"]), float(m["bias"])
        )
        for name, m in data["models"].items()
    }
    return models, {k: float(v) for k, v in data["thresholds"].items()}


CALIBRATION, DEFAULT_THRESHOLDS = load_calibration()
DEFAULT_THRESHOLD: float = DEFAULT_THRESHOLDS["qa"]


def calibration_for(
    mode: str, signals: Mapping[str, float], models: Mapping[str, Calibration] | None = None
) -> Calibration:
    """The model of `mode` that uses the most model-backed signals present in `signals`.

    Models are named "<mode>" or "<mode>+<signal>[+<signal>...]" (e.g. "qa+sem"): a pair whose
    model-backed checks ran gets the model fitted with those signals.
    """
    models = CALIBRATION if models is None else models
    best, best_n = models[mode], 0
    for name, model in models.items():
        base, *extra = name.split("+")
        if base == mode and len(extra) > best_n and all(s in signals for s in extra):
            best, best_n = model, len(extra)
    return best


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, x))))
