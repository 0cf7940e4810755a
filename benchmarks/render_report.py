"""Build the HTML report of the fixture run directory and screenshot it in headless Chromium.

    python benchmarks/render_report.py [RUN_DIR] [--reference REF] [--png OUT.png]

Prints the report path, the screenshot path and its size; exits 0 with a message when no
Chromium is installed (Debian: `apt-get install chromium`).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "data" / "health"


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def screenshot(
    html: Path, png: Path, *, width: int = 1280, height: int = 2400, timeout: float = 120.0
) -> Path:
    """Render a local HTML file to PNG with headless Chromium, network features off."""
    exe = find_chromium()
    if exe is None:
        raise FileNotFoundError("chromium not found")
    with tempfile.TemporaryDirectory() as profile:
        cmd = [
            exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--hide-scrollbars", f"--user-data-dir={profile}", f"--screenshot={png}",
            f"--window-size={width},{height}", html.resolve().as_uri(),
        ]  # fmt: skip
        subprocess.run(cmd, check=True, capture_output=True, timeout=timeout)
    return png


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", nargs="?", default=str(FIXTURE / "run"))
    parser.add_argument("--reference", default=str(FIXTURE / "human-b.json"))
    parser.add_argument("--png", default="/tmp/report.png")
    parser.add_argument("--embedder", default="none", help="minilm to include question similarity")
    args = parser.parse_args()

    from grounded.eval.report import write_report

    out = Path(tempfile.mkdtemp()) / "report.html"
    path = write_report(
        args.run_dir,
        reference=args.reference or None,
        embedder=None if args.embedder == "none" else args.embedder,
        out=out,
    )
    print(f"report: {path} ({path.stat().st_size:,} bytes)")
    if find_chromium() is None:
        print("skipped the screenshot: chromium is not installed (apt-get install chromium)")
        return 0
    png = screenshot(path, Path(args.png))
    print(f"screenshot: {png} ({png.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
