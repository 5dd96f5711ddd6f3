"""The embedded Whisper model on real speech, silence and noise, in both decoding modes.

Speech: the first turns of a bundled sample call (synthetic Mandarin, telephone band), cut
where samples/labels.json says they are, with the script's text as reference.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from analyzer import asr
from analyzer.asr import AsrOptions, WhisperTranscriber, clean_asr_text
from analyzer.audio import SAMPLE_RATE, decode
from analyzer.text import to_simplified

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def _letters(text: str) -> str:
    return "".join(c for c in to_simplified(text) if c.isalnum())


def _cer(ref: str, hyp: str) -> float:
    ref, hyp = _letters(ref), _letters(hyp)
    row = list(range(len(hyp) + 1))
    for i in range(1, len(ref) + 1):
        prev, row[0] = row[0], i
        for j in range(1, len(hyp) + 1):
            cur = row[j]
            row[j] = min(row[j] + 1, row[j - 1] + 1, prev + (ref[i - 1] != hyp[j - 1]))
            prev = cur
    return row[-1] / max(1, len(ref))


def test_cer_helper():
    assert _cer("请问是王先生吗", "请问是王先生吗？") == 0
    assert _cer("请问是王先生吗", "请问是黄先生") == pytest.approx(2 / 7)


@pytest.fixture(scope="module")
def speech():
    """(samples, reference text): the first two turns of the first mono sample call."""
    labels = SAMPLES / "labels.json"
    if not labels.is_file():
        pytest.skip("samples/labels.json not present")
    calls = json.loads(labels.read_text(encoding="utf-8"))["calls"]
    call = next(c for c in calls if c["channels"] == 1 and len(c["turns"]) >= 2)
    turns = call["turns"][:2]
    audio = decode(SAMPLES / call["file"]).mono()
    lo = max(0, int((turns[0]["start"] - 0.3) * SAMPLE_RATE))
    hi = int((turns[1]["end"] + 0.3) * SAMPLE_RATE)
    return audio[lo:hi], "".join(t["text"] for t in turns)


@pytest.fixture(scope="module")
def sequential():
    return WhisperTranscriber(AsrOptions(batch_size=0), postprocess=clean_asr_text)


@pytest.fixture(scope="module")
def batched():
    return WhisperTranscriber(AsrOptions(batch_size=4), postprocess=clean_asr_text)


def _check_segments(segments, reference: str, duration: float, channel):
    assert segments, "no speech recognized"
    for s in segments:
        assert s.channel == channel
        assert 0.0 <= s.start < s.end <= duration + 0.5
        assert s.text and s.text == s.text.strip()
        assert to_simplified(s.text) == s.text, f"not Simplified: {s.text}"
        assert s.avg_logprob <= 0.0 and 0.0 <= s.no_speech_prob <= 1.0
    assert [s.start for s in segments] == sorted(s.start for s in segments)
    text = "".join(s.text for s in segments)
    # Whisper base reads these turns with a CER of about 0.1; 0.35 means it heard the call.
    assert _cer(reference, text) < 0.35, text


@pytest.mark.slow
def test_sequential_real_speech(sequential, speech):
    audio, reference = speech
    segments = sequential.transcribe(audio, channel=1)
    _check_segments(segments, reference, len(audio) / SAMPLE_RATE, channel=1)


@pytest.mark.slow
def test_batched_real_speech(batched, speech):
    audio, reference = speech
    segments = batched.transcribe(audio, channel=None)
    _check_segments(segments, reference, len(audio) / SAMPLE_RATE, channel=None)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["sequential", "batched"])
def test_silence_and_noise_give_nothing(mode, request):
    transcriber = request.getfixturevalue(mode)
    silence = np.zeros(10 * SAMPLE_RATE, np.float32)
    noise = np.random.default_rng(0).normal(0, 0.1, 10 * SAMPLE_RATE).astype(np.float32)
    assert transcriber.transcribe(silence, None) == []
    assert transcriber.transcribe(noise, 0) == []
    assert transcriber.transcribe(np.zeros(SAMPLE_RATE // 8, np.float32), None) == []


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["sequential", "batched"])
def test_postprocess_hook_applies_to_every_segment(mode, request, speech, monkeypatch):
    transcriber = request.getfixturevalue(mode)
    audio, _ = speech
    monkeypatch.setattr(transcriber, "postprocess", lambda raw: "【" + raw.strip())
    marked = transcriber.transcribe(audio, None)
    assert marked and all(s.text.startswith("【") for s in marked)
    # None means "hallucination, drop it": every segment goes.
    monkeypatch.setattr(transcriber, "postprocess", lambda raw: None)
    assert transcriber.transcribe(audio, None) == []


@pytest.mark.slow
def test_thread_count_does_not_change_transcripts(speech):
    """cpu_threads is left out of the cache key: check that it only changes speed."""
    audio, _ = speech
    one = WhisperTranscriber(AsrOptions(cpu_threads=1), postprocess=clean_asr_text)
    two = WhisperTranscriber(AsrOptions(cpu_threads=2), postprocess=clean_asr_text)
    assert one.transcribe(audio, None) == two.transcribe(audio, None)
    assert one.info == two.info


def test_settings_in_cache_key():
    seq = WhisperTranscriber(AsrOptions(batch_size=0)).info.settings
    bat = WhisperTranscriber(AsrOptions(batch_size=8)).info.settings
    no_vad = WhisperTranscriber(AsrOptions(batch_size=8, vad=False))
    assert "cpu_threads" not in seq
    assert seq["batch_size"] == 0 and "clips" not in seq
    assert bat["batch_size"] == 8 and bat["clips"]["max_seconds"] == asr.CLIP_SECONDS
    assert bat["initial_prompt"] == seq["initial_prompt"] == asr.INITIAL_PROMPT
    # Batched decoding needs VAD clips: without VAD it decodes sequentially, and says so.
    assert not no_vad.batched and no_vad.info.settings["batch_size"] == 0


def test_speech_clips_cut_at_pauses(speech):
    audio, _ = speech
    clips = asr.speech_clips(audio)
    assert clips
    flat = [r for c in clips for r in c]
    assert flat == sorted(flat)
    for clip in clips:
        assert clip[-1][1] - clip[0][0] <= asr.CLIP_SECONDS + 1e-6
        for (_, end), (start, _) in zip(clip, clip[1:], strict=False):
            assert start - end <= asr.CLIP_JOIN_GAP + 1e-6
    for a, b in zip(clips, clips[1:], strict=False):
        assert b[0][0] - a[-1][1] > asr.CLIP_JOIN_GAP or b[-1][1] - a[0][0] > asr.CLIP_SECONDS
    assert asr.speech_clips(np.zeros(5 * SAMPLE_RATE, np.float32)) == []


def _seg(start, end, text):
    return SimpleNamespace(start=start, end=end, text=text, words=None,
                           avg_logprob=-0.2, no_speech_prob=0.01)


class _FakePipeline:
    """Stands in for BatchedInferencePipeline: a clip of two or more regions 'stops short'
    (decodes to one character), a clip of one region decodes to its own label."""

    def __init__(self, clips_seen):
        self.clips_seen = clips_seen

    def transcribe(self, audio, clip_timestamps, **kwargs):
        self.clips_seen.append([(c["start"], c["end"]) for c in clip_timestamps])
        out = []
        for c in clip_timestamps:
            two_regions = c["end"] - c["start"] > 5
            out.append(_seg(c["start"] - 0.005, c["end"], "喂" if two_regions else f"第{c['start']:.0f}秒说了一句完整的话"))
        return out, None


def test_clip_cut_short_is_split_and_decoded_again(monkeypatch):
    t = WhisperTranscriber(AsrOptions(batch_size=4))
    regions = [[(0.0, 4.0), (4.2, 8.0)], [(20.0, 23.0)]]
    monkeypatch.setattr(asr, "speech_clips", lambda audio: regions)
    seen: list = []
    t._pipeline = _FakePipeline(seen)
    out = t._decode_batched(np.zeros(30 * SAMPLE_RATE, np.float32))
    assert seen == [[(0.0, 8.0), (20.0, 23.0)], [(0.0, 4.0), (4.2, 8.0)]]
    assert [s.text for s in out] == ["第0秒说了一句完整的话", "第4秒说了一句完整的话", "第20秒说了一句完整的话"]


def test_segments_assigned_to_their_clip():
    clips = [[(1.0, 3.0)], [(5.0, 9.0)], [(9.6, 12.0)]]
    segs = [_seg(0.99, 2.9, "a"), _seg(4.99, 7.0, "b"), _seg(7.0, 9.0, "c"), _seg(9.59, 12.0, "d")]
    grouped = asr._by_clip(segs, clips)
    assert [[s.text for s in g] for g in grouped] == [["a"], ["b", "c"], ["d"]]
    assert asr._cut_short([(0.0, 10.0)], [_seg(0, 10, "只有五个字")])
    assert not asr._cut_short([(0.0, 4.0)], [_seg(0, 4, "四秒钟八个字了")])
