"""Leave one set out: how the detector does on a retired evaluation set's calls when the
classifier never saw that set.

The retired held-out sets (eval/holdout .. eval/holdout9) are training data now, so the
shipped classifier has read their turns. For each of them in turn this script trains the
classifier as `callaudit train` does (same split, out-of-fold thresholds, same config) on the
corpus less every row that is made only of that set's sentences, and scores the set's scripts
(each turn's text at its time, as scripts/eval.py's "detection alone"; with --asr, what the
embedded Whisper hears in the set's recordings). With eight sets of other authors' calls it is a
larger check than the blind sets, and it spends none of their blindness: use it to screen a
change to the classifier or its training before `make eval`.

Caveats: the rules (analyzer/rules) were mended after reading these sets' errors, so the
lexicon and fused columns are optimistic; the model column is the honest one.

Usage (from the repository root; about a minute per set on 2 cores):
    .venv/bin/python scripts/cross_sets.py                      # every retired set
    .venv/bin/python scripts/cross_sets.py --sets holdout5 holdout6 --config C=4
    .venv/bin/python scripts/cross_sets.py --asr   # through Whisper (first run: ~20 min)
    .venv/bin/python scripts/cross_sets.py --asr --models /tmp/loso   # keep the classifiers:
        # a rerun after a change to the rules or the fusion takes about a minute
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, fields
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from calls_to_corpus import sentence_key, sentences  # noqa: E402
from heard_to_corpus import is_heard_of, transcriber  # noqa: E402

import eval as eval_script  # noqa: E402
from analyzer import legal  # noqa: E402
from analyzer.classifier import (  # noqa: E402
    BLOCKS,
    Classifier,
    TrainConfig,
    choose_thresholds,
    corpus_sha256,
    default_featurizer,
    featurizer_settings,
    fit,
    label_matrix,
    load_classifier,
    load_corpus,
    oof_proba,
    save_artifact,
    split_holdout,
)
from analyzer.errors import ModelError  # noqa: E402
from analyzer.evaluation import (  # noqa: E402
    Counts,
    ScamHeadlines,
    Turn,
    count_by_category,
    match_call,
)
from analyzer.lexicon import Lexicon  # noqa: E402
from analyzer.scoring import ClassifierScorer, RuleDetector  # noqa: E402
from analyzer.types import CATEGORIES, Segment  # noqa: E402
from analyzer.verdict import is_likely_scam  # noqa: E402

# The sets scripts/eval.py calls retired (their turns are in corpus/).
RETIRED = tuple(name for name, (_, role) in eval_script.CALL_SETS.items()
                if role == eval_script.RETIRED)
VARIANTS = ("fused", "model", "lexicon")


def set_sentences(calls: list[dict]) -> set[str]:
    """Every sentence of the set's turns, as calls_to_corpus compares them."""
    return {sentence_key(s) for c in calls for t in c["turns"] for s in sentences(t["text"])}


def from_set(text: str, keys: set[str]) -> bool:
    """A corpus row made only of the set's sentences (calls_to_corpus writes a turn less the
    sentences another set protects, so a row is a subset of one turn's sentences)."""
    own = [sentence_key(s) for s in sentences(text)]
    return bool(own) and all(k in keys for k in own if k)


def train_arrays(examples, keys: set[str], config: TrainConfig, name: str = ""
                 ) -> tuple[dict, dict, int]:
    """The classifier `callaudit train` would ship from the corpus less the set's rows (its
    script sentences and what Whisper heard in its recordings: heard_to_corpus, by `name`),
    as save_artifact writes it: (meta, arrays, rows left out)."""
    kept = [e for e in examples
            if not from_set(e.text, keys) and not is_heard_of(e.kind, {name})]
    train_ex, _held = split_holdout(kept, config.holdout, config.seed)
    lo, hi = config.threshold_range
    thresholds = choose_thresholds(label_matrix(train_ex), oof_proba(train_ex, config), lo, hi)
    model = fit(train_ex, config)
    vocab, arrays = model.arrays(thresholds)
    meta = {"categories": list(CATEGORIES), "blocks": list(BLOCKS),
            "featurizer": featurizer_settings(), "vocabulary": vocab,
            "userdict_sha256": model.featurizer.userdict_sha256}
    return meta, arrays, len(examples) - len(kept)


