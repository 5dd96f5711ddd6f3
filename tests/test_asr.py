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
    """(samples, reference text, turn starts in the clip): the first two turns of the first
    mono sample call."""
    labels = SAMPLES / "labels.json"
    if not labels.is_file():
        pytest.skip("samples/labels.json not present")
    calls = json.loads(labels.read_text(encoding="utf-8"))["calls"]
    call = next(c for c in calls if c["channels"] == 1 and len(c["turns"]) >= 2)
    turns = call["turns"][:2]
    audio = decode(SAMPLES / call["file"]).mono()
    lo = max(0, int((turns[0]["start"] - 0.3) * SAMPLE_RATE))
    hi = int((turns[1]["end"] + 0.3) * SAMPLE_RATE)
    starts = [t["start"] - lo / SAMPLE_RATE for t in turns]
    return audio[lo:hi], "".join(t["text"] for t in turns), starts


@pytest.fixture(scope="module")
def sequential():
    return WhisperTranscriber(AsrOptions(batch_size=0), postprocess=clean_asr_text)


@pytest.fixture(scope="module")
def batched():
    return WhisperTranscriber(AsrOptions(batch_size=4), postprocess=clean_asr_text)


def _check_segments(segments, speech, channel, tolerance):
    audio, reference, starts = speech
    duration = len(audio) / SAMPLE_RATE
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
    # Two turns, two voices, a short pause between: a segment starts near the second turn
    # (batched: at the pause; sequential: at Whisper's own, coarser, segment time).
    assert len(segments) >= 2
    assert min(abs(s.start - starts[1]) for s in segments) < tolerance, [s.start for s in segments]


@pytest.mark.slow
def test_sequential_real_speech(sequential, speech):
    segments = sequential.transcribe(speech[0], channel=1)
    _check_segments(segments, speech, channel=1, tolerance=2.5)


@pytest.mark.slow
def test_batched_real_speech(batched, speech):
    segments = batched.transcribe(speech[0], channel=None)
    _check_segments(segments, speech, channel=None, tolerance=1.0)


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
    audio = speech[0]
    monkeypatch.setattr(transcriber, "postprocess", lambda raw: "【" + raw.strip())
    marked = transcriber.transcribe(audio, None)
    assert marked and all(s.text.startswith("【") for s in marked)
    # None means "hallucination, drop it": every segment goes.
    monkeypatch.setattr(transcriber, "postprocess", lambda raw: None)
    assert transcriber.transcribe(audio, None) == []


@pytest.mark.slow
def test_thread_count_does_not_change_transcripts(speech):
    """cpu_threads is left out of the cache key: check that it only changes speed."""
    audio = speech[0]
    one = WhisperTranscriber(AsrOptions(cpu_threads=1), postprocess=clean_asr_text)
    two = WhisperTranscriber(AsrOptions(cpu_threads=2), postprocess=clean_asr_text)
    assert one.transcribe(audio, None) == two.transcribe(audio, None)
    assert one.info == two.info


def test_settings_in_cache_key():
    seq = WhisperTranscriber(AsrOptions(batch_size=0)).info.settings
    bat = WhisperTranscriber(AsrOptions(batch_size=8)).info.settings
    no_vad = WhisperTranscriber(AsrOptions(batch_size=8, vad=False))
    assert "cpu_threads" not in seq
    assert seq["batch_size"] == 0 and bat["batch_size"] == 8
    assert bat["segmenter"] == seq["segmenter"]
    assert seq["segmenter"]["clip_seconds"] == asr.CLIP_SECONDS
    assert bat["initial_prompt"] == seq["initial_prompt"] == asr.INITIAL_PROMPT
    # Batched decoding needs VAD clips: without VAD it decodes sequentially, and says so.
    assert not no_vad.batched and no_vad.info.settings["batch_size"] == 0


@pytest.mark.parametrize("seconds, gap", [(asr.CLIP_SECONDS, asr.CLIP_JOIN_GAP),
                                          (asr.REPAIR_CLIP_SECONDS, asr.REPAIR_JOIN_GAP),
                                          (3.0, 0.2)])
