"""Install a one-module plugin distribution into a test's sys.path, found by importlib.metadata."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest


def install_plugin(
    folder: Path, monkeypatch: pytest.MonkeyPatch, *, group: str, module: str, source: str
) -> None:
    """Write `module`.py and a dist-info naming it under entry-point `group`; put `folder` on sys.path."""
    (folder / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    info = folder / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(f"[{group}]\n{module} = {module}\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(folder))
