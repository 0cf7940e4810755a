"""Offline settings: never set by `import grounded`, applied when grounded starts work, user's win."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from grounded import offline

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).parent / "data" / "generate" / "corpus"

# Refuses every connection that is not loopback, like tests/conftest.py, inside the child.
_BLOCK_NETWORK = """
import ipaddress, socket
_connect = socket.socket.connect
def _guard(self, address):
    host = address[0] if isinstance(address, tuple) and address else "localhost"
    if host not in ("localhost", "") and not ipaddress.ip_address(host).is_loopback:
        raise OSError(f"network blocked: {address!r}")
    return _connect(self, address)
socket.socket.connect = _guard
"""


def _python(code: str, **env: str) -> dict[str, str]:
    """Run `code` in a fresh interpreter without grounded's variables; its os.environ changes."""
    clean = {k: v for k, v in os.environ.items() if k not in offline.defaults()}
    clean.update(env)
    script = (
        "import json, os\nbefore = dict(os.environ)\n"
        + code
        + "\nprint(json.dumps({k: v for k, v in os.environ.items() if before.get(k) != v}))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    changed: dict[str, str] = json.loads(proc.stdout.strip().splitlines()[-1])
    return changed


def test_import_grounded_leaves_the_environment_alone() -> None:
    changed = _python("import grounded\nfor name in grounded.__all__:\n    getattr(grounded, name)")
    assert changed == {}


def test_the_cli_entry_applies_them_and_keeps_the_users_own(tmp_path: Path) -> None:
    code = (
        "from grounded.cli import main\n"
        f"try:\n    main(['report', {str(tmp_path)!r}], standalone_mode=False)\n"
        "except SystemExit:\n    pass"
    )
    changed = _python(code, HF_HUB_OFFLINE="0")
    assert changed["TRANSFORMERS_OFFLINE"] == "1" and "TIKTOKEN_CACHE_DIR" in changed
    assert "HF_HUB_OFFLINE" not in changed  # the user's 0 stays


def test_the_first_tokenizer_load_applies_them_for_library_users() -> None:
    changed = _python(
        "import grounded\n"
        "doc = grounded.Document.from_text('Bees make honey. ' * 40, source='b.txt')\n"
        "assert list(grounded.chunk_document(doc, chunk_tokens=64, overlap_tokens=8))"
    )
    assert Path(changed["TIKTOKEN_CACHE_DIR"]).is_dir() and changed["HF_HUB_OFFLINE"] == "1"


@pytest.mark.slow
def test_the_cli_ingests_and_searches_with_the_network_blocked(tmp_path: Path) -> None:
    index = tmp_path / "index"
    commands = [
        ["ingest", str(CORPUS), "--index", str(index)],
        ["search", "honey", "--index", str(index)],
    ]
    code = _BLOCK_NETWORK + (
        "from grounded.cli import main\n"
        f"for args in {commands!r}:\n"
        "    try:\n        main(args, standalone_mode=False)\n"
        "    except SystemExit as exc:\n        assert not exc.code, exc.code\n"
    )
    changed = _python(code)
    assert changed["HF_HUB_OFFLINE"] == "1"
    assert (index / "index.json").is_file()
