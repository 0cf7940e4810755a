"""The check registry: built-ins and plugins register the same way; a plugin's reasons block."""

from __future__ import annotations

import importlib.metadata
import textwrap

import pytest
from fakes import PIPELINE_DOCS, FakeLLM, pipeline_responder, register_fake

import grounded
from grounded.checker import (
    BLOCKING,
    ENTRY_POINT_GROUP,
    CheckOptions,
    check,
    checks,
    default_checker,
    registry,
)
from grounded.checker.calibration import CALIBRATION
from grounded.jsonl import read_jsonl
from grounded.types import QAPair

PASSAGE = (
    "The Corbin Bridge was designed by Margit Holloway and opened in 1967. It is 412 metres long."
)
# A purely blocking check, as a third party ships it: one file, one registration.
PLUGIN = '''
from grounded.checker import CheckResult, CheckSpec
from grounded.types import Reason


class NoDraft:
    """Rejects answers marked as drafts."""

    name = "no_draft"

    def run(self, ctx):
        if "draft" in ctx.pair.answer.lower() or "draft" in ctx.pair.question.lower():
            return CheckResult([Reason("draft_answer", "the pair is marked as a draft")])
        return CheckResult()


SPEC = CheckSpec("no_draft", lambda options: NoDraft(), blocking={"draft_answer"})
'''


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """A distribution exposing `draft_check_plugin:SPEC` under the grounded.checks entry point."""
    (tmp_path / "draft_check_plugin.py").write_text(textwrap.dedent(PLUGIN))
    monkeypatch.syspath_prepend(str(tmp_path))
    ep = importlib.metadata.EntryPoint(
        name="no_draft", value="draft_check_plugin:SPEC", group=ENTRY_POINT_GROUP
    )
    real = importlib.metadata.entry_points

    def entry_points(**kw):
        return [ep] if kw.get("group") == ENTRY_POINT_GROUP else real(**kw)

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    # a fresh registry: the built-ins, then the entry points, loaded on first use
    registry.checks()  # the built-ins registered
    monkeypatch.setattr(registry.CHECKS, "_items", dict(registry.CHECKS._items))
    monkeypatch.setattr(registry.CHECKS, "_loaded", False)
    return "no_draft"


def test_the_built_ins_are_registered_and_declare_every_fitted_signal():
    found = checks()
    assert list(found)[:5] == ["quotes", "support", "question", "fit", "instructions"]
    assert registry.blocking_codes(found.values()) == BLOCKING
    declared = registry.declared_signals()
    for model in CALIBRATION.values():
        assert set(model.features) <= set(declared)


def test_a_plugin_check_from_an_entry_point_blocks_with_its_reason(plugin):
    checker = default_checker(semantic="off")
    assert checker.get(plugin) is not None and "draft_answer" in checker.blocking
    good = QAPair(
        id="a",
        question="Who designed the Corbin Bridge?",
        answer="Margit Holloway",
        contexts=(PASSAGE,),
    )
    draft = QAPair(
        id="b",
        question="Who designed the Corbin Bridge?",
        answer="Margit Holloway (draft)",
        contexts=(PASSAGE,),
    )
    out = list(check([good, draft], semantic="off"))
    assert out[0][1].supported
    assert not out[1][1].supported
    assert "draft_answer" in [r.code for r in out[1][1].reasons]
    # options turn a registered check off by name
    off = default_checker(CheckOptions(semantic="off", policies={plugin: "off"}))
    assert off.get(plugin) is None


def test_a_run_checks_with_the_plugin_and_rejects_with_its_reason(plugin, tmp_path):
    def responder(messages):
        reply = pipeline_responder(messages)
        # every generated question is marked as a draft
        return reply.replace('"question": "', '"question": "Draft: ')

    fake = FakeLLM(responder=responder)
    model = register_fake(fake)
    out = tmp_path / "out"
    summary = grounded.run(
        [PIPELINE_DOCS], out=out, model=model, chunk_tokens=64, overlap_tokens=0, n=4
    )
    assert summary.kept == 0
    assert summary.rejected_by_reason.get("draft_answer", 0) >= 1
    rejected = list(read_jsonl(out / "rejected.jsonl"))
    assert any("draft_answer" in [r["code"] for r in row["reasons"]] for row in rejected)
