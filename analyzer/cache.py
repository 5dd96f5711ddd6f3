"""Transcript cache: Whisper is nearly all the cost, so a recording is transcribed once per
ASR setting and re-scored from here after a rule change or into a new output folder.

Entries live in the per-user cache, keyed by the audio's sha256 and a hash of the ASR
settings; each entry carries its own checksum, so a torn or edited file is detected and
rebuilt rather than trusted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from .fileio import atomic_write_text
from .types import Segment

log = logging.getLogger(__name__)
FORMAT = 1


def settings_key(asr_info: dict[str, Any]) -> str:
    blob = json.dumps(asr_info, sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


class TranscriptCache:
    def __init__(self, root: Path):
        self.root = root

    def _path(self, audio_sha: str, key: str) -> Path:
        return self.root / audio_sha[:2] / f"{audio_sha}-{key}.json"

    def get(self, audio_sha: str, key: str) -> tuple[list[Segment], dict] | None:
        path = self._path(audio_sha, key)
        inode = None
        try:
            with open(path, "rb") as f:
                inode = os.fstat(f.fileno()).st_ino
                entry = json.loads(f.read().decode("utf-8"))
            body = entry["body"]
            if entry.get("format") != FORMAT or entry.get("checksum") != _checksum(body):
                raise ValueError("checksum mismatch")
            segments = [Segment(**s) for s in body["segments"]]
            audio = body["audio"]
            if not isinstance(audio, dict) or "duration" not in audio:
                raise ValueError("no audio facts")
            return segments, audio
        except FileNotFoundError:
            return None
        except OSError as e:  # unreadable cache (permissions, a folder in the way): no cache
            log.warning("无法读取转写缓存 %s（%s），将重新转写", path, e.strerror or e)
            return None
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            log.warning("转写缓存损坏，将重新转写：%s（%s）", path, e)
            _discard(path, inode)
            return None

    def put(self, audio_sha: str, key: str, segments: list[Segment], audio: dict) -> None:
        body = {"segments": [s.__dict__ for s in segments], "audio": audio}
        entry = {"format": FORMAT, "checksum": _checksum(body), "body": body}
        try:
            atomic_write_text(self._path(audio_sha, key), json.dumps(entry, ensure_ascii=False))
        except OSError as e:  # a full or read-only cache must not fail the analysis
            log.warning("无法写入转写缓存 %s：%s", self.root, e)


def _discard(path: Path, inode: int | None) -> None:
    """Remove a corrupt entry unless another process has meanwhile replaced it with a good
    one (atomic writes give the replacement a new inode)."""
    try:
        if inode is None or path.stat().st_ino == inode:
            path.unlink()
    except OSError:
        pass


def _checksum(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