def test_clips_of_speech_regions_cut_at_pauses(speech, seconds, gap):
    regions = asr.speech_regions(speech[0])
    assert all(b - a <= asr.REGION_SECONDS + 1e-6 for a, b in regions)
    clips = asr._clips(regions, seconds, gap)
    assert clips
    flat = [r for c in clips for r in c]
    assert flat == regions
    for clip in clips:
        assert len(clip) == 1 or clip[-1][1] - clip[0][0] <= seconds + 1e-6
        for (_, end), (start, _) in zip(clip, clip[1:], strict=False):
            assert start - end <= gap + 1e-6
    for a, b in zip(clips, clips[1:], strict=False):
        assert b[0][0] - a[-1][1] > gap or b[-1][1] - a[0][0] > seconds
    assert asr._clips(asr.speech_regions(np.zeros(5 * SAMPLE_RATE, np.float32))) == []


def test_clips_join_regions_up_to_the_limit():
    regions = [(0.0, 10.0), (10.5, 20.0), (21.8, 26.0), (26.2, 31.0), (31.5, 33.0)]
    # The pause of 1.8 s (20.0-21.8) starts a new clip.
    assert asr._clips(regions, 28.0, 1.0) == [[(0.0, 10.0), (10.5, 20.0)],
                                             [(21.8, 26.0), (26.2, 31.0), (31.5, 33.0)]]
    # 15 s clips: 10.5-20.0 cannot join 0-10 (20 s long), nor 21.8-26.0 join it (15.5 s).
    assert asr._clips(regions, 15.0, 2.0) == [[(0.0, 10.0)], [(10.5, 20.0)],
                                             [(21.8, 26.0), (26.2, 31.0), (31.5, 33.0)]]


def test_default_is_batched_clips():
    t = WhisperTranscriber()
    assert t.options.batch_size > 0 and t.batched


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


def test_clip_cut_short_is_split_and_decoded_again():
    t = WhisperTranscriber(AsrOptions(batch_size=4))
    clips = [[(0.0, 4.0), (4.2, 8.0)], [(20.0, 23.0)]]
    seen: list = []
    t._pipelines[AsrOptions().window_step] = _FakePipeline(seen)
    out = t._decode_clips(np.zeros(30 * SAMPLE_RATE, np.float32), clips)
    # Each clip takes in up to CLIP_PAD_SECONDS around it, never past half the pause to its
    # neighbour: the halves of a split clip meet in the middle of the pause between them.
    pad = asr.CLIP_PAD_SECONDS
    assert pad > 0.1
    assert seen == [[(0.0, 8.0 + pad), (20.0 - pad, 23.0 + pad)], [(0.0, 4.1), (4.1, 8.0 + pad)]]
    assert [s.text for s in out] == ["第0秒说了一句完整的话", "第4秒说了一句完整的话", "第20秒说了一句完整的话"]


class _LoopingPipeline(_FakePipeline):
    """A clip of two or more regions loops after a few words, as Whisper base did on 26 s of
    eval/holdout6 o07 ("拐彎抹脚下押押押…"); a clip of one region decodes whole."""

    def transcribe(self, audio, clip_timestamps, **kwargs):
        self.clips_seen.append([(c["start"], c["end"]) for c in clip_timestamps])
        return [_seg(c["start"] - 0.005, c["end"],
                     "拐弯抹脚下" + "押" * 200 if c["end"] - c["start"] > 5
                     else f"第{c['start']:.0f}秒说了一句完整的话") for c in clip_timestamps], None


def test_clip_that_loops_is_split_and_decoded_again():
    """A looping clip has hundreds of characters, but only those before the loop are speech:
    it is too short for its 8 s and is decoded again in halves, not dropped as a loop."""
    t = WhisperTranscriber(AsrOptions(batch_size=4))
    seen: list = []
    t._pipelines[AsrOptions().window_step] = _LoopingPipeline(seen)
    out = t._decode_clips(np.zeros(30 * SAMPLE_RATE, np.float32), [[(0.0, 4.0), (4.2, 8.0)]])
    assert len(seen) == 2 and len(seen[1]) == 2
    assert [s.text for s in out] == ["第0秒说了一句完整的话", "第4秒说了一句完整的话"]


