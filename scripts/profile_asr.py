"""Where callaudit's sequential transcription time goes on long calls, next to plain
faster-whisper. Sequential decoding (AsrOptions.batch_size 0) was the default until b67e38d.

On the long set of `make bench` (32 minutes of 3-10 minute calls), one model, one process:
  - plain: faster-whisper base as most people run it (beam 5, VAD);
  - callaudit's stages: the finer VAD pass (speech_regions), the first decoding pass
    (WhisperTranscriber._decode) and the second decoding of segments too short for their
    speech (_repair), with the CER of the transcript with and without that second pass.

Prints Markdown. About 8 minutes on 2 cores; run it on a quiet machine.
    .venv/bin/python scripts/profile_asr.py [--minutes 32]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for p in (ROOT, ROOT / "scripts"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import bench  # noqa: E402

from analyzer.asr import clean_asr_text, speech_regions, split_sentences  # noqa: E402
from analyzer.audio import decode  # noqa: E402
from analyzer.pipeline import Analyzer  # noqa: E402


def sentences(segments: list, regions: list) -> list[list]:
    """[start, end, text] per sentence, as WhisperTranscriber.transcribe makes them."""
    out = []
    for s in segments:
        for a, b, raw in split_sentences(s.start, s.end, s.text, regions):
            text = clean_asr_text(raw)
            if text:
                out.append([a, b, text])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=32.0, help="length of the long set")
    args = ap.parse_args()
    files, truth, _ = bench.long_truth(args.minutes)
    transcriber = Analyzer().transcriber
    model = transcriber._get_model()
    o = transcriber.options
    seconds = {"audio": 0.0, "plain": 0.0, "vad": 0.0, "decode": 0.0, "repair": 0.0}
    runs: dict[str, dict] = {k: {"files": []} for k in ("plain", "first pass", "both passes")}
    for f in files:
        audio = decode(f).channels[0]
        seconds["audio"] += len(audio) / 16000
        t = time.perf_counter()
        plain, _ = model.transcribe(audio, language=o.language, beam_size=o.beam_size,
                                    vad_filter=True)
        plain = [[s.start, s.end, s.text] for s in plain]
        seconds["plain"] += time.perf_counter() - t
        t = time.perf_counter()
        regions = speech_regions(audio)
        seconds["vad"] += time.perf_counter() - t
        t = time.perf_counter()
        first = transcriber._decode(audio)
        seconds["decode"] += time.perf_counter() - t
        t = time.perf_counter()
        both = transcriber._repair(audio, first, regions)
        seconds["repair"] += time.perf_counter() - t
        for name, segs in (("plain", plain), ("first pass", sentences(first, regions)),
                           ("both passes", sentences(both, regions))):
            runs[name]["files"].append({"file": f, "segments": segs, "findings": []})
        print(f"{Path(f).name}: done", file=sys.stderr, flush=True)
    audio_s = seconds["audio"]
    ours = seconds["vad"] + seconds["decode"] + seconds["repair"]
    print(f"### Transcription profile (`scripts/profile_asr.py`, {audio_s / 60:.1f} min of long calls)")
    print()
    print("| stage | seconds | RTF | share of callaudit's time |")
    print("|---|---|---|---|")
    for key, label in (("vad", "finer VAD pass (speech_regions)"),
                       ("decode", "first decoding pass"),
                       ("repair", "second decoding of too-short segments")):
        print(f"| {label} | {seconds[key]:.1f} | {seconds[key] / audio_s:.3f} | "
              f"{seconds[key] / ours:.0%} |")
    print(f"| **callaudit transcription** | {ours:.1f} | {ours / audio_s:.3f} | 100% |")
    print(f"| plain faster-whisper | {seconds['plain']:.1f} | {seconds['plain'] / audio_s:.3f} | "
          f"ratio ours / plain {ours / seconds['plain']:.2f} |")
    print()
    print("| transcript | CER |")
    print("|---|---|")
    for name, run in runs.items():
        print(f"| {name} | {bench.accuracy(run, truth)['cer']:.3f} |")


if __name__ == "__main__":
    main()
