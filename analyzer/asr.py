"""Speech recognition: the Transcriber protocol and its faster-whisper implementation.

Two decoding modes share one model (loaded once per process):
- batched (AsrOptions.batch_size > 0, the default): speech cut at pauses into clips of up to
  CLIP_SECONDS, each decoded as one window, batch_size at a time (faster-whisper's
  BatchedInferencePipeline);
- sequential (batch_size == 0): faster-whisper's own windowed decoding, with a second pass
  over what it skipped. scripts/bench.py measures both.
"""

from __future__ import annotations

import bisect
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Protocol

import numpy as np

from .audio import SAMPLE_RATE
from .errors import ModelError
from .types import AsrInfo, Segment

log = logging.getLogger(__name__)

# A short Simplified-Chinese prompt steers Whisper away from Traditional characters on the
# first window; hotwords (domain terms from the lexicon) are re-sent on every window.
INITIAL_PROMPT = "以下是普通话的电话录音。"


@dataclass(frozen=True)
class AsrOptions:
    """Decoding settings. They are part of the transcript cache key: change one, re-transcribe
    (except cpu_threads, which changes speed only)."""

    model: str | None = None  # None: embedded base; a directory; or a hub size name
    compute_type: str = "int8"
    beam_size: int = 5
    # Threads of one transcriber. 0: one per CPU core this process may use (faster-whisper's
    # own default, 4, oversubscribes a 2-core laptop). Batch workers should split the cores.
    cpu_threads: int = 0
    # N > 0: clips decoded N at a time (needs vad=True). 0: sequential decoding. Eight 12 s
    # clips at a time were slower on 2 cores and needed 1.6 GB (make bench at c829e5d).
    batch_size: int = 2
    # Batched clips: the encoder reads each batch up to its longest clip, rounded up to a
    # multiple of this many seconds, not Whisper's whole 30 s window (most clips are 10-15 s, and
    # the encoder's time grows with its input). 0: always 30 s. Whisper base was trained on
    # 30 s windows: cut to the clip itself it read worse in a quick run; in 10 s steps calls
    # read as well (make bench), but single short sentences worse (make eval, part d), so a
    # recording that is one clip (a voice message, a short call) keeps the whole window.
    window_step: float = 10.0
    language: str = "zh"
    vad: bool = True
    # Whisper's own rule for silence: both thresholds must be crossed to drop a segment.
    no_speech_threshold: float = 0.6
    logprob_threshold: float = -1.0


