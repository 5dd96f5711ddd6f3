import os
import shutil

import numpy as np
import pytest
from audiofiles import PHONE_FORMATS, tone, write_audio

from analyzer.audio import SAMPLE_RATE, decode, is_audio
from analyzer.errors import InputError


def _amr_wb_bytes(seconds: float) -> bytes:
    """A raw AMR-WB stream (PyAV has no AMR-WB encoder): mode-8 frames, 20 ms each."""
    rng = np.random.default_rng(0)
    frames = int(seconds / 0.02)
    body = b"".join(bytes([0x44]) + rng.integers(0, 256, 60, dtype=np.uint8).tobytes() for _ in range(frames))
    return b"#!AMR-WB\n" + body


@pytest.mark.parametrize("kind", sorted(PHONE_FORMATS))
def test_phone_formats_decode_to_16k_with_duration(tmp_path, kind):
    path = write_audio(tmp_path / f"call.{kind}", tone(3.0, 22050), 22050, kind)
    audio = decode(path)
    assert len(audio.channels) == 1
    assert audio.channels[0].dtype == np.float32
    assert abs(audio.duration - 3.0) < 0.1
    # the tone survives the codec: energy present, not clipped to silence
    assert 0.05 < float(np.abs(audio.channels[0]).max()) <= 1.5


def test_amr_wb_decodes(tmp_path):
    path = tmp_path / "call.amr"
    path.write_bytes(_amr_wb_bytes(2.0))
    audio = decode(path)
    assert audio.codec == "amrwb" and audio.source_rate == 16000
    assert abs(audio.duration - 2.0) < 0.05


@pytest.mark.parametrize("rate", [8000, 11025, 22050, 44100, 48000])
def test_any_sample_rate(tmp_path, rate):
    audio = decode(write_audio(tmp_path / "x.wav", tone(2.0, rate), rate, "wav"))
    assert abs(len(audio.channels[0]) - 2 * SAMPLE_RATE) < SAMPLE_RATE * 0.01


def test_format_judged_by_content_not_extension(tmp_path):
    mp3 = write_audio(tmp_path / "real.mp3", tone(2.0), 16000, "mp3")
    disguised = tmp_path / "looks_like.wav"
    shutil.copy(mp3, disguised)
    amr = write_audio(tmp_path / "real.amr", tone(2.0), 16000, "amr")
    disguised_amr = tmp_path / "recording.m4a"
    shutil.copy(amr, disguised_amr)
    assert decode(disguised).codec.startswith("mp3")
    assert decode(disguised_amr).codec == "amrnb"


@pytest.mark.parametrize("kind", ["wav", "m4a", "flac", "mp3"])
def test_stereo_parties_kept_apart(tmp_path, kind):
    rate = 16000
    left = tone(3.0, rate, 300)
    right = np.zeros_like(left)
    right[rate : 2 * rate] = tone(1.0, rate, 900)  # other party speaks only in second 1-2
    audio = decode(write_audio(tmp_path / f"st.{kind}", np.stack([left, right]), rate, kind))
    assert audio.split and len(audio.channels) == 2
    l_energy = np.abs(audio.channels[0][: rate // 2]).mean()
    r_energy = np.abs(audio.channels[1][: rate // 2]).mean()
    assert l_energy > 0.1 and r_energy < 0.02


def test_dual_mono_stereo_is_one_channel(tmp_path):
    x = tone(2.0)
    audio = decode(write_audio(tmp_path / "dual.wav", np.stack([x, x]), 16000, "wav"))
    assert not audio.split and audio.source_channels == 2


def test_six_channels_mixed_down(tmp_path):
    import av

    path = tmp_path / "surround.wav"
    with av.open(str(path), "w", format="wav") as out:
        s = out.add_stream("pcm_s16le", rate=48000, layout="5.1")
        data = (np.tile(tone(1.0, 48000), (6, 1)) * 32767).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(data.T.reshape(1, -1), format="s16", layout="5.1")
        frame.sample_rate = 48000
        for p in s.encode(frame):
            out.mux(p)
        for p in s.encode(None):
            out.mux(p)
    audio = decode(path)
    assert audio.source_channels == 6 and len(audio.channels) == 1
    assert abs(audio.duration - 1.0) < 0.05


def _expect_error(path, *words):
    with pytest.raises(InputError) as info:
        decode(path)
    msg = str(info.value)
    assert str(path) in msg
    for w in words:
        assert w in msg
    assert "\n" not in msg


def test_empty_file(tmp_path):
    p = tmp_path / "empty.mp3"
    p.write_bytes(b"")
    _expect_error(p, "为空")


def test_missing_file(tmp_path):
    _expect_error(tmp_path / "nope.amr", "不存在")


def test_text_file_with_audio_extension(tmp_path):
    p = tmp_path / "notes.m4a"
    p.write_text("这不是录音，是一段文字。\n" * 50, encoding="utf-8")
    _expect_error(p, "音频")
    assert not is_audio(p)


def test_random_bytes(tmp_path):
    p = tmp_path / "noise.amr"
    p.write_bytes(np.random.default_rng(1).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    _expect_error(p)


def test_truncated_m4a(tmp_path):
    full = write_audio(tmp_path / "full.m4a", tone(5.0), 16000, "m4a")
    cut = tmp_path / "cut.m4a"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    _expect_error(cut)


def test_truncated_wav_header_claims_more(tmp_path):
    full = write_audio(tmp_path / "full.wav", tone(10.0), 16000, "wav")
    cut = tmp_path / "cut.wav"
    cut.write_bytes(full.read_bytes()[:2000])
    _expect_error(cut, "截断")


def test_directory_is_not_a_recording(tmp_path):
    _expect_error(tmp_path, "文件夹")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path):
    p = write_audio(tmp_path / "locked.mp3", tone(1.0), 16000, "mp3")
    p.chmod(0)
    try:
        _expect_error(p, "权限")
    finally:
        p.chmod(0o644)
