"""Decode any phone recording into 16 kHz float32 samples, keeping stereo parties apart.

Formats are recognized by content (libavformat probes the bytes), never by extension: phones
and copy tools often mislabel files (3gp saved as .amr, AAC saved as .mp3).

A recording can run for hours (a recorder left on, a merged archive): 16 kHz float32 is
230 MB an hour per channel, so the pipeline reads it piece by piece (Recording.pieces);
decode() returns the whole recording at once for short files, clips and tests.
"""

from __future__ import annotations

import logging
import math
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np

from .errors import InputError

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
# Stereo channels this similar are one mix recorded twice, not one party per channel.
_DUAL_MONO_CORRELATION = 0.97
# Length of the pieces a long recording is transcribed in (bounded memory; Whisper works in
# 30 s windows anyway). Each piece ends at the quietest 0.1 s of its last _CUT_SEARCH seconds,
# so a cut rarely falls inside a word.
CHUNK_SECONDS = 600.0
_CUT_SEARCH = 10.0
# Shorter than this, Whisper cannot recognize anything (asr.py skips it).
_TOO_SHORT = 1.0

_DEMUX_OPTIONS = {"max_size": str(1 << 16)}

# First bytes of the containers phones write: a file that starts like audio but cannot be
# opened is damaged (a recording cut off by a crash or an interrupted copy), not "not audio".
_MAGIC = (b"#!AMR", b"RIFF", b"ID3", b"OggS", b"fLaC", b"\xff\xf1", b"\xff\xf9", b"\xff\xfb",
          b"\xff\xf3", b"\xff\xf2")


@dataclass
class Audio:
    """Decoded recording: one array per channel kept apart (one array when mixed)."""

    channels: list[np.ndarray]  # float32, SAMPLE_RATE
    source_channels: int  # channel count of the file itself
    source_rate: int
    codec: str
    container: str
    start: float = 0.0  # seconds from the start of the recording (a piece of a long one)

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
    """Raise InputError unless path is a non-empty regular file this process may read."""
    try:
        st = path.stat()
    except FileNotFoundError as e:
        raise InputError(str(path), "文件不存在（或是失效的链接），请检查路径") from e
    except OSError as e:  # permission on a parent folder, symlink loop, name too long ...
        raise InputError(str(path), f"无法访问（{e.strerror or e}），请检查路径和权限") from e
    if stat.S_ISDIR(st.st_mode):
        raise InputError(str(path), "这是一个文件夹，不是录音文件；批量分析请用 callaudit batch")
    if not stat.S_ISREG(st.st_mode):
        # Opening a pipe would block forever; a device could be endless.
        raise InputError(str(path), "不是普通文件（管道、设备或套接字），请给出录音文件本身")
    if st.st_size == 0:
        raise InputError(str(path), "文件为空（0 字节），请重新导出录音")
    if not os.access(path, os.R_OK):
        raise InputError(str(path), "没有读取权限，请检查文件权限")


def _open(path: Path):
    check_readable(path)
    try:
        # max_size: WAV packets of 64 KB instead of 4 KB; per-packet overhead, not the
        # samples, is most of the time spent decoding hours of PCM. Other formats ignore it.
        return av.open(str(path), mode="r", metadata_errors="ignore", options=_DEMUX_OPTIONS)
    except PermissionError as e:
        raise InputError(str(path), "没有读取权限，请检查文件权限") from e
    except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError) as e:
        raise InputError(str(path), _unopenable(path)) from e


