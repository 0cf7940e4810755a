"""The module graph stays as issue 22 left it: no import cycle, no module over 700 lines, no
function outside the CLI over 12 parameters (benchmarks/module_graph.py reads the source)."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import fields
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def graph():
    spec = importlib.util.spec_from_file_location(
        "module_graph", ROOT / "benchmarks" / "module_graph.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["module_graph"] = module
    spec.loader.exec_module(module)
    return module.build(ROOT)


def test_no_import_cycle(graph):
    assert graph.cycles() == []


def test_the_graph_sees_local_imports_and_the_mapped_folders(graph):
    # a cycle closed only by an import inside a function would be missed otherwise
    assert ("grounded.stages.generate", "grounded.generation.api") in graph.edges
    assert "grounded.eval.report" in graph.modules and "grounded.loaders" in graph.modules


def test_no_module_over_700_lines(graph):
    assert graph.long_modules() == []


def test_no_function_outside_the_cli_over_12_parameters(graph):
    assert graph.wide_functions() == []


def test_the_flat_keywords_are_the_options_fields():
    """grounded.run's and grounded.generate's keywords are sorted into the options objects by
    name: every keyword is some section's field, and every field has its keyword."""
    from grounded.options import (
        CheckOptions,
        ExecutorOptions,
        GenerateOptions,
        GenerateSettings,
        IngestOptions,
        ModelOptions,
        RunOptions,
        RunSettings,
    )

    def names(kind: type) -> set[str]:
        return {f.name for f in fields(kind)}

    generate = names(GenerateOptions) | names(ModelOptions)
    assert set(GenerateSettings.__optional_keys__) == generate
    top = names(RunOptions) - {"out", "ingest", "model", "generate", "check", "executor"}
    run_keys = set(RunSettings.__optional_keys__)
    sections = names(IngestOptions) | generate | names(ExecutorOptions) | top
    assert sections <= run_keys
    assert run_keys - sections <= names(CheckOptions)


def test_run_options_from_flat_keywords_and_an_unknown_one():
    from grounded.options import RunOptions

    opts = RunOptions.from_settings(out="o", n=5, embedder="fast", threshold=0.4, workers=2)
    assert (opts.generate.n, opts.ingest.embedder, opts.check.threshold) == (5, "fast", 0.4)
    assert opts.executor.workers == 2 and opts.model.model is None
    with pytest.raises(TypeError, match="bogus"):
        RunOptions.from_settings(out="o", bogus=1)


def test_every_package_of_the_tree_is_in_pyproject():
    """A subpackage left out of pyproject.toml's `packages` is missing from the wheel."""
    import tomllib

    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        "grounded." + ".".join(p.parent.relative_to(ROOT / "grounded").parts)
        for p in (ROOT / "grounded").rglob("__init__.py")
        if p.parent != ROOT / "grounded"
    }
    assert found | {"grounded", "grounded.loaders", "grounded.eval", "grounded.prompts"} == listed
