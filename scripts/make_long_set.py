"""Build the long benchmark set: 30+ minutes of calls, 3-10 minutes each, made by joining the
repo's synthetic calls (samples/, eval/calls/) and, when present, read telephone-band speech
from ../shared/data/speech (MagicData, Common Voice, AISHELL: research-licensed audio is read
by path and the joined files go to the user's cache, never into the repo).

Deterministic: the same sources, seed and length give the same files (a manifest records a
key of both). Each long call is 16 kHz mono 16-bit WAV; manifest.json lists for every call
its pieces (source, offset in the long call, duration, reference text, category labels), so
a benchmark can score transcripts and findings piece by piece.

Usage: .venv/bin/python scripts/make_long_set.py [--out DIR] [--minutes 32] [--seed N]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import random
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from analyzer.audio import SAMPLE_RATE, decode  # noqa: E402
from analyzer.weights import cache_dir  # noqa: E402

CALL_SETS = (REPO / "samples", REPO / "eval" / "calls")
SPEECH = REPO.parent / "shared" / "data" / "speech"
# Approximate references (WenetSpeech pseudo-labels) would blur a CER comparison.
SPEECH_SETS = ("magicdata_cs", "cv_aishell")
FORMAT = 1


def sources() -> list[dict]:
    """Labelled calls first (all of them), then telephone-band read utterances."""
    items = []
    for folder in CALL_SETS:
        labels = folder / "labels.json"
        if not labels.is_file():
            continue
        for call in json.loads(labels.read_text(encoding="utf-8"))["calls"]:
            items.append({
                "source": str((folder / call["file"]).relative_to(REPO)),
                "path": str(folder / call["file"]),
                "text": "".join(t["text"] for t in call["turns"]),
                "labels": sorted({lab for t in call["turns"] for lab in t["labels"]}),
            })
    tsv = SPEECH / "transcripts.tsv"
    if tsv.is_file():
        with open(tsv, encoding="utf-8", newline="") as f:
            rows = [r for r in csv.DictReader(f, delimiter="\t") if r["set"] in SPEECH_SETS]
        random.Random(7).shuffle(rows)  # a mix of the sets, always the same mix
        for r in rows:
            items.append({
                "source": f"shared/data/speech/{r['audio_tel8k']}",
                "path": str(SPEECH / r["audio_tel8k"]),
                "text": r["text"].replace(" ", ""),
                "labels": [],
            })
    return items


def build_key(items: list[dict], minutes: float, seed: int) -> str:
    h = hashlib.sha256(json.dumps([FORMAT, minutes, seed]).encode())
    for it in items:
        h.update(it["source"].encode())
        h.update(str(Path(it["path"]).stat().st_size).encode())
    return h.hexdigest()[:16]


def _write_wav(path: Path, samples: np.ndarray) -> None:
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with wave.open(tmp, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(SAMPLE_RATE)
            w.writeframes(pcm.tobytes())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build(out: Path, minutes: float = 32.0, seed: int = 20250318) -> dict:
    """Write the long calls into out (reused when already built with the same key)."""
    items = sources()
    if not items:
        raise SystemExit("no sources: samples/labels.json is missing")
    key = build_key(items, minutes, seed)
    manifest_path = out / "manifest.json"
    if manifest_path.is_file():
        old = json.loads(manifest_path.read_text(encoding="utf-8"))
        if old.get("key") == key and all((out / c["file"]).is_file() for c in old["calls"]):
            return old
    rng = random.Random(seed)
    # Take sources in order until the target length (plus gaps) is reached, then mix them.
    audio, total = [], 0.0
    for it in items:
        if total >= minutes * 60:
            break
        samples = decode(it["path"]).mono()
        audio.append((it, samples))
        total += len(samples) / SAMPLE_RATE + 1.5
    if total < minutes * 60:  # too few sources: go round again (same audio, new order)
        base = list(audio)
        while total < minutes * 60:
            for pair in rng.sample(base, len(base)):
                audio.append(pair)
                total += len(pair[1]) / SAMPLE_RATE + 1.5
                if total >= minutes * 60:
                    break
    rng.shuffle(audio)
    out.mkdir(parents=True, exist_ok=True)
    calls, i = [], 0
    while i < len(audio):
        target = rng.uniform(4.0, 8.0) * 60
        parts, pieces, t = [], [], 0.0
        while i < len(audio) and (t < target or not parts):
            it, samples = audio[i]
            gap = rng.uniform(1.0, 2.0)  # long enough that VAD never joins two sources
            parts.append(np.zeros(int(gap * SAMPLE_RATE), np.float32))
            t += gap
            pieces.append({
                "source": it["source"], "offset": round(t, 3),
                "duration": round(len(samples) / SAMPLE_RATE, 3),
                "text": it["text"], "labels": it["labels"],
            })
            parts.append(samples.astype(np.float32))
            t += len(samples) / SAMPLE_RATE
            i += 1
        # A last call under 3 minutes joins the previous one (the set's calls stay 3-10 min).
        if calls and t < 180:
            prev = calls[-1]
            shift = prev["duration"]
            prev["pieces"] += [{**p, "offset": round(p["offset"] + shift, 3)} for p in pieces]
            prev["_audio"].extend(parts)
            prev["duration"] = round(shift + t, 3)
            continue
        calls.append({"file": f"long_{len(calls) + 1:02d}.wav", "duration": round(t, 3),
                      "pieces": pieces, "_audio": parts})
    for c in calls:
        _write_wav(out / c["file"], np.concatenate(c.pop("_audio")))
    manifest = {"key": key, "minutes": round(sum(c["duration"] for c in calls) / 60, 2),
                "seed": seed, "calls": calls}
    tmp = manifest_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, manifest_path)
    return manifest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=cache_dir() / "bench" / "long")
    ap.add_argument("--minutes", type=float, default=32.0)
    ap.add_argument("--seed", type=int, default=20250318)
    args = ap.parse_args()
    m = build(args.out, args.minutes, args.seed)
    print(f"{len(m['calls'])} calls, {m['minutes']} min in {args.out}")
    for c in m["calls"]:
        print(f"  {c['file']}: {c['duration'] / 60:.1f} min, {len(c['pieces'])} pieces")


if __name__ == "__main__":
    main()