def test_default_decoding_sends_clips_with_hotwords_and_no_timestamps(monkeypatch):
    """The default path: regions joined into clips (pause <= 1 s, <= 28 s), all clips in one
    call, each with the prompt and the domain hotwords, one text per clip."""
    t = WhisperTranscriber(AsrOptions(), hotwords="验证码、通讯录。")
    regions = [(0.5, 2.0), (2.4, 4.0), (6.0, 7.5), (8.0, 10.0)]
    monkeypatch.setattr(asr, "speech_regions", lambda audio: regions)
    seen: list = []
    fake = _FakePipeline(seen)
    kwargs: list = []
    real = fake.transcribe
    fake.transcribe = lambda audio, **kw: kwargs.append(kw) or real(audio, **kw)
    t._pipelines[AsrOptions().window_step] = fake
    t.transcribe(np.zeros(15 * SAMPLE_RATE, np.float32), channel=None)
    # 4.0 -> 6.0 is a pause of 2 s: two clips, each short enough for the fake to read whole.
    pad = asr.CLIP_PAD_SECONDS
    assert seen == [[(0.5 - pad, 4.0 + pad), (6.0 - pad, 10.0 + pad)]]
    (kw,) = kwargs
    assert kw["hotwords"] == "验证码、通讯录。" and kw["initial_prompt"] == asr.INITIAL_PROMPT
    assert kw["without_timestamps"] is True and kw["batch_size"] == AsrOptions().batch_size



@pytest.mark.parametrize("regions, whole", [
    ([(0.5, 2.0), (2.4, 4.0)], True),  # one clip (pause under 1 s): nothing to batch with
    ([(0.5, 2.0), (6.0, 7.5)], False),  # two clips: the stepped window
])
def test_recording_of_one_clip_keeps_the_whole_window(regions, whole, monkeypatch):
    t = WhisperTranscriber(AsrOptions())
    monkeypatch.setattr(asr, "speech_regions", lambda audio: regions)
    stepped: list = []
    full: list = []
    t._pipelines[AsrOptions().window_step] = _FakePipeline(stepped)
    t._pipelines[0.0] = _FakePipeline(full)
    out = t.transcribe(np.zeros(10 * SAMPLE_RATE, np.float32), channel=None)
    assert out
    assert (len(full), len(stepped)) == ((1, 0) if whole else (0, 1))


def test_whole_window_pipeline_reads_30_seconds():
    """The pipeline a one-clip recording uses does not cut the encoder input."""
    from faster_whisper import BatchedInferencePipeline

    class _Model:
        frames_per_second = 100

    assert type(asr._pipeline(_Model(), 0.0)) is BatchedInferencePipeline
    assert type(asr._pipeline(_Model(), 10.0)) is not BatchedInferencePipeline

def _padded(lengths: list[int], frames: int = 3000) -> np.ndarray:
    """Features as faster-whisper stacks them: each clip's frames, then zeros to 30 s."""
    rng = np.random.default_rng(0)
    out = np.zeros((len(lengths), 80, frames), np.float32)
    for i, n in enumerate(lengths):
        out[i, :, :n] = rng.uniform(-1.0, 1.0, (80, n))
    return out


@pytest.mark.parametrize("lengths, step, frames", [
    ([1234, 456], 1000, 2000),  # the longest clip decides, rounded up to 10 s
    ([1000], 1000, 1000),  # exactly on a step
    ([456], 100, 500),
    ([2999, 10], 1000, 3000),  # never past Whisper's window
    ([0], 1000, 1000),  # nothing but padding: one step
])
def test_window_cut_after_the_longest_clip(lengths, step, frames):
    feats = _padded(lengths)
    cut = asr.window_frames(feats, step)
    assert cut.shape == (len(lengths), 80, frames)
    np.testing.assert_array_equal(cut, feats[..., :frames])  # a cut, nothing moved
    assert cut.flags["C_CONTIGUOUS"]


