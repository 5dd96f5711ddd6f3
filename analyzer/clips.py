"""Evidence clips: cut each finding's stretch of the original recording into its own WAV.

Decoding uses PyAV (the machine has no ffmpeg binary, so pydub cannot decode by itself); the
samples become a pydub AudioSegment, cut sample-exactly and written as 16-bit PCM WAV, which
pydub writes without ffmpeg. Clips keep the recording's sample rate and channels.
"""

from __future__ import annotations

import io
import logging
import math
import warnings
from pathlib import Path

import av

from .errors import InputError
from .fileio import atomic_write_bytes
from .types import Finding

with warnings.catch_warnings():
    # pydub warns at import when no ffmpeg binary exists (we never ask it to run one) and
    # about the deprecated audioop module it falls back from on Python 3.13.
    warnings.simplefilter("ignore", RuntimeWarning)
    warnings.simplefilter("ignore", DeprecationWarning)
    from pydub import AudioSegment

log = logging.getLogger(__name__)


def decode(audio_path: Path | str) -> AudioSegment:
    """The whole recording as 16-bit PCM at its own rate and channel count."""
    path = Path(audio_path)
    chunks: list[bytes] = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise InputError(str(path), "文件中没有音频，请选择一个录音文件")
            stream = container.streams.audio[0]
            ctx = stream.codec_context
            channels = ctx.channels or 1
            rate = ctx.sample_rate
            layout = "mono" if channels == 1 else ("stereo" if channels == 2 else ctx.layout.name)
            resampler = av.AudioResampler(format="s16", layout=layout, rate=rate)
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().tobytes())
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().tobytes())
    except InputError:
        raise
    except (av.FFmpegError, OSError, ValueError) as err:
        raise InputError(str(path), f"无法解码音频（{err}），请确认文件是完整的录音") from err
    if not rate:
        raise InputError(str(path), "无法确定采样率，请确认文件是完整的录音")
    return AudioSegment(data=b"".join(chunks), sample_width=2, frame_rate=rate, channels=channels)


def wav_bytes(audio: AudioSegment) -> bytes:
    buf = io.BytesIO()
    audio.export(buf, format="wav")
    return buf.getvalue()


def clip_name(finding: Finding) -> str:
    """e.g. 0135-0142_threat.wav: minutes and seconds of start (floored) and end (rounded up)."""

    def mmss(seconds: int) -> str:
        return f"{seconds // 60:02d}{seconds % 60:02d}"

    start = max(0, math.floor(finding.start))
    end = max(start, math.ceil(finding.end))
    return f"{mmss(start)}-{mmss(end)}_{finding.category}.wav"


def cut_clips(
    audio_path: Path | str,
    findings: list[Finding],
    out_dir: Path | str,
    padding: float = 1.5,
) -> list[Path]:
    """Write one WAV per finding (its span plus `padding` seconds each side, clamped to the
    recording) into out_dir; returns the paths written, in the order of findings. Findings
    that lie entirely outside the recording are skipped."""
    if padding < 0:
        raise ValueError("padding must be >= 0")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if not findings:
        return []
    audio = decode(audio_path)
    rate = audio.frame_rate
    total = int(audio.frame_count())
    written: list[Path] = []
    used: set[str] = set()
    for finding in findings:
        first = max(0, round((finding.start - padding) * rate))
        last = min(total, round((finding.end + padding) * rate))
        if first >= last:
            log.warning("clip %s lies outside the recording; skipped", clip_name(finding))
            continue
        name = clip_name(finding)
        stem, n = name[:-4], 2
        while name in used:  # two findings of one category in the same seconds
            name, n = f"{stem}_{n}.wav", n + 1
        used.add(name)
        path = out / name
        atomic_write_bytes(path, wav_bytes(audio.get_sample_slice(first, last)))
        written.append(path)
    return written
