"""Newcomer path: a fresh clone, the README's first command verbatim, the internet blocked.

Clones this repository into a temporary folder, runs the command under the README's
`<!-- main-command -->` marker with every non-loopback socket refused in every Python process
except pip (which needs the package registry), then checks the run's outputs.

    python benchmarks/newcomer.py [--keep]

Prints the wall time of the install and of the main job. Exit code 0 when the outputs are right
and the pairs come from the default local model, Qwen2.5-Coder-1.5B (assembled from its part
packages into a fresh cache folder, as on a newcomer's machine).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The model the README's first command must write with when nothing else is configured.
DEFAULT_MODEL = "grounded-local/qwen2.5-coder-1.5b"

# Loaded by every Python process through PYTHONPATH: refuse sockets that leave the machine.
SITECUSTOMIZE = r"""
import ipaddress, os, socket, sys
_argv = " ".join(sys.argv)
if "pip" not in _argv:
    _connect = socket.socket.connect
    _connect_ex = socket.socket.connect_ex
    def _local(address):
        if not isinstance(address, tuple) or not address:
            return True
        host = address[0]
        if host in ("localhost", ""):
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False
    def _refuse_remote(address):
        if not _local(address):
            with open(os.environ["NEWCOMER_BLOCKED_LOG"], "a") as fh:
                fh.write(f"{_argv}: {address!r}\n")
            raise OSError(f"newcomer test: network blocked ({address!r})")
    def connect(self, address):
        _refuse_remote(address)
        return _connect(self, address)
    def connect_ex(self, address):
        _refuse_remote(address)
        return _connect_ex(self, address)
    socket.socket.connect = connect
    socket.socket.connect_ex = connect_ex
"""


def readme_command(marker: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(rf"<!-- {marker} -->\s*```(?:bash|sh)?\n(.+?)\n```", text, re.S)
    if not m:
        raise SystemExit(f"README.md has no <!-- {marker} --> block")
    return m.group(1).strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the temporary clone")
    args = parser.parse_args()

    command = readme_command("main-command")
    work = Path(tempfile.mkdtemp(prefix="grounded-newcomer-"))
    clone = work / "grounded"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    guard = work / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(SITECUSTOMIZE)
    blocked_log = work / "blocked.log"
    blocked_log.touch()

    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(Path.home()),
        "PYTHONPATH": str(guard),
        "NEWCOMER_BLOCKED_LOG": str(blocked_log),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_PROGRESS_BAR": "off",
        # a newcomer has no assembled model yet: the run assembles it from the installed parts
        "GROUNDED_CACHE_DIR": str(work / "cache"),
    }
    print(f"+ {command}", flush=True)
    started = time.monotonic()
    proc = subprocess.run(
        ["bash", "-c", command], cwd=clone, env=env, text=True, capture_output=True
    )
    wall = time.monotonic() - started
    print(proc.stdout[-4000:])
    print(proc.stderr[-4000:], file=sys.stderr)

    problems: list[str] = []
    if proc.returncode not in (0, 10):
        problems.append(f"main command exited {proc.returncode}")
    out = clone / "out"
    for name in ("qa.jsonl", "rejected.jsonl", "summary.json", "report.html"):
        if not (out / name).is_file():
            problems.append(f"missing {out / name}")
    kept = 0
    if (out / "summary.json").is_file():
        summary = json.loads((out / "summary.json").read_text())
        kept = int(summary.get("kept", 0))
        print(
            f"kept {kept}, rejected {summary.get('rejected')}, llm calls {summary.get('llm_calls')}, "
            f"run seconds {summary.get('seconds')}"
        )
        if kept < 1:
            problems.append("no pair was kept")
        gen = summary.get("generate") or {}
        tokens = int(gen.get("completion_tokens", 0))
        seconds = float(gen.get("elapsed_s") or 0.0)
        print(
            f"generation: {tokens} completion tokens in {seconds:.1f} s"
            + (f" ({tokens / seconds:.0f} tokens/s incl. prompts and checks)" if seconds else "")
        )
        if tokens < 1:
            problems.append("the local model wrote no tokens (did the generation stage run?)")
        rows = [
            json.loads(line)
            for name in ("qa.jsonl", "rejected.jsonl")
            for line in (out / name).read_text().splitlines()
            if line.strip()
        ]
        models = {
            ((r.get("pair") or r).get("provenance") or r.get("provenance") or {}).get("model")
            for r in rows
        }
        if models - {None} != {DEFAULT_MODEL}:
            problems.append(
                f"pairs were not written by the default local model {DEFAULT_MODEL}: "
                f"{sorted(map(str, models))}"
            )
        sidecar = work / "cache" / "models" / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf.json"
        if sidecar.is_file():
            assembled = json.loads(sidecar.read_text()).get("assembled_s")
            print(f"default model assembled from its parts in {assembled} s")
        else:
            problems.append(f"the default model was not assembled into {sidecar.parent}")
        for row in rows:
            for ev in (row.get("pair") or row).get("evidence") or []:
                if isinstance(ev, dict) and not ev.get("text"):
                    problems.append(f"pair {row.get('id')} has evidence without text")
    blocked = blocked_log.read_text().strip()
    if blocked:
        problems.append("something tried to reach the network:\n" + blocked)

    print(f"newcomer: README command wall time {wall:.1f} s (install + main job)")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"kept {work}")
    for p in problems:
        print(f"FAIL: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