def _unopenable(path: Path) -> str:
    """Why libavformat could not open the file, in the user's terms."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError:
        head = b""
    if head[4:8] == b"ftyp":  # MP4/M4A/3GP: the index (moov) is written when recording ends
        return "MP4/M4A 录音不完整（缺少索引，通常是录音没有正常结束或复制被中断），无法解码；请重新导出"
    if head.startswith(_MAGIC):
        return "音频文件已损坏或不完整（可能被截断），无法解码；请重新导出"
    return "不是可识别的音频文件（内容无法解析），请确认是通话录音"


def is_audio(path: str | os.PathLike) -> bool:
    """Cheap content check used when scanning folders."""
    return audio_problem(path) is None


def audio_problem(path: str | os.PathLike) -> str | None:
    """None when path opens as audio (content probed, not decoded), else why not: one line
    for the user."""
    try:
        with _open(Path(path)) as c:
            return None if c.streams.audio else "文件中没有音轨，请确认是通话录音"
    except InputError as e:
        return e.problem


def decode(path: str | os.PathLike) -> Audio:
    """The whole recording at 16 kHz float32; stereo with distinct parties stays as two
    channels. Long recordings: Recording(path).pieces()."""
    return next(Recording(path).pieces(seconds=math.inf))


class Recording:
    """An audio file: what the container says now, the samples piece by piece.

    Raises InputError at once for a file that is not audio. After pieces() has run to the
    end, `duration` is the decoded length and `warnings` says what was wrong but could be
    worked around (damaged packets, a truncated end, a recording too short to hold speech).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        with _Stream(self.path) as s:
            self.source_channels, self.source_rate = s.source_channels, s.source_rate
            self.codec, self.container, self.stated = s.codec, s.format, s.stated
        self.duration = 0.0
        self.warnings: list[str] = []

    def pieces(self, seconds: float | None = None) -> Iterator[Audio]:
        """Consecutive pieces of about `seconds` (default CHUNK_SECONDS); each Audio's .start
        is its offset. A file shorter than seconds (+ the cut search) comes as one piece.
        Holds about two pieces in memory whatever the length of the recording."""
        seconds = CHUNK_SECONDS if seconds is None else seconds
        if not seconds > 0:
            raise ValueError(f"piece length must be positive, not {seconds}")
        search = int(min(_CUT_SEARCH, seconds / 2) * SAMPLE_RATE)
        limit = seconds * SAMPLE_RATE
        split: bool | None = None
        offset = 0  # samples already handed out
        pending: list[np.ndarray] = []
        size = 0
        with _Stream(self.path) as stream:
            for block in stream.blocks():
                pending.append(block)
                size += block.shape[1]
                if size < limit + search:
                    continue
                data = np.concatenate(pending, axis=1)
                if split is None:
                    split = self._split(None)
                cut = _quiet_point(data, int(limit) - search, int(limit))
                yield self._piece(data[:, :cut], offset, split)
                offset += cut
                pending, size = [data[:, cut:]], data.shape[1] - cut
                del data
            warnings = stream.warnings
        data = np.concatenate(pending, axis=1) if pending else np.zeros((1, 0), np.float32)
        if split is None:
            split = self._split(data)
        self.duration = (offset + data.shape[1]) / SAMPLE_RATE
        if self.duration < _TOO_SHORT:
            warnings.append(f"录音只有 {self.duration:.1f} 秒，太短，无法识别出语音")
        for w in warnings:
            log.warning("%s: %s", self.path, w)
        self.warnings = warnings
        yield self._piece(data, offset, split)

    def _split(self, data: np.ndarray | None) -> bool:
        """One party per channel? Judged on the whole recording: on `data` when it is all of
        it, else in a separate decoding pass (cheap next to transcription)."""
        if self.source_channels != 2:
            return False
        similarity = _Similarity()
        if data is not None:
            similarity.add(data)
        else:
            with _Stream(self.path) as stream:
                for block in stream.blocks():
                    similarity.add(block)
        return not similarity.same_signal()

    def _piece(self, data: np.ndarray, offset: int, split: bool) -> Audio:
        if split:
            channels = [np.ascontiguousarray(c) for c in data]
        else:
            channels = [np.ascontiguousarray(data.mean(axis=0, dtype=np.float32))
                        if data.shape[0] > 1 else np.ascontiguousarray(data[0])]
        return Audio(channels, self.source_channels, self.source_rate, self.codec,
                     self.container, start=offset / SAMPLE_RATE)


