"""One big document at the CLI: chunks reach the embedder in batches, and progress shows them."""

from __future__ import annotations

import os
import random
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _grounded_cmd() -> list[str]:
    grounded = Path(sys.executable).with_name("grounded")
    return [str(grounded)] if grounded.exists() else [sys.executable, "-m", "grounded.cli"]


def _run_with_terminal_stderr(args: list[str], timeout: float) -> tuple[int, str, str]:
    """Run a command whose stderr is a terminal (a pty), as a user at a shell sees it."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    # A new pty is 0 columns wide, and tqdm draws nothing in 0 columns.
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    err = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                err += data
            elif proc.poll() is not None:
                break
        else:
            proc.kill()
            pytest.fail(f"timed out after {timeout}s; stderr so far: {err[-2000:]!r}")
        out = proc.communicate(timeout=60)[0].decode()
    finally:
        os.close(master)
    return proc.returncode, out, err.decode(errors="replace")


def _big_text(n_paragraphs: int) -> str:
    rng = random.Random(5)
    words = "river harbour tide lighthouse keeper storm winter ledger cargo island".split()
    return "\n\n".join(
        f"Entry {i}. " + " ".join(rng.choice(words) for _ in range(40)) + "."
        for i in range(n_paragraphs)
    )


@pytest.mark.slow  # the fast embedder is distilled once per machine
def test_one_big_document_shows_chunks_embedded_while_it_is_ingested(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_text(_big_text(1000), encoding="utf-8")
    args = ["ingest", str(big), "--index", str(tmp_path / "i"), "--embedder", "fast"]
    code, out, err = _run_with_terminal_stderr(
        [*_grounded_cmd(), *args, "--chunk-tokens", "64", "--overlap-tokens", "0"], timeout=300
    )
    assert code == 0, err[-3000:]
    total = int(re.search(r"1 documents, (\d+) chunks", out).group(1))  # type: ignore[union-attr]
    assert total > 3 * 256
    # The "embedded" bar counts up batch by batch inside the one document, not once at its end.
    counts = sorted({int(n) for n in re.findall(r"embedded: (\d+)chunk", err)})
    assert [n for n in counts if 0 < n < total][:3] == [256, 512, 768], err[-3000:]
    assert counts[-1] == total
