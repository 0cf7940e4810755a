"""ruff and mypy, as configured in pyproject.toml, are part of the suite."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _tool(name: str) -> str:
    path = Path(sys.executable).with_name(name)
    found = str(path) if path.exists() else shutil.which(name)
    if not found:
        pytest.skip(f"{name} is not installed (pip install -e '.[dev]')")
    return found


def test_ruff():
    proc = subprocess.run([_tool("ruff"), "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_format():
    proc = subprocess.run(
        [_tool("ruff"), "format", "--check", "."], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, "run `ruff format .`:\n" + proc.stdout + proc.stderr


# loaders/ and eval/ reach mypy as grounded.loaders and grounded.eval (see [tool.mypy]):
# their functions must keep their real types there, not turn into Any.
_PROBE = """
from grounded.eval.benchmarks import read_examples
from grounded.loaders import load
reveal_type(load)
reveal_type(read_examples)
"""


def test_mypy(tmp_path: Path):
    probe = tmp_path / "probe.py"
    probe.write_text(_PROBE, encoding="utf-8")
    files = ["grounded", ".typecheck/grounded/loaders", ".typecheck/grounded/eval", str(probe)]
    proc = subprocess.run([_tool("mypy"), *files], cwd=ROOT, capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "error:" not in out, out
    revealed = [line for line in out.splitlines() if "Revealed type" in line]
    assert len(revealed) == 2 and "Any" not in "".join(revealed), out
    assert (
        "Iterator[grounded.types.Document]" in revealed[0] and "benchmarks.Example" in revealed[1]
    )