class _Stream:
    """One decoding pass: blocks of (channels, n) float32 at 16 kHz, two rows for stereo."""

    def __init__(self, path: Path):
        self.path = path
        self._container = _open(path)
        try:
            if not self._container.streams.audio:
                raise InputError(str(path), "文件中没有音轨，请确认是通话录音")
            self._stream = self._container.streams.audio[0]
            ctx = self._stream.codec_context
            self.source_channels = ctx.channels or 1
            self.source_rate = ctx.sample_rate or 0
            self.codec = ctx.name
            self.format = self._container.format.name
            d = self._container.duration
            self.stated = float(d) / av.time_base if d else None
            self._check_wav_size()
        except BaseException:
            self._container.close()
            raise
        self.samples = 0
        self.warnings: list[str] = []

    def __enter__(self) -> _Stream:
        return self

    def __exit__(self, *exc) -> None:
        self._container.close()

    def _check_wav_size(self) -> None:
        # libavformat derives a WAV's duration from the file size, which hides truncation;
        # the header states the real length.
        declared, available = _wav_lengths(self.path)
        if declared and declared > 2.0 and available < 0.9 * declared:
            raise InputError(
                str(self.path),
                f"文件被截断：只能解码 {available:.1f} 秒，文件头标明 {declared:.1f} 秒，请重新导出",
            )

    def blocks(self) -> Iterator[np.ndarray]:
        # Files with more than two channels are not call recorders' one-party-per-channel
        # layout: mix them down.
        layout = "stereo" if self.source_channels == 2 else "mono"
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=SAMPLE_RATE)
        errors, last_failed = 0, False
        try:
            for packet in self._container.demux(self._stream):
                try:
                    frames = packet.decode()
                except av.error.InvalidDataError:
                    # A damaged packet or two is common in phone files; skip it.
                    errors += 1
                    last_failed = True
                    if errors > 50:
                        raise
                    continue
                if packet.size:
                    last_failed = False
                for frame in frames:
                    frame.pts = None  # resampler rejects some phones' non-monotonic pts
                    for out in resampler.resample(frame):
                        yield self._count(out.to_ndarray())
            for out in resampler.resample(None):
                yield self._count(out.to_ndarray())
        except (av.error.FFmpegError, ValueError) as e:
            if not self.samples:
                raise InputError(str(self.path), "音频数据损坏或文件被截断，无法解码") from e
            self.warnings.append(
                f"文件在 {self.samples / SAMPLE_RATE:.1f} 秒处损坏，已分析此前可解码的部分")
        if not self.samples:
            raise InputError(str(self.path), "没有可解码的音频（文件可能被截断），请重新导出录音")
        decoded = self.samples / SAMPLE_RATE
        # Stated lengths of other containers are estimates for some files (VBR mp3): only a
        # large gap is an error; a smaller one is worth a warning (truncated copy).
        if self.stated and self.stated > 2.0 and decoded < 0.9 * self.stated:
            if decoded < 0.5 * self.stated:
                raise InputError(
                    str(self.path),
                    f"文件被截断：只能解码 {decoded:.1f} 秒，文件头标明 {self.stated:.1f} 秒，请重新导出",
                )
            self.warnings.append(
                f"录音可能不完整：只解码出 {decoded:.1f} 秒，文件头标明 {self.stated:.1f} 秒；已分析可解码的部分")
        if errors and last_failed:
            self.warnings.append(f"文件末尾不完整（可能被截断），已分析可解码的 {decoded:.1f} 秒")
        elif errors:
            self.warnings.append(f"跳过了 {errors} 个损坏的数据包")

    def _count(self, block: np.ndarray) -> np.ndarray:
        self.samples += block.shape[1]
        return block.astype(np.float32, copy=False)


def _quiet_point(data: np.ndarray, lo: int, hi: int) -> int:
    """Sample index in [lo, hi) at the middle of the quietest 0.1 s (all channels)."""
    win = SAMPLE_RATE // 10
    n = (hi - lo) // win
    if n < 1:
        return hi
    level = np.abs(data[:, lo : lo + n * win]).mean(axis=0).reshape(n, win).mean(axis=1)
    return lo + int(np.argmin(level)) * win + win // 2


def _wav_lengths(path: Path) -> tuple[float | None, float]:
    """(seconds a WAV header promises, seconds the file holds). (None, 0) when not a WAV or
    when the recorder never finalized the header."""
    with open(path, "rb") as f:
        head = f.read(4096)
    if len(head) < 44 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None, 0.0
    pos, byte_rate = 12, 0
    while pos + 8 <= len(head):
        cid, size = head[pos : pos + 4], int.from_bytes(head[pos + 4 : pos + 8], "little")
        if cid == b"fmt " and pos + 16 <= len(head):
            byte_rate = int.from_bytes(head[pos + 16 : pos + 20], "little")
        if cid == b"data":
            if not byte_rate or size in (0, 0xFFFFFFFF):
                return None, 0.0
            available = max(0, path.stat().st_size - (pos + 8))
            return size / byte_rate, min(size, available) / byte_rate
        pos += 8 + size + (size & 1)
    return None, 0.0


@dataclass
class _Similarity:
    """Running sums over a stereo recording, enough to tell one mix recorded twice (copies,
    or one side silent) from one party per channel without holding the samples."""

    n: int = 0
    sums: np.ndarray = field(default_factory=lambda: np.zeros(5))  # a, b, aa, bb, ab
    max_diff: float = 0.0

    def add(self, block: np.ndarray) -> None:
        a, b = block[0].astype(np.float64), block[1].astype(np.float64)
        self.n += len(a)
        self.sums += (a.sum(), b.sum(), a @ a, b @ b, a @ b)
        if len(a):
            self.max_diff = max(self.max_diff, float(np.abs(a - b).max()))

    def same_signal(self) -> bool:
        if not self.n:
            return True
        sa, sb, saa, sbb, sab = self.sums / self.n
        var_a, var_b = max(saa - sa * sa, 0.0), max(sbb - sb * sb, 0.0)
        if min(var_a, var_b) < 1e-8:  # std below 1e-4: one side silent
            return True
        if self.max_diff <= 1e-3:
            return True
        return (sab - sa * sb) / math.sqrt(var_a * var_b) > _DUAL_MONO_CORRELATION
