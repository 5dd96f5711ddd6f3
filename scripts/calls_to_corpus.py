"""Add the turns of retired evaluation sets to the training corpus.

A held-out set stops being blind once it has been measured many times; its turns, written by
another author in another style, are then worth more as training data than as a test. Each
collector turn goes to corpus/<category>.tsv for every label it carries (style "call"), a
lawful collector turn to corpus/lawful.tsv (kind "call"), and every debtor / other-party turn
to corpus/lawful.tsv (kind "debtor", what the speaker-role head learns from).

A sentence that contains one of another call set's (samples/ and the eval/* sets not being
added, or --protect) is left out of its turn's row, so no evaluation text reaches training.

Idempotent: rows whose text is a turn of the given sets are removed before the turns are
added again, so a rerun never duplicates them (a turn whose text was edited since leaves its
old row behind: remove it by hand). Heard rows (scripts/heard_to_corpus.py) stay, even where
Whisper wrote a turn word for word.

Usage (from the repository root), then `callaudit train`; name every set that is training
data (the retired held-out sets and corpus/calls/*), or the default protection, which covers
every other eval/* set, trims a retired set's rows that share a sentence with another one:
    .venv/bin/python scripts/calls_to_corpus.py eval/holdout eval/holdout2 eval/holdout3 \
        eval/holdout4 eval/holdout5 eval/holdout6 eval/holdout7 eval/holdout8 eval/holdout9 corpus/calls/*/
"""

from __future__ import annotations

import argparse
import re
import stat
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analyzer.classifier import (  # noqa: E402
    CATEGORY_IDS,
    LAWFUL,
    OTHER_PARTY_KIND,
    is_heard,
    text_key,
)
from analyzer.fileio import atomic_write_text  # noqa: E402

CALL_STYLE = "call"


def clean(text: str) -> str:
    """One TSV field: no tabs or line breaks."""
    return " ".join(text.replace("\t", " ").split())


def sentences(text: str) -> list[str]:
    return [x for x in re.split(r"(?<=[。！？!?])", text) if x.strip()]


def sentence_key(sentence: str) -> str:
    """A sentence as the leak tests compare it: no punctuation inside, no spaces."""
    return re.sub(r"[，、：；,\s。！？!?]", "", sentence)


def protected_sentences(folders: list[Path]) -> set[str]:
    """Sentences (6+ characters) of the sets that must stay out of training."""
    out = set()
    for folder in folders:
        for call in _load(folder)["calls"]:
            for turn in call["turns"]:
                out |= {k for x in sentences(turn["text"]) if len(k := sentence_key(x)) >= 6}
    return out


def without_protected(text: str, protected: set[str]) -> str:
    """The turn less any sentence that contains a protected one (two sets' authors can hit on
    the same short phrase; a blind set's words must not reach the corpus)."""
    return "".join(x for x in sentences(text) if not any(p in sentence_key(x) for p in protected)).strip()


def _load(folder: Path) -> dict:
    return yaml.safe_load((folder / "dialogues.yaml").read_text(encoding="utf-8"))


def default_protected(sets: list[Path]) -> list[Path]:
    """samples/ and every eval/* set not being added now."""
    adding = {s.resolve() for s in sets}
    folders = [ROOT / "samples", *sorted((ROOT / "eval").glob("*/"))]
    return [f for f in folders if (f / "dialogues.yaml").is_file() and f.resolve() not in adding]


def turn_rows(sets: list[Path], protected: set[str] | None = None
              ) -> dict[str, list[tuple[str, str]]]:
    """corpus file stem -> (text, style/kind) rows from the sets' dialogues.yaml."""
    rows: dict[str, list[tuple[str, str]]] = {c: [] for c in (*CATEGORY_IDS, LAWFUL)}
    for folder in sets:
        data = _load(folder)
        for call in data["calls"]:
            for turn in call["turns"]:
                text = clean(turn["text"])
                if protected:
                    text = without_protected(text, protected)
                if not text_key(text):  # a pause written "……": the trainer rejects it
                    continue
                labels = turn.get("labels") or []
                if turn["speaker"] != "collector":
                    rows[LAWFUL].append((text, OTHER_PARTY_KIND))
                elif not labels:
                    rows[LAWFUL].append((text, CALL_STYLE))
                for label in labels:
                    if label not in CATEGORY_IDS:
                        raise SystemExit(f"{folder}/dialogues.yaml {call['id']}: unknown label {label}")
                    rows[label].append((text, CALL_STYLE))
    return rows


def rewrite(corpus: Path, rows: dict[str, list[tuple[str, str]]],
            stale: Callable[[str, str], bool]) -> dict[str, tuple[int, int]]:
    """Rewrite each corpus file without its stale rows (stale(text, style/kind)), then with
    the new ones; (removed, added) per file. A stale row that is also a new one keeps its
    place (once), so a rerun leaves the file as it was instead of moving rows to the end."""
    counts = {}
    for stem, items in rows.items():
        path = corpus / f"{stem}.tsv"
        header, *lines = path.read_text(encoding="utf-8").splitlines()
        added = list(dict.fromkeys(f"{t}\t{k}" for t, k in items))
        wanted = set(added)
        kept: list[str] = []
        in_place: set[str] = set()
        removed = 0
        for ln in lines:
            if not stale(ln.split("\t", 1)[0].strip(), ln.rsplit("\t", 1)[-1].strip()):
                kept.append(ln)
                continue
            removed += 1
            if ln in wanted and ln not in in_place:
                kept.append(ln)
                in_place.add(ln)
        new = [ln for ln in added if ln not in in_place]
        # Keep the file's permissions (an atomic write's temporary file is private).
        atomic_write_text(path, "\n".join([header, *kept, *new]) + "\n",
                          mode=stat.S_IMODE(path.stat().st_mode))
        counts[stem] = (removed, len(added))
    return counts


def merge(corpus: Path, rows: dict[str, list[tuple[str, str]]]) -> dict[str, tuple[int, int]]:
    """Rewrite each corpus file without the turns' texts, then with them; (removed, added).
    Heard rows stay: Whisper may write a turn word for word, and a training set's heard rows
    cannot be rebuilt without rendering its calls again."""
    texts = {t for items in rows.values() for t, _ in items}
    return rewrite(corpus, rows, lambda text, kind: text in texts and not is_heard(kind))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("sets", nargs="+", type=Path, help="folders with a dialogues.yaml")
    ap.add_argument("--corpus", type=Path, default=ROOT / "corpus")
    ap.add_argument("--protect", type=Path, nargs="*", default=None,
                    help="sets whose sentences must not reach the corpus "
                         "(default: samples/ and every eval/* set not being added)")
    args = ap.parse_args(argv)
    protect = default_protected(args.sets) if args.protect is None else args.protect
    for stem, (removed, added) in merge(args.corpus,
                                        turn_rows(args.sets, protected_sentences(protect))).items():
        print(f"{stem}.tsv: {added} rows from the calls ({removed} replaced)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
