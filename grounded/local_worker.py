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
import time
from typing import Any, BinaryIO


def _private_stdout() -> BinaryIO:
    """The pipe to the parent, with fd 1 pointed at stderr so native prints cannot corrupt it."""
    fd = os.dup(1)
    os.dup2(2, 1)
    return os.fdopen(fd, "wb", buffering=0)


def chat_with_logprobs(
    llm: Any, messages: list[dict[str, Any]], kwargs: dict[str, Any], top: int
) -> dict[str, Any]:
    """`create_chat_completion` with OpenAI-shaped logprobs of each generated token.

    llama-cpp-python's own `logprobs` needs a model loaded with `logits_all=True`, which runs the
    output layer on every prompt token and keeps their logits (n_ctx x 152k floats: 2.5 GB for
    Qwen at 4096). Here each sampling step's logits are read from llama.cpp as the sampler
    receives them (raw, before penalties and grammar), so the same loaded model serves both.
    """
    import llama_cpp
    import numpy as np

    n_vocab = llm.n_vocab()
    # per generated token: (token, its logprob, [(rival, logprob)] best first)
    steps: list[tuple[int, float, list[tuple[int, float]]]] = []
    sample = llm.sample

    def recording_sample(*args: Any, **kw: Any) -> int:
        idx = kw.get("idx")
        ridx = idx - llm.n_tokens if idx is not None else -1
        logits = np.ctypeslib.as_array(
            llama_cpp.llama_get_logits_ith(llm.ctx, ridx), shape=(n_vocab,)
        ).astype(np.float64)  # a copy: the next decode overwrites llama.cpp's buffer
        token = int(sample(*args, **kw))
        logits -= logits.max()
        logprobs = logits - np.log(np.exp(logits).sum())
        best = np.argpartition(logprobs, -top)[-top:] if top > 0 else np.zeros(0, dtype=int)
        best = best[np.argsort(-logprobs[best], kind="stable")]
        steps.append((token, float(logprobs[token]), [(int(t), float(logprobs[t])) for t in best]))
        return token

    llm.sample = recording_sample  # generate() calls self.sample once per generated token
    try:
        reply: dict[str, Any] = llm.create_chat_completion(messages=messages, **kwargs)
    finally:
        del llm.sample

    def entry(token: int, logprob: float) -> dict[str, Any]:
        raw = llm.detokenize([token], special=True)  # the end-of-turn token shows by name
        return {
            "token": raw.decode("utf-8", errors="replace"),
            "bytes": list(raw),
            "logprob": logprob,
        }

    # the end-of-turn token closes the reply without being part of it (as in OpenAI's content)
    n = int((reply.get("usage") or {}).get("completion_tokens", len(steps)))
    content = [
        {**entry(token, logprob), "top_logprobs": [entry(t, lp) for t, lp in rivals]}
        for token, logprob, rivals in steps[:n]
    ]
    reply["choices"][0]["logprobs"] = {"content": content, "refusal": None}
    return reply


# llama.cpp reuses the evaluated prefix of the previous prompt only. Requests alternate between
# kinds with different fixed instructions (generation, then reading the same passage), so each
# kind, told apart by its system message, gets a context of its own: the model file is mapped
# once and shared, each context adds its KV cache (about 117 MB for Qwen at 4096 tokens).
CONTEXTS_PER_MODEL = 2


class Contexts:
    """The loaded contexts, by (model file, system message), least recently used dropped first;
    counts the prompt tokens asked for and those llama.cpp actually evaluated."""

    def __init__(self, n_ctx: int, n_threads: int) -> None:
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.loaded: dict[tuple[str, str], Any] = {}
        self.stats: dict[str, float] = dict.fromkeys(
            ("prompt_tokens", "completion_tokens", "prompt_evaluated", "prompt_s", "generated_s"),
            0,
        )

    def get(self, path: str, messages: list[dict[str, Any]]) -> Any:
        import llama_cpp

        system = str(messages[0].get("content", "")) if messages else ""
        key = (path, system if messages and messages[0].get("role") == "system" else "")
        llm = self.loaded.pop(key, None)
        if llm is None:
            same = [k for k in self.loaded if k[0] == path]
            if len(same) >= CONTEXTS_PER_MODEL:
                self.loaded.pop(same[0]).close()
            llm = llama_cpp.Llama(
                model_path=path, n_ctx=self.n_ctx, n_threads=self.n_threads, verbose=False
            )
            self._count(llm)
        self.loaded[key] = llm  # most recently used last
        return llm

    def _count(self, llm: Any) -> None:
        evaluate = llm.eval

        def counting_eval(tokens: Any) -> None:
            started = time.perf_counter()
            evaluate(tokens)
            # a batch is (the unreused part of) a prompt; a single token, the last one generated
            if len(tokens) > 1:
                self.stats["prompt_evaluated"] += len(tokens)
                self.stats["prompt_s"] += time.perf_counter() - started
            else:
                self.stats["generated_s"] += time.perf_counter() - started

        llm.eval = counting_eval

    def record(self, usage: dict[str, Any]) -> None:
        self.stats["prompt_tokens"] += int(usage.get("prompt_tokens", 0))
        self.stats["completion_tokens"] += int(usage.get("completion_tokens", 0))

    def close(self) -> None:
        for llm in self.loaded.values():
            llm.close()  # while llama.cpp's library is still loaded (its __del__ fails at exit)


def serve(n_ctx: int, n_threads: int) -> None:
    """Answer requests until stdin closes."""
    out = _private_stdout()
    models = Contexts(n_ctx, n_threads)

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
            if op == "stats":
                # prompt_evaluated < prompt_tokens: the rest came from a reused prefix
                send({"ok": True, "result": dict(models.stats)})
                continue
            if op != "chat":
                send({"ok": False, "error": f"unknown op {op!r}"})
                continue
            llm = models.get(request["model"], request["messages"])
            kwargs = dict(request.get("kwargs", {}))
            top = int(kwargs.pop("top_logprobs", 0) or 0)
            if kwargs.pop("logprobs", False):
                reply = chat_with_logprobs(llm, request["messages"], kwargs, top)
            else:
                reply = llm.create_chat_completion(messages=request["messages"], **kwargs)
            models.record(reply.get("usage") or {})
            send({"ok": True, "result": reply})
        except Exception as exc:  # noqa: BLE001 - a bad request must not end the worker
            send({"ok": False, "error": f"{type(exc).__name__}: {exc}"})
    models.close()


def main() -> None:
    n_ctx = int(sys.argv[1]) if len(sys.argv) > 1 else 4096
    n_threads = int(sys.argv[2]) if len(sys.argv) > 2 else max(1, os.cpu_count() or 1)
    serve(n_ctx, n_threads)


if __name__ == "__main__":
    main()
