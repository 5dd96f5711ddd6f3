"""Write real audio files in the formats phones produce (PyAV encoders), for tests."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

# (container format, codec, sample rate forced by the codec or None)
PHONE_FORMATS: dict[str, tuple[str, str, int | None]] = {
    "wav": ("wav", "pcm_s16le", None),
    "mp3": ("mp3", "libmp3lame", None),
    "m4a": ("ipod", "aac", None),
    "aac": ("adts", "aac", None),
    "amr": ("amr", "libopencore_amrnb", 8000),
    "3gp": ("3gp", "libopencore_amrnb", 8000),
    "ogg": ("ogg", "libopus", 48000),
    "opus": ("opus", "libopus", 48000),
    "flac": ("flac", "flac", None),
}


def _resample_linear(x: np.ndarray, src: int, dst: int) -> np.ndarray:
    if src == dst:
        return x
    n = int(round(x.shape[-1] * dst / src))
    t_src = np.arange(x.shape[-1]) / src
    t_dst = np.arange(n) / dst
    return np.stack([np.interp(t_dst, t_src, ch) for ch in np.atleast_2d(x)])


def write_audio(path: Path, samples: np.ndarray, rate: int, kind: str) -> Path:
    """samples: float32 in [-1, 1], shape (n,) or (channels, n)."""
    fmt, codec, forced_rate = PHONE_FORMATS[kind]
    data = np.atleast_2d(samples).astype(np.float32)
    if forced_rate and forced_rate != rate:
        data = _resample_linear(data, rate, forced_rate).astype(np.float32)
        rate = forced_rate
    channels = data.shape[0]
    if codec == "libopencore_amrnb" and channels != 1:
        raise ValueError("AMR-NB is mono")
    layout = "stereo" if channels == 2 else "mono"
    pcm = (np.clip(data, -1, 1) * 32767).astype(np.int16)
    with av.open(str(path), mode="w", format=fmt) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        if codec == "libopencore_amrnb":
            stream.bit_rate = 12200
        frame_size = stream.codec_context.frame_size or 1024
        interleaved = pcm.T.reshape(1, -1)  # packed s16
        total = pcm.shape[1]
        pts = 0
        for start in range(0, total, frame_size):
            chunk = interleaved[:, start * channels : (start + frame_size) * channels]
            frame = av.AudioFrame.from_ndarray(chunk, format="s16", layout=layout)
            frame.sample_rate = rate
            frame.pts = pts
            frame.time_base = Fraction(1, rate)
            pts += chunk.shape[1] // channels
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def tone(seconds: float, rate: int = 16000, freq: float = 440.0, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)
