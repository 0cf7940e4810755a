"""benchmarks/fit_checker.py --write keeps the reading models fit_llm_read.py stacked on its models."""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CAL = ROOT / "grounded" / "checker" / "calibration.json"


@pytest.fixture(scope="module")
def fit_checker():
    spec = importlib.util.spec_from_file_location(
        "fit_checker", ROOT / "benchmarks" / "fit_checker.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("fit_checker", module)
    spec.loader.exec_module(module)
    return module


def test_a_refit_keeps_the_stacked_reading_models(fit_checker):
    old = json.loads(CAL.read_text(encoding="utf-8"))
    stacked = [name for name in old["models"] if name.endswith(fit_checker.STACKED)]
    assert stacked  # the shipped calibration has them
    # what render() writes: the hand models only
    new = {k: v for k, v in copy.deepcopy(old).items() if k != "fitted_by_llm_read"}
    new["models"] = {k: v for k, v in new["models"].items() if k not in stacked}

    same = fit_checker.keep_stacked(new, old)
    assert set(same["models"]) == set(old["models"])
    assert same["fitted_by_llm_read"] == old["fitted_by_llm_read"]
    for name in stacked:  # unchanged hand models: the same stacked models, up to rounding
        assert same["models"][name]["features"] == old["models"][name]["features"]
        assert same["models"][name]["weights"] == pytest.approx(
            old["models"][name]["weights"], abs=2e-3
        )
        assert same["models"][name]["bias"] == pytest.approx(old["models"][name]["bias"], abs=2e-3)

    # a refit that doubles the "qa" model: its reading is restacked on the new one
    new["models"]["qa"]["weights"] = [2 * w for w in new["models"]["qa"]["weights"]]
    new["models"]["qa"]["bias"] *= 2
    moved = fit_checker.keep_stacked(new, old)["models"]
    name = "qa" + fit_checker.STACKED
    n = len(new["models"]["qa"]["weights"])
    assert moved[name]["weights"][:n] == pytest.approx(
        [2 * w for w in old["models"][name]["weights"][:n]], abs=4e-3
    )
    assert moved[name]["weights"][n:] == old["models"][name]["weights"][n:]
