"""The local model's worker process: llama.cpp completions over a JSON-lines pipe.

Started by `grounded.local_llm.LocalLLM` as `python -m grounded.local_worker`. A native crash in
llama.cpp (a build for another CPU, out of memory) kills only this process; the parent sees the
pipe close, reports the cause and keeps every finished call in its cache.

Protocol, one JSON object per line: the parent sends `{"op": "chat", "model": PATH, "messages":
[...], "kwargs": {...}}` or `{"op": "ping"}`; the worker answers `{"ok": true, "result": ...}` or
`{"ok": false, "error": "..."}`. The first line the worker writes is `{"ok": true, "ready": ...}`.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, BinaryIO


def _private_stdout() -> BinaryIO:
    """The pipe to the parent, with fd 1 pointed at stderr so native prints cannot corrupt it."""
    fd = os.dup(1)
    os.dup2(2, 1)
    return os.fdopen(fd, "wb", buffering=0)


def serve(n_ctx: int, n_threads: int) -> None:
    """Answer requests until stdin closes."""
    out = _private_stdout()
    models: dict[str, Any] = {}

    def send(message: dict[str, Any]) -> None:
        out.write(json.dumps(message, ensure_ascii=False).encode("utf-8") + b"\n")

    try:
        import llama_cpp
    except ImportError as exc:
        send({"ok": False, "error": f"llama-cpp-python is not installed: {exc}", "fatal": True})
        return
    send({"ok": True, "ready": {"pid": os.getpid(), "llama_cpp": llama_cpp.__version__}})
    for line in sys.stdin.buffer:
        if not line.strip():
            continue
        request = json.loads(line)
        op = request.get("op")
        try:
            if op == "ping":
                send({"ok": True, "result": "pong"})
                continue
            if op != "chat":
                send({"ok": False, "error": f"unknown op {op!r}"})
                continue
            path = request["model"]
            if path not in models:
                models[path] = llama_cpp.Llama(
                    model_path=path, n_ctx=n_ctx, n_threads=n_threads, verbose=False
                )
            reply = models[path].create_chat_completion(
                messages=request["messages"], **request.get("kwargs", {})
            )
            send({"ok": True, "result": reply})
        except Exception as exc:  # noqa: BLE001 - a bad request must not end the worker
            send({"ok": False, "error": f"{type(exc).__name__}: {exc}"})
    for llm in models.values():
        llm.close()  # while llama.cpp's library is still loaded (its __del__ fails at exit)


def main() -> None:
    n_ctx = int(sys.argv[1]) if len(sys.argv) > 1 else 4096
    n_threads = int(sys.argv[2]) if len(sys.argv) > 2 else max(1, os.cpu_count() or 1)
    serve(n_ctx, n_threads)


if __name__ == "__main__":
    main()