def test_hallucination_filter_is_in_the_cache_key(tmp_path, monkeypatch):
    from analyzer import text

    def key():
        return WhisperTranscriber(AsrOptions(), postprocess=clean_asr_text).info.settings["postprocess"]

    shipped = key()
    assert shipped.startswith("clean_asr_text:v")
    # Another phrase list, or another filter version, renews cached transcripts.
    phrases = tmp_path / "hallucinations.txt"
    phrases.write_text("字幕由某某提供\n", encoding="utf-8")
    monkeypatch.setattr(text, "HALLUCINATIONS_PATH", phrases)
    edited = key()
    assert edited != shipped
    monkeypatch.setattr(text, "HALLUCINATION_FILTER_VERSION", text.HALLUCINATION_FILTER_VERSION + 1)
    assert key() not in (shipped, edited)
    assert WhisperTranscriber(AsrOptions()).info.settings["postprocess"] is None


def test_window_step_is_in_the_cache_key():
    short = WhisperTranscriber(AsrOptions()).info.settings
    whole = WhisperTranscriber(AsrOptions(window_step=0)).info.settings
    assert short["window_step"] == AsrOptions().window_step > 0
    assert whole["window_step"] == 0


@pytest.mark.slow
def test_batched_encoder_reads_only_the_clip_window(batched, speech, monkeypatch):
    """With the real model: a recording of several clips reaches the encoder in 10 s steps, not
    30 s; a recording that is one clip (two turns, a short pause) keeps the whole window. The
    text is read either way."""
    model = batched._get_model()
    shapes: list = []
    real = model.encode
    monkeypatch.setattr(model, "encode", lambda f: shapes.append(f.shape) or real(f))
    batched._pipelines.clear()  # built again around the patched model
    segments = batched.transcribe(speech[0], channel=None)
    assert shapes and all(s[-1] == 3000 for s in shapes)
    _check_segments(segments, speech, channel=None, tolerance=1.0)

    shapes.clear()
    # The same turns twice, 2 s of silence between (over CLIP_JOIN_GAP): two clips.
    gap = np.zeros(2 * SAMPLE_RATE, np.float32)
    twice = batched.transcribe(np.concatenate([speech[0], gap, speech[0]]), channel=None)
    step = round(AsrOptions().window_step * model.frames_per_second)
    assert shapes and all(s[-1] % step == 0 and s[-1] < 3000 for s in shapes)
    text = "".join(s.text for s in twice)
    assert _cer(speech[1] * 2, text) < 0.35, text


def test_clip_spans_stay_inside_their_limits():
    clips = [[(0.2, 3.0)], [(3.3, 9.0)], [(20.0, 25.0), (25.5, 29.9)]]
    limits = asr._limits(clips, 0.0, 30.0)
    assert limits == [(0.0, 3.15), (3.15, 14.5), (14.5, 30.0)]
    spans = [asr._span(c, lim, pad=0.5) for c, lim in zip(clips, limits, strict=True)]
    assert spans == [{"start": 0.0, "end": 3.15}, {"start": 3.15, "end": 9.5},
                     {"start": 19.5, "end": 30.0}]
    # A clip is never cut: a limit inside its speech leaves the speech whole.
    assert asr._span([(2.0, 5.0)], (3.0, 4.0), pad=0.5) == {"start": 2.0, "end": 5.0}


def test_repair_keeps_clips_inside_the_segment():
    t = WhisperTranscriber(AsrOptions())
    seen: list = []
    t._pipelines[AsrOptions().window_step] = _FakePipeline(seen)
    t._decode_clips(np.zeros(30 * SAMPLE_RATE, np.float32), [[(5.0, 7.0)], [(8.0, 9.5)]],
                    within=(4.8, 9.7))
    assert seen == [[(4.8, 7.5), (7.5, 9.7)]]


