"""Add what the embedded Whisper hears in labelled call recordings to the training corpus.

The classifier reads Whisper's output, not scripts: homophones (验证码 -> 院正马), cut and
merged sentences, Traditional characters, digits. analyzer/augment.py imitates some of that;
this script gives it the real thing. For every call of a set with per-turn times
(labels.json, as scripts/make_calls.py writes it) the recording is transcribed as
`callaudit analyze` does (transcripts cached per user, so a rerun is fast) and each
transcript segment is given to the turn it overlaps most (more than half of the segment, on
the same channel). A turn's segments, joined, make one row:
  - a labelled collector turn -> corpus/<category>.tsv, style `heard:<set>`
  - a lawful collector turn -> corpus/lawful.tsv, kind `heard:<set>`
  - an other-party turn -> corpus/lawful.tsv, kind `debtor:heard:<set>` (the role head's
    positives, as `debtor`)
<set> is the folder's name: scripts/cross_sets.py leaves a set's heard rows out with its
script rows. A turn with a sentence of a protected set (samples/ and the eval/* sets not named,
as scripts/calls_to_corpus.py) gives no row.

Idempotent: every heard row of the named sets is removed before the new ones are added.

Usage (from the repository root), after scripts/calls_to_corpus.py and before `callaudit train`:
the retired held-out sets, and training call scripts rendered with make_calls.py into a folder
named like their set (the audio is not kept in the repository; rendering needs the TTS
environment of the Makefile's `samples` target, about 4 minutes a set, and transcribing as
long again):
    .tts-venv/bin/python scripts/make_calls.py --skip-silent corpus/calls/kin/dialogues.yaml /tmp/r/kin/
    .venv/bin/python scripts/heard_to_corpus.py eval/holdout eval/holdout2 ... eval/holdout9 /tmp/r/kin ...
Name every set each time: a set not named keeps its rows from the last run.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from calls_to_corpus import (  # noqa: E402
    clean,
    default_protected,
    protected_sentences,
    rewrite,
    sentence_key,
    sentences,
)

from analyzer.classifier import (  # noqa: E402
    CATEGORY_IDS,
    HEARD_SOURCE,
    LAWFUL,
    OTHER_PARTY_KIND,
    SOURCE_SEP,
    heard_set,
    text_key,
)
from analyzer.types import Segment  # noqa: E402

# A segment belongs to a turn when more than this share of it lies inside the turn.
MIN_SHARE = 0.5


def heard_kind(set_name: str, other_party: bool = False) -> str:
    kind = f"{HEARD_SOURCE}{SOURCE_SEP}{set_name}"
    return f"{OTHER_PARTY_KIND}{SOURCE_SEP}{kind}" if other_party else kind


def is_heard_of(kind: str, set_names: set[str]) -> bool:
    """A row this script wrote for one of the sets."""
    return heard_set(kind) in set_names


def turn_texts(turns: Sequence[dict], segments: Sequence[Segment]) -> dict[int, str]:
    """Turn index -> the text of the segments that lie mostly inside it, in order."""
    out: dict[int, list[str]] = {}
    for s in segments:
        length = max(s.end - s.start, 1e-6)
        best, owner = 0.0, None
        for i, t in enumerate(turns):
            if s.channel is not None and t.get("channel") is not None and s.channel != t["channel"]:
                continue
            overlap = min(s.end, t["end"]) - max(s.start, t["start"])
            if overlap > best:
                best, owner = overlap, i
        if owner is not None and best > MIN_SHARE * length:
            out.setdefault(owner, []).append(s.text.strip())
    return {i: clean("".join(texts)) for i, texts in out.items()}


def heard_rows(folder: Path, segments_of: Callable[[Path], list[Segment]],
               protected: set[str]) -> dict[str, list[tuple[str, str]]]:
    """corpus file stem -> (text, kind) rows of one set's recordings."""
    name = folder.resolve().name
    rows: dict[str, list[tuple[str, str]]] = {c: [] for c in (*CATEGORY_IDS, LAWFUL)}
    calls = json.loads((folder / "labels.json").read_text(encoding="utf-8"))["calls"]
    for call in calls:
        turns = call["turns"]
        for i, text in turn_texts(turns, segments_of(folder / call["file"])).items():
            turn = turns[i]
            if not text_key(text) or any(
                    p in sentence_key(x) for x in sentences(turn["text"]) for p in protected):
                continue
            if turn["speaker"] != "collector":
                rows[LAWFUL].append((text, heard_kind(name, other_party=True)))
            elif not turn["labels"]:
                rows[LAWFUL].append((text, heard_kind(name)))
            for label in turn["labels"]:
                if label not in CATEGORY_IDS:
                    raise SystemExit(f"{folder}/labels.json {call['id']}: unknown label {label}")
                rows[label].append((text, heard_kind(name)))
    return rows


def merge(corpus: Path, rows: dict[str, list[tuple[str, str]]], set_names: set[str]
          ) -> dict[str, tuple[int, int]]:
    """Rewrite each corpus file without the sets' heard rows, then with the new ones."""
    return rewrite(corpus, rows, lambda _text, kind: is_heard_of(kind, set_names))


def transcriber() -> Callable[[Path], list[Segment]]:
    """What `callaudit analyze` hears (its cache, its model), without the classifier."""
    from analyzer.pipeline import Analyzer, AnalyzerOptions

    analyzer = Analyzer(AnalyzerOptions(use_cache=True, use_classifier=False))
    return lambda path: analyzer.analyze(path).segments


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("sets", nargs="+", type=Path, help="folders with labels.json and recordings")
    ap.add_argument("--corpus", type=Path, default=ROOT / "corpus")
    args = ap.parse_args(argv)
    # A rendered training set has no dialogues.yaml: protect every eval/* set not named.
    protected = protected_sentences(default_protected(args.sets))
    segments_of = transcriber()
    rows: dict[str, list[tuple[str, str]]] = {c: [] for c in (*CATEGORY_IDS, LAWFUL)}
    for folder in args.sets:
        for stem, items in heard_rows(folder, segments_of, protected).items():
            rows[stem] += items
        print(f"{folder}: heard", file=sys.stderr, flush=True)
    names = {f.resolve().name for f in args.sets}
    for stem, (removed, added) in merge(args.corpus, rows, names).items():
        print(f"{stem}.tsv: {added} heard rows ({removed} replaced)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
