"""The synthetic calls (samples/, eval/calls/, eval/holdout*/) agree with their labels and their scripts.

Audio is decoded with PyAV (as the analyzer will) and checked against labels.json: files
exist, durations, channels, turn times (speech is where the labels say, silence between),
the stereo file's channel assignment, category coverage and lawful calls.
"""

from __future__ import annotations

import itertools
import json
import re
from functools import cache
from pathlib import Path

import av
import numpy as np
import pytest
import yaml

from analyzer.types import CATEGORIES

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
EVAL = ROOT / "eval" / "calls"
HOLDOUT = ROOT / "eval" / "holdout"
HOLDOUT2 = ROOT / "eval" / "holdout2"
HOLDOUT3 = ROOT / "eval" / "holdout3"
HOLDOUT4 = ROOT / "eval" / "holdout4"
HOLDOUT5 = ROOT / "eval" / "holdout5"
HOLDOUT6 = ROOT / "eval" / "holdout6"
HOLDOUT7 = ROOT / "eval" / "holdout7"
HOLDOUT8 = ROOT / "eval" / "holdout8"
HOLDOUT9 = ROOT / "eval" / "holdout9"
HOLDOUT10 = ROOT / "eval" / "holdout10"
HOLDOUT11 = ROOT / "eval" / "holdout11"
HOLDOUT12 = ROOT / "eval" / "holdout12"
HOLDOUT13 = ROOT / "eval" / "holdout13"
SETS = {"samples": SAMPLES, "eval": EVAL, "holdout": HOLDOUT, "holdout2": HOLDOUT2,
        "holdout3": HOLDOUT3, "holdout4": HOLDOUT4, "holdout5": HOLDOUT5,
        "holdout6": HOLDOUT6, "holdout7": HOLDOUT7, "holdout8": HOLDOUT8,
        "holdout9": HOLDOUT9, "holdout10": HOLDOUT10, "holdout11": HOLDOUT11,
        "holdout12": HOLDOUT12, "holdout13": HOLDOUT13}


def load_labels(folder: Path) -> dict:
    return json.loads((folder / "labels.json").read_text(encoding="utf-8"))


def load_script(folder: Path) -> dict:
    return yaml.safe_load((folder / "dialogues.yaml").read_text(encoding="utf-8"))


@cache
def decode(path: Path) -> tuple[int, np.ndarray]:
    """(sample rate, float32 array of shape (channels, samples)) as PyAV decodes the file."""
    with av.open(str(path)) as f:
        stream = f.streams.audio[0]
        chunks = []
        rate = 0
        resampler = None
        for frame in f.decode(stream):
            if resampler is None:
                rate = frame.sample_rate
                resampler = av.AudioResampler(format="fltp", layout=frame.layout.name, rate=rate)
            chunks += [r.to_ndarray() for r in resampler.resample(frame)]
        chunks += [r.to_ndarray() for r in resampler.resample(None)]
    return rate, np.concatenate(chunks, axis=1)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


def calls_of(name: str) -> list[dict]:
    return load_labels(SETS[name])["calls"]


def all_calls() -> list[tuple[str, dict]]:
    return [(name, call) for name in SETS for call in calls_of(name)]


CALL_PARAMS = [pytest.param(folder, call, id=call["id"]) for folder, call in all_calls()]


@pytest.mark.parametrize("name", SETS)
def test_labels_follow_the_script(name):
    """labels.json was produced from the current dialogues.yaml (same calls, turns, labels)."""
    script = load_script(SETS[name])["calls"]
    labels = calls_of(name)
    assert [c["id"] for c in labels] == [c["id"] for c in script]
    for want, got in zip(script, labels, strict=True):
        assert got["file"] == want["file"]
        assert got["number"] == want["number"]
        said = [(t["speaker"], t["text"].strip(), list(t["labels"])) for t in want["turns"]]
        assert [(t["speaker"], t["text"], t["labels"]) for t in got["turns"]] == said
        assert [t["index"] for t in got["turns"]] == list(range(len(said)))