def default_threads() -> int:
    """CPU cores this process may use (a container's or taskset's limit, not the host's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def clean_asr_text(raw: str) -> str | None:
    """Display text of a Whisper segment: Simplified Chinese, or None for a stock
    hallucination ("字幕由Amara.org社群提供") or a decoding loop."""
    from .text import is_hallucination, to_simplified

    text = to_simplified(raw).strip()
    if not text or is_hallucination(text):
        return None
    return text


def postprocess_key(postprocess: Callable[[str], str | None] | None) -> str | None:
    """The postprocess filter in the transcript cache key: clean_asr_text by its filter's
    version and phrase list (a change renews cached transcripts); another one by name."""
    if postprocess is None:
        return None
    if postprocess is clean_asr_text:
        from .text import hallucination_filter_key

        return f"clean_asr_text:{hallucination_filter_key()}"
    return f"{postprocess.__module__}.{getattr(postprocess, '__qualname__', repr(postprocess))}"


class Transcriber(Protocol):
    @property
    def info(self) -> AsrInfo: ...

    def transcribe(self, audio: np.ndarray, channel: int | None) -> list[Segment]: ...


# Speech regions (Silero VAD; a pause is at least VAD_MIN_SILENCE_MS, a region at most
# REGION_SECONDS) serve three purposes: batched mode decodes them as clips (joined while the
# gap is short, at most CLIP_SECONDS); a text far too short for the speech under it is decoded
# again in smaller clips (Whisper sometimes stops after the first sentence of a window, at a
# change of voice, and skips the rest); and long segments are cut into sentences at the pauses.
# Cutting only at pauses over a second keeps sentences whole: on the bench's long calls this
# reads better than plain faster-whisper (CER 0.14 vs 0.19). Clips average 12 s there; the
# encoder reads them in 10 s steps (AsrOptions.window_step), not padded to 30 s, which brought
# the long calls from 1.11x plain's time to 0.87x (make bench at b67e38d and 10a023e).
REGION_SECONDS = 12.0
CLIP_SECONDS = 28.0
CLIP_JOIN_GAP = 1.0
# The sequential mode's second pass decodes what a window skipped in shorter clips.
REPAIR_CLIP_SECONDS = 12.0
REPAIR_JOIN_GAP = 0.5
VAD_MIN_SILENCE_MS = 150
VAD_PAD_MS = 100
# Each clip is decoded with up to this much audio around its speech (never more than half
# the pause to the next clip): the VAD's 100 ms pad clipped first and last syllables on the
# telephone channel (part d of make eval, tel8k CER 0.169 -> 0.163 in a quick run).
CLIP_PAD_SECONDS = 0.5
# Mandarin runs at 4-6 characters a second: fewer than 3 a second means text went missing.
MIN_CHARS_PER_SECOND = 3.0
MIN_CHARS_SLACK = 4


class WhisperTranscriber:
    """faster-whisper, loaded once and reused for every file."""

    def __init__(
        self,
        options: AsrOptions | None = None,
        hotwords: str | None = None,
        postprocess: Callable[[str], str | None] | None = None,
    ):
        from .weights import resolve_model

        self.options = options or AsrOptions()
        self.hotwords = hotwords or None
        # Maps raw Whisper text to display text (Simplified) or None to drop it (hallucination).
        self.postprocess = postprocess
        self._load_target, self._name, self._sha = resolve_model(self.options.model)
        self._model = None
        # Batched pipelines by encoder step (window_step; 0.0 for the whole 30 s window), built
        # on first use around the one model.
        self._pipelines: dict[float, object] = {}

    @property
    def batched(self) -> bool:
        return self.options.batch_size > 0 and self.options.vad

    @property
    def info(self) -> AsrInfo:
        settings = asdict(self.options)
        settings.pop("model")
        settings.pop("cpu_threads")  # speed only (checked in tests/test_asr.py)
        if not self.batched:
            settings["batch_size"] = 0
        settings["segmenter"] = {
            # sentences cut at VAD pauses; short segments decoded again; clips padded; a
            # recording that is one clip in the whole window; 6: a short one-character loop is
            # dropped only as a whole segment (before the filter had its own key, below);
            # 7: a clip whose text loops is too short for its speech (split, decoded again)
            "version": 7,
            "region_seconds": REGION_SECONDS,
            "clip_seconds": CLIP_SECONDS,
            "join_gap": CLIP_JOIN_GAP,
            "repair_clip_seconds": REPAIR_CLIP_SECONDS,
            "repair_join_gap": REPAIR_JOIN_GAP,
            "vad_min_silence_ms": VAD_MIN_SILENCE_MS,
            "vad_pad_ms": VAD_PAD_MS,
            "clip_pad_seconds": CLIP_PAD_SECONDS,
            "min_chars_per_second": MIN_CHARS_PER_SECOND,
        }
        settings["hotwords"] = self.hotwords
        settings["initial_prompt"] = INITIAL_PROMPT
        settings["postprocess"] = postprocess_key(self.postprocess)
        return AsrInfo(model=self._name, model_sha256=self._sha, settings=settings)

    def _get_model(self):
        if self._model is None:
            from faster_whisper import WhisperModel

            try:
                self._model = WhisperModel(
                    self._load_target,
                    device="cpu",
                    compute_type=self.options.compute_type,
                    cpu_threads=self.options.cpu_threads or default_threads(),
                    local_files_only=self._sha is not None,
                )
            except Exception as e:  # CTranslate2 raises RuntimeError/ValueError, hub OSError
                raise ModelError(
                    f"无法加载语音识别模型 {self._name}：{e}。"
                    "请检查 --model 指向的目录是否完整，或省略 --model 使用内置模型。"
                ) from e
        return self._model

    def transcribe(self, audio: np.ndarray, channel: int | None) -> list[Segment]:
        if len(audio) < SAMPLE_RATE // 4:
            return []
        import ctranslate2

        # Whisper's temperature fallback samples at random: a fixed seed per call makes a
        # recording's transcript the same whatever the process decoded before it (any worker,
        # any engine, any rerun).
        ctranslate2.set_random_seed(0)
        o = self.options
        regions = speech_regions(audio) if o.vad else []
        if o.vad and not regions:
            return []
        if self.batched:
            clips = _clips(regions)
            # A recording that is one clip has nothing to batch with: it keeps Whisper's whole
            # window, in which a lone short sentence reads better (part d of make eval).
            decoded = self._decode_clips(audio, clips, whole_window=len(clips) == 1)
        else:
            decoded = self._repair(audio, self._decode(audio), regions)
        out: list[Segment] = []
        for s in decoded:
            # Whisper's rule for silence (batched decoding does not apply it by itself).
            if s.no_speech_prob > o.no_speech_threshold and s.avg_logprob < o.logprob_threshold:
                continue
            for start, end, raw in split_sentences(s.start, s.end, s.text, regions):
                text = self.postprocess(raw) if self.postprocess is not None else raw.strip()
                if not text:
                    log.debug("dropped segment %.2f-%.2f (hallucination or empty)", start, end)
                    continue
                out.append(
                    Segment(
                        index=-1,
                        start=float(start),
                        end=float(end),
                        text=text,
                        channel=channel,
                        avg_logprob=float(s.avg_logprob),
                        no_speech_prob=float(s.no_speech_prob),
                    )
                )
        return out

    def _decode(self, audio: np.ndarray) -> list:
        """Sequential: faster-whisper's 30 s windows with its temperature fallback. No word
        timestamps: they double the decoding time, and their seek moves back into audio
        already decoded, repeating it (measured on the samples).

        Hotwords on every window, no conditioning on previous text: Whisper base then ends
        some windows after their first sentence, which _repair decodes again. Tried and
        measured (make bench, make eval): conditioning on previous text without hotwords skips
        far less and takes 11 % less time on long calls (1.09x plain instead of 1.23x), but it
        dropped call-level recall on the long set 0.92 -> 0.84 and CER on the samples went
        0.085 -> 0.125 (a whole stretch of one call went missing without a short segment to
        flag it), with no gain on the blind sets. Reverted; see README, Speed."""
        o = self.options
        segments, _info = self._get_model().transcribe(
            audio,
            language=o.language,
            beam_size=o.beam_size,
            vad_filter=o.vad,
            condition_on_previous_text=False,
            initial_prompt=INITIAL_PROMPT,
            hotwords=self.hotwords,
            no_speech_threshold=o.no_speech_threshold,
            log_prob_threshold=o.logprob_threshold,
        )
        return list(segments)

    def _repair(self, audio: np.ndarray, segments: list, regions: list) -> list:
        """Decode again, clip by clip, the segments whose text is far too short for the
        speech they span (the rest of their window was skipped)."""
        out: list = []
        for s in segments:
            inside = _within(regions, s.start, s.end)
            if len(inside) > 1 and _too_short(s.text, inside):
                log.debug("segment %.2f-%.2f too short for its speech: decoding it again",
                          s.start, s.end)
                clips = _clips(inside, REPAIR_CLIP_SECONDS, REPAIR_JOIN_GAP)
                out += self._decode_clips(audio, clips, batch_size=4, within=(s.start, s.end))
            else:
                out.append(s)
        return out

    def _decode_clips(self, audio: np.ndarray, clips: list, batch_size: int = 0,
                      within: tuple[float, float] | None = None,
                      whole_window: bool = False) -> list:
        """Clips decoded batch_size at a time (BatchedInferencePipeline, one text per clip);
        a clip whose text stopped short is split at its middle pause and decoded again.
        Each clip may take in audio around it up to half the pause to its neighbour (and not
        outside `within`, the stretch these clips come from). whole_window: the encoder reads
        Whisper's 30 s window, not window_step steps."""
        pipeline = self._get_pipeline(whole_window)
        o = self.options
        todo = list(zip(clips, _limits(clips, *(within or (0.0, len(audio) / SAMPLE_RATE))),
                        strict=True))
        done: list = []
        while todo:
            segments, _info = pipeline.transcribe(
                audio,
                language=o.language,
                beam_size=o.beam_size,
                batch_size=batch_size or o.batch_size,
                clip_timestamps=[_span(c, lim) for c, lim in todo],
                without_timestamps=True,
                initial_prompt=INITIAL_PROMPT,
                hotwords=self.hotwords,
            )
            retry: list = []
            for (clip, lim), segs in zip(todo, _by_clip(list(segments), [c for c, _ in todo]),
                                         strict=True):
                if len(clip) > 1 and _too_short("".join(s.text for s in segs), clip):
                    halves = [clip[: len(clip) // 2], clip[len(clip) // 2 :]]
                    retry += zip(halves, _limits(halves, *lim), strict=True)
                else:
                    done += segs
            todo = retry
        return sorted(done, key=lambda s: s.start)

    def _get_pipeline(self, whole_window: bool):
        step = 0.0 if whole_window else self.options.window_step
        if step not in self._pipelines:
            self._pipelines[step] = _pipeline(self._get_model(), step)
        return self._pipelines[step]


def _pipeline(model, window_step: float):
    """faster-whisper's BatchedInferencePipeline, its encoder input cut to window_step steps."""
    from faster_whisper import BatchedInferencePipeline

    step = round(window_step * model.frames_per_second)

    class ShortWindows(BatchedInferencePipeline):
        def generate_segment_batched(self, features, tokenizer, options):
            return super().generate_segment_batched(
                window_frames(features, step), tokenizer, options
            )

    return ShortWindows(model) if step > 0 else BatchedInferencePipeline(model)


def window_frames(features: np.ndarray, step: int) -> np.ndarray:
    """A batch of (batch, mels, frames) features, zero-padded by faster-whisper to 30 s, cut
    after the last frame any clip uses, rounded up to a multiple of step frames."""
    used = np.flatnonzero(np.any(features != 0.0, axis=(0, 1)))
    last = int(used[-1]) + 1 if used.size else 1
    frames = min(features.shape[-1], -(-last // step) * step)
    return np.ascontiguousarray(features[..., :frames])


Regions = list[tuple[float, float]]


def speech_regions(audio: np.ndarray) -> Regions:
    """(start, end) seconds of speech, split at pauses of VAD_MIN_SILENCE_MS or more."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    vad = VadOptions(
        min_silence_duration_ms=VAD_MIN_SILENCE_MS,
        max_speech_duration_s=REGION_SECONDS,
        speech_pad_ms=VAD_PAD_MS,
    )
    return [(r["start"] / SAMPLE_RATE, r["end"] / SAMPLE_RATE)
            for r in get_speech_timestamps(audio, vad)]


def _clips(regions: Regions, seconds: float = CLIP_SECONDS,
           join_gap: float = CLIP_JOIN_GAP) -> list[Regions]:
    """Clips of regions at most join_gap apart, each spanning at most seconds."""
    clips: list[Regions] = []
    for start, end in regions:
        last = clips[-1] if clips else None
        if last and start - last[-1][1] <= join_gap and end - last[0][0] <= seconds:
            last.append((start, end))
        else:
            clips.append([(start, end)])
    return clips


def _limits(clips: list[Regions], lo: float, hi: float) -> list[tuple[float, float]]:
    """How far each clip (in time order, inside lo..hi) may reach: halfway to its neighbours."""
    cuts = [lo] + [(a[-1][1] + b[0][0]) / 2 for a, b in zip(clips, clips[1:], strict=False)]
    cuts.append(hi)
    return list(zip(cuts, cuts[1:], strict=False))


def _span(clip: Regions, limit: tuple[float, float],
          pad: float | None = None) -> dict[str, float]:
    """The audio a clip decodes: its speech plus up to pad seconds each side, inside limit."""
    pad = CLIP_PAD_SECONDS if pad is None else pad
    return {"start": max(min(limit[0], clip[0][0]), clip[0][0] - pad),
            "end": min(max(limit[1], clip[-1][1]), clip[-1][1] + pad)}


def _within(regions: Regions, start: float, end: float) -> Regions:
    """The parts of regions inside [start, end]."""
    return [(max(a, start), min(b, end)) for a, b in regions if b > start and a < end]


def _by_clip(segments: list, clips: list[Regions]) -> list[list]:
    """Decoded segments grouped by the clip their middle falls in (clips are in time order;
    a segment's start can be a few ms before its clip's)."""
    starts = [c[0][0] for c in clips]
    out: list[list] = [[] for _ in clips]
    for s in segments:
        out[max(0, bisect.bisect_right(starts, (s.start + s.end) / 2) - 1)].append(s)
    return out


def _letters(text: str) -> int:
    return sum(1 for c in text if c.isalnum())


def _too_short(text: str, regions: Regions) -> bool:
    """Too few letters for the speech: text was skipped, or the decoder looped ("押押押…" for
    26 s of a call) and only the letters before the loop count."""
    from .text import without_loops

    speech = sum(end - start for start, end in regions)
    return _letters(without_loops(text)) < MIN_CHARS_PER_SECOND * speech - MIN_CHARS_SLACK


# Whisper often returns one segment for 20-30 s of a call; reports need the moment a
# sentence was said. A segment's text is cut at sentence ends (and, in a long sentence, at
# clause marks); each piece gets the share of the segment's speech time its characters
# take, and the cuts move to pauses (a change of speaker, usually): each cut to its own
# pause, in order, as close as possible, unless none is within about SNAP_SECONDS.
_SENTENCE_END = "。！？；!?;"
_CLAUSE_END = "，,、：: "
LONG_SENTENCE_CHARS = 30
SNAP_SECONDS = 3.0


def _sentence_texts(text: str) -> list[str]:
    pieces, cur = [], ""
    for ch in text.strip():
        cur += ch
        if ch in _SENTENCE_END or (ch in _CLAUSE_END and _letters(cur) >= LONG_SENTENCE_CHARS):
            pieces.append(cur)
            cur = ""
    if cur.strip():
        pieces.append(cur)
    return [p.strip() for p in pieces if _letters(p)] or [text.strip()]


def split_sentences(start: float, end: float, text: str, regions: Regions) -> list[tuple[float, float, str]]:
    """(start, end, text) per sentence of one decoded segment; regions: the channel's speech."""
    sentences = _sentence_texts(text)
    speech = _within(regions, start, end) or [(start, end)]
    if len(sentences) == 1:
        return [(speech[0][0], speech[-1][1], text.strip())]
    total = sum(b - a for a, b in speech)
    weights = [max(1, _letters(t)) for t in sentences]
    pauses = [(a[1], b[0]) for a, b in zip(speech, speech[1:], strict=False)]

    def time_at(fraction: float) -> float:
        left = fraction * total
        for a, b in speech:
            if left <= b - a:
                return a + left
            left -= b - a
        return speech[-1][1]

    targets, done = [], 0
    for w in weights[:-1]:
        done += w
        targets.append(time_at(done / sum(weights)))
    cuts: list[tuple[float, float]] = []  # (end of one sentence, start of the next)
    for t, pause in zip(targets, _align(targets, pauses), strict=True):
        prev = cuts[-1][1] if cuts else start
        cuts.append(pause if pause else (max(prev, t), max(prev, t)))
    bounds = [start] + [c for cut in cuts for c in cut] + [end]
    out = []
    for i, sentence in enumerate(sentences):
        a, b = bounds[2 * i], bounds[2 * i + 1]
        # Trim to the speech inside, so a sentence does not start in the silence before it.
        inside = _within(speech, a, b)
        if inside:
            a, b = inside[0][0], inside[-1][1]
        out.append((a, b, sentence))
    return out


def _distance(t: float, span: tuple[float, float]) -> float:
    return max(span[0] - t, t - span[1], 0.0)


def _align(targets: list[float], pauses: Regions) -> list[tuple[float, float] | None]:
    """Give each cut (estimated time, in order) a pause of its own, in order, or None,
    minimizing the total distance; leaving a cut without a pause costs SNAP_SECONDS."""
    k, n = len(targets), len(pauses)
    inf = float("inf")
    # cost[i][j]: best for the first i cuts using only the first j pauses
    cost = [[0.0] * (n + 1)] + [[inf] * (n + 1) for _ in range(k)]
    for i in range(1, k + 1):
        for j in range(n + 1):
            best = cost[i - 1][j] + SNAP_SECONDS
            if j:
                best = min(best, cost[i][j - 1],
                           cost[i - 1][j - 1] + _distance(targets[i - 1], pauses[j - 1]))
            cost[i][j] = best
    out: list[tuple[float, float] | None] = [None] * k
    i, j = k, n
    while i:
        if j and cost[i][j] == cost[i][j - 1]:
            j -= 1
        elif j and cost[i][j] == cost[i - 1][j - 1] + _distance(targets[i - 1], pauses[j - 1]):
            out[i - 1] = pauses[j - 1]
            i, j = i - 1, j - 1
        else:
            i -= 1
    return out