def test_segments_assigned_to_their_clip():
    clips = [[(1.0, 3.0)], [(5.0, 9.0)], [(9.6, 12.0)]]
    segs = [_seg(0.99, 2.9, "a"), _seg(4.99, 7.0, "b"), _seg(7.0, 9.0, "c"), _seg(9.59, 12.0, "d")]
    grouped = asr._by_clip(segs, clips)
    assert [[s.text for s in g] for g in grouped] == [["a"], ["b", "c"], ["d"]]
    assert asr._too_short("只有五个字", [(0.0, 10.0)])
    assert not asr._too_short("四秒钟说了十个字了吧", [(0.0, 4.0)])


def test_segment_with_skipped_speech_is_decoded_again():
    """Sequential Whisper sometimes ends a 30 s window after its first sentence: the segment
    spans 30 s of speech with one sentence of text. It is decoded again clip by clip."""
    t = WhisperTranscriber(AsrOptions())
    seen: list = []
    t._pipelines[AsrOptions().window_step] = _FakePipeline(seen)
    regions = [(0.5, 3.0), (3.4, 4.6), (20.0, 24.0), (24.2, 27.0)]
    skipped = _seg(0.5, 30.0, "您好，请问是王先生吗？")
    fine = _seg(40.0, 44.0, "好的，我今天晚上就还钱，谢谢。")
    out = t._repair(np.zeros(50 * SAMPLE_RATE, np.float32), [skipped, fine], regions + [(40, 44)])
    # Only the short segment, as clips; the fake stops short on the long clip again, which
    # is split at its pause.
    # Clips take in up to 0.5 s around them (inside the segment, halfway to a neighbour).
    assert asr.CLIP_PAD_SECONDS == 0.5
    assert seen == [[(0.5, 5.1), (19.5, 27.5)], [(19.5, 24.1), (24.1, 27.5)]]
    texts = [s.text for s in out]
    assert texts == ["第0秒说了一句完整的话", "第20秒说了一句完整的话", "第24秒说了一句完整的话", fine.text]


def test_sentences_get_times_from_pauses():
    # Four turns at about 2.5 characters a second (the collector speaks slower than the
    # debtor), pauses of 0.6-0.9 s between them.
    regions = [(0.5, 4.0), (4.6, 8.1), (9.0, 15.0), (15.6, 16.5)]
    text = "喂，请问是王先生吗？我是他妈妈，你哪位啊？阿姨您好，我姓刘，是安心借平台的工作人员，有件事找他。什么事？"
    pieces = asr.split_sentences(0.0, 17.0, text, regions)
    assert [p[2] for p in pieces] == ["喂，请问是王先生吗？", "我是他妈妈，你哪位啊？",
                                      "阿姨您好，我姓刘，是安心借平台的工作人员，有件事找他。", "什么事？"]
    assert "".join(p[2] for p in pieces) == text
    # Cuts land in the pauses; each sentence is trimmed to the speech inside it.
    assert [(p[0], p[1]) for p in pieces] == regions
    # Two equal sentences: half the speech (6.95 of 13.9 s) ends at 8.05 s, next to the
    # pause at 8.1-9.0 s, which takes the cut; the other pauses stay inside the sentences.
    pieces = asr.split_sentences(0.0, 17.0, "一二三四。五六七八。", regions)
    assert [(p[0], p[1]) for p in pieces] == [(0.5, 8.1), (9.0, 16.5)]


def test_sentences_without_pauses_share_time_by_length():
    pieces = asr.split_sentences(10.0, 22.0, "一二三四五六七八。一二三四。", [(10.0, 22.0)])
    assert [p[2] for p in pieces] == ["一二三四五六七八。", "一二三四。"]
    assert pieces[0][:2] == (10.0, pytest.approx(18.0)) and pieces[1][1] == 22.0
    # One sentence: the segment, trimmed to its speech.
    assert asr.split_sentences(0.0, 30.0, "就一句话", [(2.0, 5.0)]) == [(2.0, 5.0, "就一句话")]
    # A long sentence is cut at a clause mark.
    long = "这" * 31 + "，" + "那" * 10
    assert [p[2] for p in asr.split_sentences(0.0, 12.0, long, [])] == ["这" * 31 + "，", "那" * 10]
