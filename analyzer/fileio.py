"""Atomic writes: a report, cache entry or state file is either the old one or the new one,
never half of one, even if the process is killed or the laptop sleeps mid-write.

Also the lock that keeps two callaudit processes from writing one output folder at once.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import CallauditError

TMP_SUFFIX = ".tmp"
# A temporary file untouched this long belongs to a write that was killed, not one running.
_STALE_SECONDS = 600.0


def atomic_write_bytes(path: str | Path, data: bytes, mode: int | None = None) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    # Hidden and suffixed: folder scans and report lookups never take it for a finished file.
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=TMP_SUFFIX, dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)  # mkstemp makes files private (0600)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


def atomic_write_text(path: str | Path, text: str, mode: int | None = None) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"), mode)


def remove_stale_temps(folder: Path, older_than: float = _STALE_SECONDS) -> int:
    """Delete temporary files of atomic writes that a killed process left in folder (not
    recursive); returns how many. Recent ones may belong to a write in progress: kept."""
    removed = 0
    cutoff = time.time() - older_than
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        if not (entry.name.startswith(".") and entry.name.endswith(TMP_SUFFIX)):
            continue
        try:
            if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                os.unlink(entry.path)
                removed += 1
        except OSError:
            continue  # gone already, or not ours to delete
    return removed


@contextmanager
def exclusive_lock(lock_path: Path, busy: str) -> Iterator[None]:
    """Hold an exclusive flock on lock_path for the block; the OS releases it when the
    process ends, even when killed, so a crash never leaves a stale lock. The file holds the
    holder's pid. Raises CallauditError(busy) when another process holds it, with "{pid}" in
    busy replaced by the holder's pid."""
    import fcntl

    try:
        f = open(lock_path, "a+", encoding="utf-8")
    except OSError as e:
        raise CallauditError(f"无法创建锁文件 {lock_path}：{e.strerror or e}，请检查输出目录权限") from e
    try:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            pid = f.read().strip()
            raise CallauditError(busy.replace("{pid}", pid if pid.isdigit() else "未知")) from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        yield
    finally:
        f.close()  # closing releases the lock
