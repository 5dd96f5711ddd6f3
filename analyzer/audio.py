"""Decode any phone recording into 16 kHz float32 samples, keeping stereo parties apart.

Formats are recognized by content (libavformat probes the bytes), never by extension: phones
and copy tools often mislabel files (3gp saved as .amr, AAC saved as .mp3).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from .errors import InputError

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
# Stereo channels this similar are one mix recorded twice, not one party per channel.
_DUAL_MONO_CORRELATION = 0.97


@dataclass
class Audio:
    """Decoded recording: one array per channel kept apart (one array when mixed)."""

    channels: list[np.ndarray]  # float32, SAMPLE_RATE
    source_channels: int  # channel count of the file itself
    source_rate: int
    codec: str
    container: str

    @property
    def duration(self) -> float:
        return len(self.channels[0]) / SAMPLE_RATE if self.channels else 0.0

    @property
    def split(self) -> bool:
        """True when each channel holds one party (transcribe separately)."""
        return len(self.channels) > 1

    def mono(self) -> np.ndarray:
        if len(self.channels) == 1:
            return self.channels[0]
        return np.mean(np.stack(self.channels), axis=0).astype(np.float32)


def check_readable(path: Path) -> None:
    """Raise InputError unless path is a non-empty file this process may read."""
    try:
        size = path.stat().st_size
    except FileNotFoundError as e:
        raise InputError(str(path), "文件不存在，请检查路径") from e
    except OSError as e:  # permission on a parent folder, symlink loop, name too long ...
        raise InputError(str(path), f"无法访问（{e.strerror or e}），请检查路径和权限") from e
    if path.is_dir():
        raise InputError(str(path), "这是一个文件夹，不是录音文件；批量分析请用 callaudit batch")
    if size == 0:
        raise InputError(str(path), "文件为空（0 字节），请重新导出录音")
    if not os.access(path, os.R_OK):
        raise InputError(str(path), "没有读取权限，请检查文件权限")


def _open(path: Path):
    check_readable(path)
    try:
        return av.open(str(path), mode="r", metadata_errors="ignore")
    except PermissionError as e:
        raise InputError(str(path), "没有读取权限，请检查文件权限") from e
    except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError) as e:
        raise InputError(str(path), "不是可识别的音频文件（内容无法解析），请确认是通话录音") from e


def is_audio(path: str | os.PathLike) -> bool:
    """Cheap content check used when scanning folders."""
    try:
        with _open(Path(path)) as c:
            return bool(c.streams.audio)
    except InputError:
        return False


def decode(path: str | os.PathLike) -> Audio:
    """Decode to 16 kHz float32; stereo with distinct parties stays as two channels."""
    p = Path(path)
    with _open(p) as container:
        if not container.streams.audio:
            raise InputError(str(p), "文件中没有音轨，请确认是通话录音")
        stream = container.streams.audio[0]
        src_channels = stream.codec_context.channels or 1
        src_rate = stream.codec_context.sample_rate or 0
        codec = stream.codec_context.name
        # Files with more than two channels are not call recorders' one-party-per-channel
        # layout: mix them down.
        layout = "stereo" if src_channels == 2 else "mono"
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=SAMPLE_RATE)
        chunks: list[np.ndarray] = []
        errors = 0
        try:
            for packet in container.demux(stream):
                try:
                    frames = packet.decode()
                except av.error.InvalidDataError:
                    # A damaged packet or two is common in phone files; skip it.
                    errors += 1
                    if errors > 50:
                        raise
                    continue
                for frame in frames:
                    frame.pts = None  # resampler rejects some phones' non-monotonic pts
                    for out in resampler.resample(frame):
                        chunks.append(out.to_ndarray())
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray())
        except (av.error.FFmpegError, ValueError) as e:
            if not chunks:
                raise InputError(str(p), "音频数据损坏或文件被截断，无法解码") from e
            log.warning("%s: 文件末尾损坏，已分析可解码的部分", p)
        expected = float(container.duration) / av.time_base if container.duration else None
        fmt = container.format.name
    if not chunks:
        raise InputError(str(p), "没有可解码的音频（文件可能被截断），请重新导出录音")
    data = np.concatenate(chunks, axis=1).astype(np.float32, copy=False)
    decoded = data.shape[1] / SAMPLE_RATE
    # Containers that state their length reveal truncation; a WAV header is checked by hand
    # because libavformat derives a WAV's duration from the file size.
    # Other containers' stated lengths are estimates (VBR mp3): only a large gap counts.
    wav_len = _wav_declared_seconds(p)
    declared, ratio = (wav_len, 0.9) if wav_len else (expected, 0.5)
    if declared and declared > 2.0 and decoded < ratio * declared:
        raise InputError(
            str(p), f"文件被截断：只能解码 {decoded:.1f} 秒，文件头标明 {declared:.1f} 秒，请重新导出"
        )
    if errors:
        log.warning("%s: 跳过了 %d 个损坏的数据包", p, errors)
    channels = [np.ascontiguousarray(c) for c in data]
    if len(channels) == 2 and _same_signal(channels[0], channels[1]):
        channels = [np.mean(data, axis=0).astype(np.float32)]
    return Audio(channels, src_channels, src_rate, codec, fmt)


def _wav_declared_seconds(path: Path) -> float | None:
    """Length a WAV header promises; libavformat trusts the file size instead, which hides
    truncation. None when not a WAV or when the recorder never finalized the header."""
    with open(path, "rb") as f:
        head = f.read(4096)
    if len(head) < 44 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    pos, byte_rate = 12, 0
    while pos + 8 <= len(head):
        cid, size = head[pos : pos + 4], int.from_bytes(head[pos + 4 : pos + 8], "little")
        if cid == b"fmt " and pos + 16 <= len(head):
            byte_rate = int.from_bytes(head[pos + 16 : pos + 20], "little")
        if cid == b"data":
            if not byte_rate or size in (0, 0xFFFFFFFF):
                return None
            return size / byte_rate
        pos += 8 + size + (size & 1)
    return None


def _same_signal(a: np.ndarray, b: np.ndarray) -> bool:
    """True when a stereo file is really one mix (copies, or one side silent)."""
    if min(float(np.std(a)), float(np.std(b))) < 1e-4:
        return True
    if np.allclose(a, b, atol=1e-3):
        return True
    return float(np.corrcoef(a, b)[0, 1]) > _DUAL_MONO_CORRELATION
