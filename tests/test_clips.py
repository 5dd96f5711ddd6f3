"""Evidence clips cut from real audio files: names, exact lengths, the very same samples."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
from audiofiles import tone, write_audio

from analyzer.clips import clip_name, cut_clips, decode
from analyzer.errors import InputError
from analyzer.types import Finding

RATE = 16000


def _finding(cat: str, start: float, end: float) -> Finding:
    return Finding(cat, start, end, 0.9, "high", ["词"], ["test"], "说明")


def write_wav(path: Path, samples: np.ndarray, rate: int = RATE) -> Path:
    """samples: int16, shape (n,) or (n, channels)."""
    channels = 1 if samples.ndim == 1 else samples.shape[1]
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())
    return path


def read_wav(path: Path) -> tuple[np.ndarray, int, int]:
    with wave.open(str(path), "rb") as w:
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        return data.reshape(-1, w.getnchannels()), w.getframerate(), w.getnchannels()


@pytest.fixture
def noise_wav(tmp_path) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(7)
    samples = rng.integers(-20000, 20000, size=RATE * 130, dtype=np.int16)  # 2:10 of noise
    return write_wav(tmp_path / "call.wav", samples), samples


def test_clip_names_use_minutes_seconds_and_category():
    assert clip_name(_finding("threat", 95.3, 101.2)) == "0135-0142_threat.wav"
    assert clip_name(_finding("insult", 0.0, 4.0)) == "0000-0004_insult.wav"
    assert clip_name(_finding("harassment", 3599.5, 3601.0)) == "5959-6001_harassment.wav"


def test_clips_hold_exactly_the_padded_span(tmp_path, noise_wav):
    wav, samples = noise_wav
    findings = [_finding("threat", 95.3, 101.2), _finding("insult", 110.0, 112.5)]
    paths = cut_clips(wav, findings, tmp_path / "clips", padding=1.5)
    assert [p.name for p in paths] == ["0135-0142_threat.wav", "0150-0153_insult.wav"]
    for path, (a, b) in zip(paths, [(93.8, 102.7), (108.5, 114.0)], strict=True):
        data, rate, channels = read_wav(path)
        assert (rate, channels) == (RATE, 1)
        first, last = round(a * RATE), round(b * RATE)
        assert len(data) == last - first  # exact duration, to the sample
        assert np.array_equal(data[:, 0], samples[first:last])  # the very same samples


def test_padding_is_clamped_at_both_ends(tmp_path, noise_wav):
    wav, samples = noise_wav
    paths = cut_clips(wav, [_finding("threat", 0.5, 2.0), _finding("insult", 128.0, 130.0)],
                      tmp_path, padding=3.0)
    start_clip, end_clip = (read_wav(p)[0] for p in paths)
    assert len(start_clip) == 5 * RATE and np.array_equal(start_clip[:, 0], samples[: 5 * RATE])
    assert len(end_clip) == 5 * RATE and np.array_equal(end_clip[:, 0], samples[-5 * RATE :])


def test_same_second_same_category_gets_distinct_names(tmp_path, noise_wav):
    wav, _ = noise_wav
    paths = cut_clips(wav, [_finding("threat", 10.1, 12.2), _finding("threat", 10.4, 12.9)], tmp_path)
    assert [p.name for p in paths] == ["0010-0013_threat.wav", "0010-0013_threat_2.wav"]
    assert len(read_wav(paths[1])[0]) == round(14.4 * RATE) - round(8.9 * RATE)


def test_finding_outside_the_recording_is_skipped(tmp_path, noise_wav):
    wav, _ = noise_wav
    assert cut_clips(wav, [_finding("threat", 200.0, 205.0)], tmp_path / "c", padding=0) == []


def test_stereo_recording_keeps_both_channels(tmp_path):
    left = np.arange(RATE * 4, dtype=np.int64) % 30000
    stereo = np.stack([left, -left], axis=1).astype(np.int16)
    wav = write_wav(tmp_path / "stereo.wav", stereo)
    (path,) = cut_clips(wav, [_finding("insult", 1.0, 2.0)], tmp_path / "c", padding=0.25)
    data, rate, channels = read_wav(path)
    assert channels == 2 and len(data) == round(1.5 * RATE)
    assert np.array_equal(data, stereo[round(0.75 * RATE) : round(2.25 * RATE)])


def test_compressed_phone_format_is_decoded(tmp_path):
    amr = write_audio(tmp_path / "call.amr", tone(6.0, rate=8000), 8000, "amr")
    (path,) = cut_clips(amr, [_finding("threat", 2.0, 3.0)], tmp_path / "c", padding=1.0)
    data, rate, channels = read_wav(path)
    assert (rate, channels) == (8000, 1)
    assert len(data) == 3 * 8000
    assert np.abs(data).max() > 1000  # real sound, not silence


def test_no_temp_files_left(tmp_path, noise_wav):
    wav, _ = noise_wav
    out = tmp_path / "c"
    cut_clips(wav, [_finding("threat", 1.0, 2.0)], out)
    assert [p.name for p in out.iterdir()] == ["0001-0002_threat.wav"]


def test_unreadable_file_is_an_input_error(tmp_path):
    bad = tmp_path / "broken.m4a"
    bad.write_bytes(b"not audio at all" * 10)
    with pytest.raises(InputError, match="broken.m4a"):
        cut_clips(bad, [_finding("threat", 1.0, 2.0)], tmp_path / "c")
    with pytest.raises(InputError):
        decode(tmp_path / "missing.wav")


def test_no_findings_no_decoding(tmp_path):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"junk")
    assert cut_clips(bad, [], tmp_path / "c") == []