def kept_or_trained(folder: Path | None, stamp: dict,
                    train: Callable[[], tuple[dict, dict, int]]) -> tuple[Classifier, int]:
    """The left-one-out classifier an earlier run kept in `folder` when it was trained for
    the same `stamp` (set, corpus hash, training config), else train() it and keep it there.
    With --models a rerun after a change to the rules or the fusion only scores (about a
    minute with cached transcripts) instead of training nine classifiers (about 20)."""
    stamp = json.loads(json.dumps(stamp))  # as it reads back from the JSON file
    if folder is not None and (folder / "classifier.json").is_file():
        try:
            clf = load_classifier(folder)
        except ModelError:
            clf = None
        if clf is not None and clf.meta.get("left_out") == stamp:
            return clf, int(clf.meta["rows_left_out"])
    meta, arrays, dropped = train()
    if folder is None:
        return Classifier(dict(meta, sha256={"npz": "left-one-out"}), arrays,
                          default_featurizer()), dropped
    save_artifact(folder, dict(meta, left_out=stamp, rows_left_out=dropped), arrays)
    return load_classifier(folder), dropped


def detectors(lexicon: Lexicon, clf) -> dict[str, RuleDetector]:
    severities = {c: law.severity for c, law in legal.load().categories.items()}
    fused = RuleDetector(lexicon, extra_scorers=[ClassifierScorer(clf, severities, lexicon)])
    return {"fused": fused, "model": eval_script._with_scorers(fused, fused.scorers[1:]),
            "lexicon": RuleDetector(lexicon)}


def script_segments(call: dict, turns: list[Turn]) -> list[Segment]:
    return eval_script.script_segments(turns)


class Heard:
    """The call as the pipeline's Whisper hears it (transcripts cached per user, so only
    the first run transcribes)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.segments_of = transcriber()

    def __call__(self, call: dict, turns: list[Turn]) -> list[Segment]:
        return self.segments_of(self.folder / call["file"])


def score_set(dets: dict[str, RuleDetector], calls: list[dict],
              segments_of=script_segments) -> dict[str, dict]:
    """Per variant: counts by category, the lawful calls with any finding, and the calls'
    matches (for --errors)."""
    heard = {}
    for c in calls:
        turns = [Turn.from_label(c["id"], t) for t in c["turns"]]
        heard[c["id"]] = (turns, segments_of(c, turns))
    out = {}
    for name, det in dets.items():
        found = {c["id"]: det.detect(heard[c["id"]][1]) for c in calls}
        matches = [match_call(c["id"], found[c["id"]], heard[c["id"]][0],
                              lawful=bool(c["lawful"])) for c in calls]
        scams = ScamHeadlines()
        for c in calls:
            scams.add(c["id"], bool(c["lawful"]), is_likely_scam(found[c["id"]]))
        out[name] = {"counts": count_by_category(matches), "scams": scams,
                     "lawful_flagged": [m.call for m in matches if m.lawful and m.findings],
                     "lawful_calls": sum(1 for m in matches if m.lawful),
                     "matches": matches,
                     "segments": {c["id"]: heard[c["id"]][1] for c in calls}}
    return out


def heard_in(segments: list[Segment], turn: Turn) -> str:
    """What the transcript says within the turn's time (same channel)."""
    return "".join(s.text for s in segments
                   if s.start < turn.end and s.end > turn.start
                   and (turn.channel is None or s.channel in (None, turn.channel)))


def error_lines(name: str, res: dict) -> list[str]:
    """The fused variant's missed labels and false findings of one set, for reading: the
    script's turn next to what the detector read."""
    out = [f"## {name}", ""]
    for m in res["matches"]:
        segments = res["segments"][m.call]
        for t, c in m.missed:
            out.append(f"- MISS {c} {m.call}#{t.index} script: {t.text}")
            out.append(f"  heard: {heard_in(segments, t)}")
        by_index = {s.index: s.text for s in segments}
        for f in m.false_positives:
            said = "".join(by_index.get(i, "") for i in f.segment_indices)
            out.append(f"- FALSE {f.category} {m.call} {f.start:.1f}-{f.end:.1f}"
                       f"{' (lawful call)' if m.lawful else ''}: {said} [{', '.join(f.source)}]")
    return [*out, ""]


def row(counts: Counts) -> list[str]:
    m = counts.metrics()
    return [str(m["labels"]), str(m["findings"]), eval_script.fmt(m["precision"]), eval_script.fmt(m["recall"])]