@pytest.mark.parametrize(("name", "call"), CALL_PARAMS)
def test_audio_file_matches_labels(name, call):
    path = SETS[name] / call["file"]
    assert path.is_file(), f"missing {path}"
    rate, audio = decode(path)
    duration = audio.shape[1] / rate
    assert rate == call["sample_rate"]
    assert audio.shape[0] == call["channels"] == (2 if call["stereo"] else 1)
    assert abs(duration - call["duration"]) < 0.05
    assert 20.0 <= duration <= 180.0, f"{call['file']}: {duration:.1f} s"
    # The extension names the real container (the Samsung .m4a carries a 3gp brand).
    ext = path.suffix.lower().lstrip(".")
    assert ext == call["format"]
    if ext == "amr":
        assert path.read_bytes()[:6] == b"#!AMR\n"
        assert rate == 8000


@pytest.mark.parametrize(("name", "call"), CALL_PARAMS)
def test_turn_times_are_where_the_speech_is(name, call):
    rate, audio = decode(SETS[name] / call["file"])
    duration = audio.shape[1] / rate
    turns = call["turns"]
    by_channel: dict[int | None, list[dict]] = {}
    for t in turns:
        assert 0.0 <= t["start"] < t["end"] <= duration
        assert t["channel"] == (
            (0 if t["speaker"] == "collector" else 1) if call["stereo"] else None
        )
        by_channel.setdefault(t["channel"], []).append(t)
    for ch_turns in by_channel.values():
        for a, b in zip(ch_turns, ch_turns[1:], strict=False):
            assert a["end"] <= b["start"], f"turns {a['index']} and {b['index']} overlap"

    def seg(ch: int, start: float, end: float) -> np.ndarray:
        return audio[ch, int(start * rate) : int(end * rate)]

    for t in turns:
        ch = t["channel"] or 0
        floor = rms(seg(ch, 0.0, turns[0]["start"] - 0.05))  # lead-in: background noise only
        assert rms(seg(ch, t["start"], t["end"])) > 10 * floor, f"turn {t['index']} is silent"
    if not call["stereo"]:
        for a, b in zip(turns, turns[1:], strict=False):
            loud = min(rms(seg(0, a["start"], a["end"])), rms(seg(0, b["start"], b["end"])))
            gap = seg(0, a["end"] + 0.06, b["start"] - 0.06)
            assert rms(gap) < loud / 8, f"speech between turns {a['index']} and {b['index']}"


def test_stereo_sample_keeps_one_party_per_channel():
    stereo = [c for c in calls_of("samples") if c["stereo"]]
    assert len(stereo) == 1
    call = stereo[0]
    rate, audio = decode(SAMPLES / call["file"])
    assert audio.shape[0] == 2
    left, right = audio
    assert abs(np.corrcoef(left, right)[0, 1]) < 0.1  # not a copied mono signal
    for t in call["turns"]:
        a, b = int(t["start"] * rate), int(t["end"] * rate)
        own = t["channel"]
        assert rms(audio[own, a:b]) > 10 * rms(audio[1 - own, a:b]), f"turn {t['index']}"


@pytest.mark.parametrize(
    ("name", "per_category", "lawful_calls"),
    [("samples", 2, 3), ("eval", 3, 5), ("holdout", 3, 5), ("holdout2", 3, 5), ("holdout3", 3, 6),
     ("holdout4", 2, 6), ("holdout5", 3, 6), ("holdout6", 3, 6),
     ("holdout7", 3, 6), ("holdout8", 3, 6), ("holdout9", 3, 6),
     ("holdout10", 3, 6), ("holdout11", 3, 6), ("holdout12", 3, 6),
     ("holdout13", 3, 6)],
)
def test_coverage(name, per_category, lawful_calls):
    calls = calls_of(name)
    used = {lb for c in calls for t in c["turns"] for lb in t["labels"]}
    assert used <= set(CATEGORIES)
    for cat in CATEGORIES:
        n = sum(any(cat in t["labels"] for t in c["turns"]) for c in calls)
        assert n >= per_category, f"{cat} appears in {n} calls"
    lawful = [c for c in calls if not any(t["labels"] for t in c["turns"])]
    assert len(lawful) >= lawful_calls
    assert all(c["lawful"] == (c in lawful) for c in calls)
    for c in calls:
        assert all(not t["labels"] for t in c["turns"] if t["speaker"] == "debtor")
        assert {t["speaker"] for t in c["turns"]} == {"collector", "debtor"}


def test_samples_include_a_scam_call_and_hard_negatives():
    calls = calls_of("samples")
    scam = {"impersonation", "sensitive_info", "private_payment"}
    assert any(scam <= {lb for t in c["turns"] for lb in t["labels"]} for c in calls)
    lawful_text = "".join(t["text"] for c in calls for t in c["turns"] if not t["labels"])
    for phrase in ("征信", "依法起诉", "分期还款", "不要把验证码告诉任何人", "官方APP", "威胁我吗"):
        assert phrase in lawful_text, phrase