def parse_config(items: list[str]) -> TrainConfig:
    known = {f.name: f.type for f in fields(TrainConfig)}
    values = {}
    for item in items:
        key, _, raw = item.partition("=")
        if key not in known or not raw:
            raise SystemExit(f"--config {item}: expected KEY=VALUE with KEY one of "
                             f"{', '.join(sorted(known))}")
        values[key] = json.loads(raw)
    return TrainConfig(**values)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sets", nargs="+", default=list(RETIRED),
                    help=f"folders under eval/ (default: {' '.join(RETIRED)})")
    ap.add_argument("--config", nargs="*", default=[], metavar="KEY=VALUE",
                    help="TrainConfig fields to change, values as JSON (e.g. C=4)")
    ap.add_argument("--asr", action="store_true",
                    help="score what the embedded Whisper hears in the set's recordings instead "
                         "of the scripts (slow the first time: transcripts are cached)")
    ap.add_argument("--shipped", action="store_true",
                    help="also score with the shipped classifier (it has read these sets: an "
                         "upper bound, not a measurement)")
    ap.add_argument("--models", type=Path, metavar="DIR",
                    help="keep each left-one-out classifier in DIR/<set> and reuse it while the "
                         "corpus and training config are unchanged: a rerun after a change to "
                         "the rules or the fusion then only scores")
    ap.add_argument("--errors", type=Path, metavar="FILE",
                    help="write the fused variant's missed labels and false findings here "
                         "(these sets are retired: reading them is allowed)")
    args = ap.parse_args(argv)
    config = parse_config(args.config)
    errors: list[str] = []
    lexicon = Lexicon.load()
    examples, _stats = load_corpus(ROOT / "corpus")
    corpus_hash = corpus_sha256(ROOT / "corpus")
    heard = "Whisper transcripts" if args.asr else "scripts, no ASR"
    print(f"# Leave one set out ({heard})\n")
    changed = {k: v for k, v in asdict(config).items() if v != asdict(TrainConfig())[k]}
    print(f"- training config changes: {changed or 'none'}; corpus {len(examples)} rows\n")

    totals = {v: {c: Counts() for c in (*CATEGORIES, "overall")} for v in VARIANTS}
    shipped_total = Counts()
    lawful = {v: [0, 0] for v in VARIANTS}
    scams = ScamHeadlines()
    per_set = []
    for name in args.sets:
        folder = eval_script.CALL_SETS[name][0] if name in eval_script.CALL_SETS else ROOT / "eval" / name
        calls = json.loads((folder / "labels.json").read_text("utf-8"))["calls"]
        t = time.time()
        keys = set_sentences(calls)
        clf, dropped = kept_or_trained(
            args.models / name if args.models else None,
            {"set": name, "corpus_sha256": corpus_hash, "config": asdict(config)},
            lambda keys=keys, folder=folder: train_arrays(examples, keys, config, folder.name))
        segments_of = Heard(folder) if args.asr else script_segments
        res = score_set(detectors(lexicon, clf), calls, segments_of)
        for v in VARIANTS:
            for c, counts in res[v]["counts"].items():
                totals[v][c].add(counts)
            lawful[v][0] += len(res[v]["lawful_flagged"])
            lawful[v][1] += res[v]["lawful_calls"]
        scams.extend(res["fused"]["scams"])
        line = [name, str(len(calls)), str(dropped)]
        for v in VARIANTS:
            line += row(res[v]["counts"]["overall"])[2:]
        line.append(f"{len(res['fused']['lawful_flagged'])}/{res['fused']['lawful_calls']}")
        if args.shipped:
            shipped = score_set({"fused": detectors(lexicon, load_classifier())["fused"]}, calls,
                                segments_of)
            shipped_total.add(shipped["fused"]["counts"]["overall"])
            line += row(shipped["fused"]["counts"]["overall"])[2:]
        per_set.append(line)
        errors += error_lines(name, res["fused"])
        print(f"_{name}: {time.time() - t:.0f} s_", file=sys.stderr)

    header = ["set", "calls", "rows left out"]
    for v in VARIANTS:
        header += [f"{v} P", f"{v} R"]
    header.append("lawful calls flagged (fused)")
    if args.shipped:
        header += ["shipped P", "shipped R"]
    overall = ["**all**", str(sum(int(r[1]) for r in per_set)), str(sum(int(r[2]) for r in per_set))]
    for v in VARIANTS:
        overall += row(totals[v]["overall"])[2:]
    overall.append(f"{lawful['fused'][0]}/{lawful['fused'][1]}")
    if args.shipped:
        overall += row(shipped_total)[2:]
    print(eval_script.table(header, [*per_set, overall]))
    print()
    print("Per category, all sets together:\n")
    cat_rows = []
    for c in (*CATEGORIES, "overall"):
        r = [c]
        for v in VARIANTS:
            r += row(totals[v][c]) if v == "fused" else row(totals[v][c])[2:]
        cat_rows.append(r)
    print(eval_script.table(["category", "labels", "fused findings", "fused P", "fused R",
                 "model P", "model R", "lexicon P", "lexicon R"], cat_rows))
    print()
    print(f"- lawful calls with any finding: fused {lawful['fused'][0]}, model "
          f"{lawful['model'][0]}, lexicon {lawful['lexicon'][0]} of {lawful['fused'][1]}")
    print(scams.line(" (fused)"))
    if args.errors:
        args.errors.write_text("\n".join(errors), "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