def test_samples_show_archive_patterns():
    """One number calls one phone 4 times on one day, once after 22:00 (for archive checks)."""
    calls = calls_of("samples")
    per_day: dict[tuple[str, str], list[str]] = {}
    for c in calls:
        digits = re.sub(r"\D", "", c["file"])
        assert c["number"] in digits, c["file"]
        day, clock = c["time"].split(" ")
        per_day.setdefault((c["number"], day), []).append(clock)
    busiest = max(per_day.values(), key=len)
    assert len(busiest) > 3
    assert any(clock >= "22:00" for clock in busiest)


def sentences(folder: Path) -> set[str]:
    out = set()
    for call in load_script(folder)["calls"]:
        for t in call["turns"]:
            for x in re.split(r"[。！？]", t["text"]):
                x = re.sub(r"[，、：；,\s]", "", x)
                if len(x) >= 6:  # short courtesies like 好的 may repeat
                    out.add(x)
    return out


@pytest.mark.parametrize(("a", "b"), list(itertools.combinations(SETS, 2)))
def test_call_sets_never_share_sentences_or_files(a, b):
    shared = sentences(SETS[a]) & sentences(SETS[b])
    assert not shared, shared
    assert not {c["file"] for c in calls_of(a)} & {c["file"] for c in calls_of(b)}


# Retired held-out sets: measured many times, their turns are training data now
# (scripts/calls_to_corpus.py); scripts/eval.py no longer runs them by default.
TRAINED_ON = ("holdout", "holdout2", "holdout3", "holdout4", "holdout5", "holdout6",
              "holdout7", "holdout8", "holdout9")


def corpus_text() -> str:
    assert (ROOT / "corpus" / "lawful.tsv").is_file()
    return "\n".join(
        re.sub(r"[，、：；,\s]", "", p.read_text(encoding="utf-8"))
        for p in (ROOT / "corpus").glob("*.tsv")
    )


@pytest.mark.parametrize("name", [n for n in SETS if n != "samples" and n not in TRAINED_ON])
def test_evaluation_sentences_are_not_in_the_training_corpus(name):
    corpus = corpus_text()
    leaked = {x for x in sentences(SETS[name]) if x in corpus}
    assert not leaked, leaked


def shared_with_other_sets(x: str, own: Path) -> bool:
    """scripts/calls_to_corpus.py leaves out a sentence containing another set's sentence."""
    return any(o in x for n, f in SETS.items() if f != own for o in sentences(f))


# Call scripts written as training data only (corpus/calls/<set>/dialogues.yaml, each by its
# own author): never rendered or evaluated; scripts/calls_to_corpus.py adds their turns.
WRITTEN = {p.parent.name: p.parent
           for p in sorted((ROOT / "corpus" / "calls").glob("*/dialogues.yaml"))}


def test_written_training_sets_exist():
    assert len(WRITTEN) >= 4, sorted(WRITTEN)


# Every call set that is training data: the retired held-out sets and the written ones.
TRAINING_SETS = {**{n: SETS[n] for n in TRAINED_ON},
                 **{f"corpus/calls/{n}": f for n, f in WRITTEN.items()}}


@pytest.mark.parametrize("name", TRAINING_SETS)
def test_training_call_sets_are_in_the_training_corpus_whole(name):
    corpus = corpus_text()
    folder = TRAINING_SETS[name]
    missing = {x for x in sentences(folder)
               if x not in corpus and not shared_with_other_sets(x, folder)}
    assert not missing, missing


@pytest.mark.parametrize("name", WRITTEN)
def test_written_training_sets_label_only_collector_turns(name):
    for call in load_script(WRITTEN[name])["calls"]:
        for t in call["turns"]:
            assert t["speaker"] in ("collector", "debtor"), (call["id"], t)
            assert set(t["labels"]) <= set(CATEGORIES), (call["id"], t["labels"])
            assert t["speaker"] == "collector" or not t["labels"], (call["id"], t["text"])


@pytest.mark.parametrize(("name", "other"),
                         [(n, o) for n in WRITTEN for o in SETS if o not in TRAINED_ON])
def test_written_training_sets_share_no_sentence_with_call_sets(name, other):
    assert not sentences(WRITTEN[name]) & sentences(SETS[other])
