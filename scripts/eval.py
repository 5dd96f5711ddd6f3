"""`make eval`: how well callaudit does, printed as Markdown (tables first, details after).

Parts (pick with --only a,b,c,d):
  (a) text: the corpus held-out split (in-domain; scripts/eval_text.py)
  (b) end to end: the embedded Whisper + the pipeline's detector, scored per labelled turn,
      on eval/holdout10 … eval/holdout13 (blind held-out sets) and eval/calls
      (development set), none of them used for training; eval/holdout to eval/holdout9 are
      retired into the training corpus (scripts/calls_to_corpus.py) and run only when asked
      for (--calls)
  (c) text: external proxy sets in ../shared/data/text (scripts/eval_text.py)
  (d) speech: character error rate of callaudit's transcription on ../shared/data/speech,
      next to plain faster-whisper base in the same run

Usage (from the repository root):
    .venv/bin/python scripts/eval.py                     # everything (long: Whisper twice)
    .venv/bin/python scripts/eval.py --only b --cache    # reuse cached call transcripts
    .venv/bin/python scripts/eval.py --limit 20 --json /tmp/eval.json
    .venv/bin/python scripts/eval.py --only abc --keep-d results/eval.md > new.md   # rules changed only

Progress goes to stderr, the report (Markdown) to stdout.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for p in (ROOT, ROOT / "scripts"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import eval_text  # noqa: E402

from analyzer.errors import CallauditError, ModelError  # noqa: E402
from analyzer.evaluation import (  # noqa: E402
    TOLERANCE,
    CallMatch,
    CerTotal,
    ScamHeadlines,
    Turn,
    cer,
    count_by_category,
    match_call,
    overlaps,
    same_channel,
)
from analyzer.types import CATEGORIES, Finding, Segment  # noqa: E402

# (b) runs on the blind held-out sets first (their scripts were written without sight of the
# rules, corpus or model, and nobody reads them or tunes on them), then the development set
# (eval/calls: held out until its first error analysis, tuned on since). The nine oldest
# held-out sets, measured many times, are training data now: their turns are in corpus/.
RETIRED = "retired held-out, now training data"
CALL_SETS = {
    "holdout": (ROOT / "eval" / "holdout", RETIRED),
    "holdout2": (ROOT / "eval" / "holdout2", RETIRED),
    "holdout3": (ROOT / "eval" / "holdout3", RETIRED),
    "holdout4": (ROOT / "eval" / "holdout4", RETIRED),
    "holdout5": (ROOT / "eval" / "holdout5", RETIRED),
    "holdout6": (ROOT / "eval" / "holdout6", RETIRED),
    "holdout7": (ROOT / "eval" / "holdout7", RETIRED),
    "holdout8": (ROOT / "eval" / "holdout8", RETIRED),
    "holdout9": (ROOT / "eval" / "holdout9", RETIRED),
    "holdout10": (ROOT / "eval" / "holdout10", "tenth held-out"),
    "holdout11": (ROOT / "eval" / "holdout11", "eleventh held-out"),
    "holdout12": (ROOT / "eval" / "holdout12", "twelfth held-out"),
    "holdout13": (ROOT / "eval" / "holdout13", "thirteenth held-out"),
    "calls": (ROOT / "eval" / "calls", "development"),
    "samples": (ROOT / "samples", "demo"),  # the bundled demo calls, also tuned on
}
DEFAULT_CALL_SETS = "holdout10,holdout11,holdout12,holdout13,calls"
# Sets whose misses and false alarms are never printed, only counted.
BLIND_ROLES = frozenset(
    {"tenth held-out", "eleventh held-out", "twelfth held-out", "thirteenth held-out"}
)
DATA_DIR = ROOT.parent / "shared" / "data"
SPEECH_DIR = DATA_DIR / "speech"
SUBSETS = {"magicdata_cs": "MagicData", "cv_aishell": "CV+AISHELL", "wenet": "WenetSpeech"}
# Plain faster-whisper base as measured in ../shared/data/README.md (it adds a Simplified
# Chinese initial prompt, which the plain run here does not use).
README_CER = {
    "16k": {"overall": 0.129, "MagicData": 0.123, "CV+AISHELL": 0.202},
    "tel8k": {"overall": 0.149, "MagicData": 0.143, "CV+AISHELL": 0.219},
}
TOLERANCES = (0.0, 0.5, 1.0, 1.5, 2.0)
# A miss/false positive with a finding/turn of its category this close is a timing matter.
NEAR_SECONDS = 5.0
PARTS = "abcd"
LEGEND = (
    "Columns: **fused** = pipeline.Analyzer().detector (rules + classifier, as shipped); "
    "**lexicon** and **model** = each of its two scorers alone, same threshold and fusion; "
    "**classifier@own thr.** (part a only) = the classifier with its own per-category "
    "thresholds, as scripts/eval_text.py and models/MODEL_CARD.md score it."
)


def progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def out(text: str = "") -> None:
    print(text, flush=True)


def fmt(x: float | None, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def cap(items: list, limit: int | None) -> list:
    return eval_text._cap(items, limit)


# --------------------------------------------------------------------------- detectors


class Setup:
    """The analyzer and the detector variants every part compares: "fused" (the pipeline's
    detector), "lexicon" and "model" (each of its scorers alone, same threshold and fusion)."""

    def __init__(self, use_cache: bool):
        from analyzer.pipeline import Analyzer, AnalyzerOptions
        from analyzer.scoring import LexiconScorer, RuleDetector

        self.notes: list[str] = []
        options = AnalyzerOptions(use_cache=use_cache)
        analyzer = Analyzer(options)
        try:
            fused = analyzer.detector
        except CallauditError as e:
            self.notes.append(f"the pipeline's detector could not load ({e}); "
                              "evaluating the lexicon alone")
            fused = RuleDetector(analyzer.lexicon)
            analyzer = Analyzer(options, detector=fused)
        self.analyzer = analyzer
        self.detectors: dict[str, object] = {"fused": fused}
        # Column titles: "fused" says what it is made of when there is nothing to fuse.
        self.titles = {"fused": "fused", "lexicon": "lexicon", "model": "model",
                       "classifier": "classifier@own thr."}
        self.groups: dict[str, list[int]] = {}  # variant -> indices into fused.scorers
        scorers = getattr(fused, "scorers", None)
        if scorers is None:
            self.notes.append("the detector has no `scorers` list: no lexicon/model split")
        else:
            lex = [i for i, sc in enumerate(scorers) if isinstance(sc, LexiconScorer)]
            rest = [i for i in range(len(scorers)) if i not in lex]
            self.groups["fused"] = list(range(len(scorers)))
            if lex and rest:
                self.groups.update(lexicon=lex, model=rest)
                for name in ("lexicon", "model"):
                    self.detectors[name] = _with_scorers(fused, [scorers[i]
                                                                 for i in self.groups[name]])
            else:
                self.notes.append("the pipeline's detector has one kind of scorer only "
                                  "(no classifier fused in): no lexicon/model columns")
                self.titles["fused"] = "fused (=lexicon)" if lex else "fused"
        try:
            from analyzer.classifier import load_classifier

            self.classifier = load_classifier()
        except (ModelError, ImportError) as e:
            self.classifier = None
            self.notes.append(f"classifier artifact unavailable ({e})")

    def text_flaggers(self, own_thresholds: bool = False) -> dict[str, eval_text.Flagger]:
        """One flagger per variant. With a scorer split, each text is scored once and its
        candidates fused per variant (three detectors for the price of one)."""
        fused = self.detectors["fused"]
        if self.groups:
            shared = SharedDetect(fused, self.groups)
            flaggers = {n: shared.flagger(n) for n in self.groups}
        else:
            flaggers = {n: eval_text.detector_flagger(d) for n, d in self.detectors.items()}
        if own_thresholds and self.classifier is not None:
            flaggers["classifier"] = eval_text.classifier_flagger(self.classifier)
        return flaggers

    def classifier_split(self) -> tuple[int, float]:
        """Seed and held-out share of the shipped classifier (the training defaults without)."""
        if self.classifier is not None:
            cfg = self.classifier.meta["config"]
            return int(cfg["seed"]), float(cfg["holdout"])
        from analyzer.classifier import TrainConfig

        return TrainConfig().seed, TrainConfig().holdout


class SharedDetect:
    """RuleDetector.detect for several subsets of one detector's scorers in one pass: prepare
    the segments once, ask each scorer once, fuse each subset's candidates. Results are kept
    per doc, so the variants' flaggers share the work whichever runs first."""

    def __init__(self, detector, groups: dict[str, list[int]]):
        self.detector = detector
        self.groups = groups
        self._memo: dict[tuple[str, ...], dict[str, set[str]]] = {}

    def categories(self, segments: list[Segment]) -> dict[str, set[str]]:
        from analyzer.scoring import fuse

        det = self.detector
        prepared = det.prepare(segments)
        scored = det.scored(prepared)
        out = {}
        for name, idx in self.groups.items():
            # The subset's candidates with what the call context adds to them, as
            # RuleDetector.candidates does for all scorers.
            own = det.with_context(prepared, [c for i in idx for c in scored[i]])
            out[name] = {f.category for f in fuse(own, det.threshold)}
        return out

    def flagger(self, name: str) -> eval_text.Flagger:
        def flag(docs: list[list[str]]) -> list[set[str]]:
            out = []
            for doc in docs:
                key = tuple(doc)
                if key not in self._memo:
                    # Laid out as eval_text.detector_flagger does: 3 s apart, one channel.
                    self._memo[key] = self.categories([
                        Segment(index=i, start=3.0 * i, end=3.0 * i + 2.5, text=t)
                        for i, t in enumerate(doc)
                    ])
                out.append(self._memo[key][name])
            return out

        return flag


def _with_scorers(detector, scorers):
    d = copy.copy(detector)
    d.scorers = list(scorers)
    return d


def categories_of(detector, text: str, channel: int | None = None) -> set[str]:
    """What the detector makes of one text read as a single segment."""
    return {f.category for f in detector.detect([Segment(0, 0.0, 3.0, text, channel)],
                                               whole_call=False)}


# --------------------------------------------------------------------------- (a) held-out


def part_a(setup: Setup, res: dict) -> list[str]:
    seed, holdout = setup.classifier_split()
    per: dict[str, dict] = {}
    for name, flagger in setup.text_flaggers(own_thresholds=True).items():
        t = time.time()
        per[name] = eval_text.eval_heldout(flagger, ROOT / "corpus", seed, holdout)
        progress(f"(a) {name}: {time.time() - t:.0f} s")
    res["a"] = per
    names = list(per)
    first = per[names[0]]
    out(f"## (a) Corpus held-out split (in-domain text, n={first['n']}, seed {seed}, "
        f"held-out share {holdout})")
    out()
    out("In-domain: sentences written for this project, one utterance per item, no ASR. "
        "It measures lexical coverage, not call performance.")
    out()
    header = ["category", "+/−"] + [
        f"{setup.titles[n]} {m}" for n in names for m in ("P", "R", "F1")
    ]
    rows = []
    for c in [*CATEGORIES, "any violation"]:
        ms = [per[n]["per_category"][c] if c in CATEGORIES else per[n]["any_violation"]
              for n in names]
        row = [c, f"{ms[0]['positives']}/{ms[0]['negatives']}"]
        for m in ms:
            row += [fmt(m["precision"]), fmt(m["recall"]), fmt(m["f1"])]
        rows.append(row)
    out(table(header, rows))
    out()
    for n in names:
        fa = per[n]["lawful_false_alarm"]
        out(f"- lawful held-out items flagged, {setup.titles[n]}: {fmt(fa['any'])} of {fa['n']}")
    return []


# --------------------------------------------------------------------------- (b) calls


def load_calls(calls_dir: Path) -> list[dict]:
    data = json.loads((calls_dir / "labels.json").read_text(encoding="utf-8"))
    return data["calls"]


def script_segments(turns: list[Turn]) -> list[Segment]:
    """The call as a perfect transcriber would give it: each turn's script at its time."""
    return [Segment(i, t.start, t.end, t.text, t.channel) for i, t in enumerate(turns)]


def script_findings(detectors: dict, turns: dict[str, list[Turn]]) -> dict[str, dict]:
    """Findings of each detector variant on each call's script (no ASR)."""
    return {name: {cid: det.detect(script_segments(ts)) for cid, ts in turns.items()}
            for name, det in detectors.items()}


def _b_table(setup: Setup, counts: dict[str, dict], matches: dict[str, list[CallMatch]]) -> dict:
    names = list(counts)
    header = ["category", "labels"] + [
        f"{setup.titles[n]} {m}" for n in names for m in ("findings", "P", "R", "F1")
    ]
    rows = []
    for c in [*CATEGORIES, "overall"]:
        row = [c if c in CATEGORIES else "**overall**", str(counts[names[0]][c].labels)]
        for n in names:
            m = counts[n][c].metrics()
            row += [str(m["findings"]), fmt(m["precision"]), fmt(m["recall"]), fmt(m["f1"])]
        rows.append(row)
    out(table(header, rows))
    out()
    res = {}
    for n in names:
        flagged = [m.call for m in matches[n] if m.lawful and m.findings]
        n_lawful = sum(m.lawful for m in matches[n])
        out(f"- lawful calls with any finding, {setup.titles[n]}: "
            f"**{len(flagged)} of {n_lawful}** (target 0)"
            + (f": {', '.join(flagged)}" if flagged else ""))
        res[n] = {"per_category": {c: k.metrics() for c, k in counts[n].items()},
                  "lawful_calls_flagged": flagged, "lawful_calls": n_lawful}
    return res


def part_b(setup: Setup, res: dict, limit: int | None, sets: list[str]) -> list[str]:
    lines: list[str] = []
    res["b"] = {}
    for name in sets:
        calls_dir, role = CALL_SETS[name]
        if not (calls_dir / "labels.json").is_file():
            out(f"## (b) {calls_dir.relative_to(ROOT)} skipped: no labels.json (render it first)\n")
            continue
        lines += part_b_set(setup, res["b"], limit, name, calls_dir, role)
    return lines


def part_b_set(setup: Setup, res: dict, limit: int | None, set_name: str, calls_dir: Path,
               role: str) -> list[str]:
    calls = cap(load_calls(calls_dir), limit)
    analyzer = setup.analyzer
    reports = {}
    audio_s = asr_s = 0.0
    for call in calls:
        t = time.time()
        rep = analyzer.analyze(calls_dir / call["file"])
        dt = time.time() - t
        audio_s += rep.duration
        asr_s += dt
        reports[call["id"]] = rep
        progress(f"(b) {call['id']}: {rep.duration:.0f} s audio in {dt:.0f} s, "
                 f"{len(rep.findings)} findings")
    turns = {c["id"]: [Turn.from_label(c["id"], t) for t in c["turns"]] for c in calls}
    lawful = {c["id"]: bool(c["lawful"]) for c in calls}
    heard: dict[str, dict[str, list[Finding]]] = {}
    for name, det in setup.detectors.items():
        heard[name] = {
            cid: rep.findings if name == "fused" else det.detect(rep.segments)
            for cid, rep in reports.items()
        }
    script = script_findings(setup.detectors, turns)

    def score(findings: dict[str, dict[str, list[Finding]]], tol: float = TOLERANCE):
        matches = {name: [match_call(cid, fs, turns[cid], tol, lawful[cid])
                          for cid, fs in per.items()] for name, per in findings.items()}
        return matches, {name: count_by_category(ms) for name, ms in matches.items()}

    matches, counts = score(heard)
    script_matches, script_counts = score(script)

    out(f"## (b) End to end on {calls_dir.relative_to(ROOT)}, the {role} set "
        f"({len(calls)} synthetic calls, embedded Whisper, ±{TOLERANCE:.1f} s)")
    out()
    out("A finding is correct when it overlaps a turn labelled with its category (±tolerance, "
        "same channel on stereo); a labelled (turn, category) is recalled when a finding of "
        "that category overlaps it. Precision counts findings, recall counts labelled turns. "
        "Synthetic TTS calls (one voice pitched two ways), scripts written by the project: "
        "a development check, not real-world accuracy.")
    out()
    res_b: dict = {"tolerance": TOLERANCE, "calls": len(calls), "role": role,
                   "audio_seconds": audio_s, "analyze_seconds": asr_s}
    res_b["whisper"] = _b_table(setup, counts, matches)
    out(f"- speed: {audio_s:.0f} s of audio analyzed in {asr_s:.0f} s "
        f"(real-time factor {asr_s / audio_s:.2f})" if audio_s else "")
    out()
    out("Detection alone: the same scoring with each turn's script as its transcript, at the "
        "turn's time (no ASR). The gap to the table above is what transcription loses.")
    out()
    res_b["script"] = _b_table(setup, script_counts, script_matches)
    out()

    # How much the tolerance matters: overall counts at several widths.
    rows = []
    for tol in TOLERANCES:
        _, c = score({"fused": heard["fused"]}, tol)
        m = c["fused"]["overall"].metrics()
        rows.append([f"±{tol:.1f} s", str(m["findings"] - m["false_positives"]),
                     str(m["false_positives"]), str(m["labels"] - m["missed"]), str(m["missed"]),
                     fmt(m["precision"]), fmt(m["recall"]), fmt(m["f1"])])
    out("Tolerance sensitivity (fused, with Whisper, overall):")
    out()
    out(table(["tolerance", "correct", "false pos.", "recalled", "missed", "P", "R", "F1"], rows))
    out()

    rows = []
    scams = ScamHeadlines()
    for m in matches["fused"]:
        likely_scam = bool(reports[m.call].extra["verdict"]["likely_scam"])
        scams.add(m.call, m.lawful, likely_scam)
        rows.append([m.call, "yes" if m.lawful else "", str(len(m.recalled) + len(m.missed)),
                     str(len(m.recalled)), str(m.findings), str(len(m.false_positives)),
                     "yes" if likely_scam else ""])
    out("Per call (fused, with Whisper; \"likely scam\": the report's headline, 很可能是诈骗):")
    out()
    out(table(["call", "lawful", "labels", "recalled", "findings", "false pos.", "likely scam"],
              rows))
    out()
    res_b["scam_headline"] = scams.to_dict()
    out(scams.line())
    out()

    res[set_name] = res_b
    if role in BLIND_ROLES:
        # Printing what was missed would show the set's sentences to whoever tunes next.
        res_b["false_positives"] = sum(len(m.false_positives) for m in matches["fused"])
        res_b["misses"] = sum(len(m.missed) for m in matches["fused"])
        return [f"### (b) {calls_dir.relative_to(ROOT)}: details withheld (blind set; "
                f"{res_b['false_positives']} false positives, {res_b['misses']} misses)", ""]
    details = b_details(setup, matches["fused"], reports, turns, script)
    res_b["false_positives"] = details["fp"]
    res_b["misses"] = details["miss"]
    return [line.replace("### (b)", f"### (b) {calls_dir.relative_to(ROOT)}:", 1)
            for line in details["lines"]]


def _heard(rep, turn: Turn) -> list[Segment]:
    """Segments overlapping the turn itself (no tolerance), on its channel."""
    return [s for s in rep.segments
            if same_channel(s.channel, turn.channel) and s.start < turn.end and s.end > turn.start]


def _touching(f: Finding, turn: Turn, tol: float) -> bool:
    return same_channel(f.channel, turn.channel) and overlaps(f.start, f.end, turn, tol)


def b_details(setup: Setup, matches: list[CallMatch], reports: dict, turns: dict,
              script: dict[str, dict]) -> dict:
    """Every false positive and miss with the words heard and a hint at its cause, by
    comparing with the detector on the clean script of the same call (`script`, from
    script_findings):
    - timing: the right category lies just outside the tolerance;
    - detection: the clean script gives the same false positive / misses it too;
    - segmentation: found on the script, and in the heard words once their segments are
      read as one;
    - ASR: found on the script (miss) or not flagged there (false positive), the heard words
      differ."""
    fused = setup.detectors["fused"]
    others = [n for n in setup.detectors if n != "fused"]
    lines = ["### (b) False positives (fused, with Whisper)", ""]
    fp_out, miss_out = [], []
    for m in matches:
        rep = reports[m.call]
        call_turns = turns[m.call]
        by_index = {s.index: s for s in rep.segments}
        for f in m.false_positives:
            heard = "".join(by_index[i].text for i in f.segment_indices if i in by_index)
            over = [t for t in call_turns if _touching(f, t, 0.0)]
            near = [t for t in call_turns
                    if f.category in t.labels and _touching(f, t, NEAR_SECONDS)]
            on_script = [g for g in script["fused"][m.call] if g.category == f.category
                         and same_channel(g.channel, f.channel)
                         and g.start <= f.end + TOLERANCE and g.end >= f.start - TOLERANCE]
            if near:
                cause = (f"timing: turn {near[0].index} labelled {f.category} at "
                         f"{near[0].start:.1f}-{near[0].end:.1f} s is just outside ±{TOLERANCE} s")
            elif on_script:
                who = ", ".join(f"{call_turns[i].speaker} turn {call_turns[i].index}"
                                for i in on_script[0].segment_indices)
                cause = (f"detection: the clean script is flagged {f.category} here too ({who}; "
                         f"{', '.join(on_script[0].source)}): the detector over-triggers, or "
                         "the label misses it")
            else:
                ref = "".join(t.text for t in over)
                cause = ("ASR: the clean script is not flagged here, the words as heard are"
                         + (f" (CER of the heard words {fmt(cer(ref, heard), 2)})" if ref else ""))
            fp_out.append({
                "call": m.call, "category": f.category, "start": round(f.start, 2),
                "end": round(f.end, 2), "score": round(f.score, 3), "evidence": f.evidence,
                "source": f.source, "heard": heard, "cause": cause,
                "turns": [{"index": t.index, "speaker": t.speaker, "labels": list(t.labels),
                           "text": t.text} for t in over],
            })
            lines.append(f"- **{m.call}** {f.category} {f.start:.1f}-{f.end:.1f} s "
                         f"(score {f.score:.2f}; {', '.join(f.source)}"
                         + (f"; evidence {'、'.join(f.evidence)}" if f.evidence else "") + ")")
            lines.append(f"  - heard: {heard}")
            for t in over:
                lab = ",".join(t.labels) or "lawful"
                lines.append(f"  - script, {t.speaker} turn {t.index} [{lab}]: {t.text}")
            lines.append(f"  - cause hint: {cause}")
    if not fp_out:
        lines.append("None.")
    lines += ["", "### (b) Misses (fused, with Whisper)", ""]
    for m in matches:
        rep = reports[m.call]
        for t, c in m.missed:
            segs = _heard(rep, t)
            heard = "".join(s.text for s in segs)
            near = [f for f in rep.findings if f.category == c and _touching(f, t, NEAR_SECONDS)]
            found = {n: any(g.category == c and _touching(g, t, TOLERANCE)
                            for g in script[n][m.call]) for n in script}
            joined = bool(heard) and c in categories_of(fused, heard, t.channel)
            if near:
                cause = (f"timing: a {c} finding at {near[0].start:.1f}-{near[0].end:.1f} s "
                         f"lies outside ±{TOLERANCE} s")
            elif found["fused"] and joined and len(segs) > 1:
                cause = (f"segmentation: found on the clean script, and in the heard words "
                         f"when their {len(segs)} segments are read as one")
            elif found["fused"]:
                cause = (f"ASR: found on the clean script, not in the heard words "
                         f"(CER {fmt(cer(t.text, heard), 2)})")
            else:
                alone = "".join(f"; {n} alone: {'yes' if found[n] else 'no'}" for n in others)
                cause = f"detection: missed on the clean script too{alone}"
            miss_out.append({"call": m.call, "category": c, "turn": t.index,
                             "start": t.start, "end": t.end, "text": t.text, "heard": heard,
                             "cause": cause})
            lines.append(f"- **{m.call}** {c} turn {t.index} {t.start:.1f}-{t.end:.1f} s")
            lines.append(f"  - script: {t.text}")
            lines.append(f"  - heard: {heard or '(nothing)'}")
            lines.append(f"  - cause hint: {cause}")
    if not miss_out:
        lines.append("None.")
    lines.append("")
    return {"lines": lines, "fp": fp_out, "miss": miss_out}


# --------------------------------------------------------------------------- (c) external


def part_c(setup: Setup, res: dict, limit: int | None) -> list[str]:
    ext: dict[str, dict] = {}
    for name, flagger in setup.text_flaggers().items():
        t = time.time()
        ext[name] = eval_text.eval_external(flagger, DATA_DIR / "text", limit)
        progress(f"(c) {name}: {time.time() - t:.0f} s")
    res["c"] = ext
    names = list(ext)
    first = ext[names[0]]
    out("## (c) External proxy text sets (../shared/data/text)")
    out()
    out("**Proxies**: social-media comments, fraud SMS and LLM-simulated scam calls, not "
        "debt-collection calls; their labels map to our categories only roughly. Long texts "
        "are cut into sentences; a text counts as flagged when any sentence is."
        + (f" At most {limit} items per set." if limit else ""))
    out()
    rows = []
    for set_name in first["insult"]:
        rows.append(_prf_row(set_name, "insult",
                             [ext[n]["insult"][set_name]["insult"] for n in names]))
    for cat in ("impersonation", "sensitive_info", "private_payment"):
        rows.append(_prf_row("Telecom_Fraud_Texts_5 (neg: normal SMS)", cat,
                             [ext[n]["fraud_texts5"][cat] for n in names]))
    header = ["set", "category", "+/−"] + [
        f"{setup.titles[n]} {m}" for n in names for m in ("P", "R", "F1")
    ]
    out(table(header, rows))
    out()

    out("Recall on scam classes (a text counts when any mapped category is flagged):")
    out()
    rows = []
    for src, key in (("Telecom_Fraud_Texts_5", "fraud_texts5"), ("TeleAntiFraud", "teleantifraud")):
        for k, v in first[key].items():
            if isinstance(v, dict) and "recall_any_of" in v:
                cats = "/".join(v["recall_any_of"]["categories"])
                rows.append([f"{src} {k}", cats, str(v["n"])]
                            + [fmt(ext[n][key][k]["recall_any_of"]["recall"]) for n in names])
    out(table(["class", "counts as", "n"] + [setup.titles[n] for n in names], rows))
    out()

    out("False alarms (share of lawful items with any flag; every flag is wrong):")
    out()
    rows = []
    for label, path in (
        ("normal SMS (TFT5 label00)", ("fraud_texts5", "label00_normal")),
        ("TeleAntiFraud normal service dialogues", ("teleantifraud", "normal_dialogues")),
        ("TeleAntiFraud normal caller turns", ("teleantifraud", "normal_caller_turns")),
        ("lender bot collector lines", ("collection_bot", "collector_lines")),
        ("lender bot relay-to-relative lines (boundary)", ("collection_bot",
                                                           "relay_to_relative_lines")),
    ):
        vals = [ext[n][path[0]][path[1]] for n in names]
        rows.append([label, str(vals[0]["n"])] + [fmt(v["any"]) for v in vals])
    for set_name, sec in first["insult"].items():
        for k, v in sec.items():
            if k.startswith("insult_flag_rate_neg"):
                rows.append([f"{set_name} {k.removeprefix('insult_flag_rate_')} (insult rate)",
                             str(v["n"])] + [fmt(ext[n]["insult"][set_name][k]["rate"])
                                             for n in names])
    out(table(["lawful set", "n"] + [setup.titles[n] for n in names], rows))
    out()

    lines = ["### (c) What the false alarms are (fused, share of items per category)", ""]
    fz = ext["fused"]
    for label, r in (("normal SMS", fz["fraud_texts5"]["label00_normal"]),
                     ("TeleAntiFraud normal dialogues", fz["teleantifraud"]["normal_dialogues"]),
                     ("TeleAntiFraud normal caller turns",
                      fz["teleantifraud"]["normal_caller_turns"])):
        per = ", ".join(f"{c} {v:.4f}" for c, v in sorted(r["per_category"].items())) or "none"
        lines.append(f"- {label} (n={r['n']}): {per}")
    flagged = fz["collection_bot"].get("flagged", {})
    lines.append(f"- lender bot lines flagged: {json.dumps(flagged, ensure_ascii=False)}"
                 if flagged else "- lender bot lines flagged: none")
    lines.append("")
    return lines


def _prf_row(set_name: str, cat: str, ms: list[dict]) -> list[str]:
    row = [set_name, cat, f"{ms[0]['positives']}/{ms[0]['negatives']}"]
    for m in ms:
        row += [fmt(m["precision"]), fmt(m["recall"]), fmt(m["f1"])]
    return row


# --------------------------------------------------------------------------- (d) CER


def load_speech(limit: int | None) -> list[dict]:
    with open(SPEECH_DIR / "transcripts.tsv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return cap(rows, limit)


def plain_whisper() -> Callable:
    """faster-whisper base as anyone would run it: no prompt, no hotwords, no post-processing."""
    from faster_whisper import WhisperModel

    from analyzer.weights import ensure_embedded_model

    model = WhisperModel(str(ensure_embedded_model()), compute_type="int8")

    def transcribe(audio) -> str:
        segments, _ = model.transcribe(audio, language="zh", beam_size=5, vad_filter=True)
        return "".join(s.text for s in segments)

    return transcribe


def part_d(setup: Setup, res: dict, limit: int | None) -> list[str]:
    from analyzer.audio import decode

    rows = load_speech(limit)
    analyzer = setup.analyzer
    # Analyzer.transcribe: the transcriber plus the pipeline's own filters (prompt echoes).
    systems: dict[str, Callable] = {
        "callaudit": lambda a: "".join(s.text for s in analyzer.transcribe(a)),
        "plain base": lambda a: plain(a.mono()),
    }
    plain = plain_whisper()
    channels = ("16k", "tel8k")
    totals = {(s, ch, sub): CerTotal() for s in systems for ch in channels
              for sub in [*SUBSETS.values(), "overall"]}
    seconds = {s: 0.0 for s in systems}
    audio_seconds = 0.0
    per_utt = []
    for i, r in enumerate(rows, 1):
        sub = SUBSETS.get(r["set"], r["set"])
        for ch in channels:
            audio = decode(SPEECH_DIR / r[f"audio_{ch}"])
            audio_seconds += audio.duration
            item = {"utt": r["utt_id"], "set": sub, "channel": ch, "ref": r["text"]}
            for s, fn in systems.items():
                t = time.time()
                hyp = fn(audio)
                seconds[s] += time.time() - t
                for key in (sub, "overall"):
                    d = totals[(s, ch, key)].add(r["text"], hyp)
                item[s] = {"hyp": hyp, "edits": d}
            per_utt.append(item)
        if i % 20 == 0 or i == len(rows):
            progress(f"(d) {i}/{len(rows)} utterances")

    out(f"## (d) Character error rate of the transcription ({len(rows)} utterances, "
        "../shared/data/speech)")
    out()
    out("CER = edit distance / reference length over all characters of a subset, both sides "
        "in Simplified Chinese with punctuation and spaces stripped. \"callaudit\" is "
        "pipeline.Analyzer().transcribe(decoded audio): its transcriber (prompt, hotwords, "
        "sentence cutting, hallucination filter) and the pipeline's prompt-echo filter; "
        "\"plain base\" is WhisperModel(embedded base, int8).transcribe(language=zh, "
        "beam 5, VAD), segments concatenated, same decoded audio. tel8k is a **simulated** "
        "telephone channel. \"README\" is plain base as measured in ../shared/data/README.md "
        "(with a Simplified initial prompt).")
    out()
    header = ["subset", "utts", "ref chars"] + [
        f"{ch} {s}" for ch in channels for s in [*systems, "README"]
    ]
    table_rows = []
    res_d: dict = {"utterances": len(rows), "cer": {}}
    for sub in [*SUBSETS.values(), "overall"]:
        t0 = totals[("callaudit", "16k", sub)]
        if not t0.utterances:
            continue
        row = [f"**{sub}**" if sub == "overall" else sub, str(t0.utterances), str(t0.ref_chars)]
        for ch in channels:
            for s in systems:
                v = totals[(s, ch, sub)].cer
                row.append(fmt(v))
                res_d["cer"].setdefault(s, {}).setdefault(ch, {})[sub] = v
            row.append(fmt(README_CER[ch].get(sub)))
        table_rows.append(row)
    out(table(header, table_rows))
    out()
    for s, sec in seconds.items():
        out(f"- {s}: {sec:.0f} s for {audio_seconds:.0f} s of audio "
            f"(real-time factor {sec / audio_seconds:.2f})" if audio_seconds else "")
    out()
    res_d["seconds"] = seconds
    res_d["audio_seconds"] = audio_seconds
    res_d["per_utterance"] = per_utt
    res["d"] = res_d

    lines = ["### (d) Where callaudit's transcription loses most against plain base", ""]
    worse = sorted(per_utt, key=lambda x: x["plain base"]["edits"] - x["callaudit"]["edits"])
    shown = [x for x in worse if x["callaudit"]["edits"] > x["plain base"]["edits"]][:10]
    for x in shown:
        lines.append(f"- {x['utt']} ({x['set']}, {x['channel']}): callaudit "
                     f"{x['callaudit']['edits']} edits, plain {x['plain base']['edits']}")
        lines.append(f"  - ref: {x['ref']}")
        lines.append(f"  - callaudit: {x['callaudit']['hyp']}")
        lines.append(f"  - plain: {x['plain base']['hyp']}")
    if not shown:
        lines.append("None: callaudit is never worse on a single utterance.")
    lines += ["", "### (d) Worst utterances for callaudit (tel8k)", ""]
    tel = sorted((x for x in per_utt if x["channel"] == "tel8k"),
                 key=lambda x: -x["callaudit"]["edits"])[:8]
    for x in tel:
        lines.append(f"- {x['utt']} ({x['set']}): {x['callaudit']['edits']} edits")
        lines.append(f"  - ref: {x['ref']}")
        lines.append(f"  - callaudit: {x['callaudit']['hyp']}")
    lines.append("")
    return lines


# --------------------------------------------------------------------------- main


def _git(*args: str) -> str | None:
    """stdout of a git command in the repository, or None when git or the checkout is missing."""
    try:
        r = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout if r.returncode == 0 else None


def git_commit() -> str:
    head = _git("rev-parse", "--short", "HEAD")
    if head is None:
        return "unknown (not a git checkout)"
    dirty = (_git("status", "--porcelain") or "").strip()
    return head.strip() + (" (with uncommitted changes)" if dirty else "")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default=PARTS,
                    help="parts to run, e.g. a,b (default all: a,b,c,d)")
    ap.add_argument("--limit", type=int, default=None,
                    help="quick run: at most N calls (b), items per set (c), utterances (d)")
    ap.add_argument("--json", type=Path, help="also write all numbers here")
    ap.add_argument("--calls", default=DEFAULT_CALL_SETS,
                    help=f"(b) call sets to run, of {','.join(CALL_SETS)} "
                         f"(default {DEFAULT_CALL_SETS})")
    ap.add_argument("--cache", action="store_true",
                    help="(b) reuse transcripts from the per-user cache (default: transcribe)")
    ap.add_argument("--keep-d", type=Path, metavar="FILE",
                    help="(d) when d is not run: copy part d from an earlier output of this "
                         "script, with the commit it was measured at (transcription unchanged)")
    args = ap.parse_args(argv)
    parts = [p for p in args.only.replace(",", "") if p.strip()]
    bad = [p for p in parts if p not in PARTS]
    if bad or not parts:
        ap.error(f"--only takes letters from {','.join(PARTS)}")
    if any(c not in CALL_SETS for c in args.calls.split(",")):
        ap.error(f"--calls takes names from {','.join(CALL_SETS)}")
    kept_d: list[str] = []
    if args.keep_d is not None:
        if "d" in parts:
            ap.error("--keep-d replaces part d: leave d out of --only")
        try:
            kept_d = kept_part_d(args.keep_d.read_text(encoding="utf-8"), args.keep_d)
        except (OSError, ValueError) as e:
            ap.error(f"--keep-d {args.keep_d}: {e}")

    started = time.time()
    setup = Setup(use_cache=args.cache)
    det = setup.detectors["fused"]
    commit = git_commit()
    out("# callaudit evaluation")
    out()
    out(f"- commit {commit}, {time.strftime('%Y-%m-%d %H:%M')}, "
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f} at start")
    out(f"- detector: {type(det).__name__}, threshold {getattr(det, 'threshold', '?')}, "
        f"columns {', '.join(setup.detectors)}"
        + (f"; classifier {setup.classifier.name}" if setup.classifier is not None else ""))
    for n in setup.notes:
        out(f"- note: {n}")
    out()
    out(LEGEND)
    out()

    res: dict = {"commit": commit, "notes": setup.notes, "timing_seconds": {}}
    details: list[str] = []
    for part in PARTS:
        if part not in parts:
            continue
        t = time.time()
        try:
            if part == "a":
                details += part_a(setup, res)
            elif part == "b":
                details += part_b(setup, res, args.limit, args.calls.split(","))
            elif part == "c":
                if not (DATA_DIR / "text").is_dir():
                    out(f"## (c) skipped: {DATA_DIR / 'text'} not found\n")
                    continue
                details += part_c(setup, res, args.limit)
            elif part == "d":
                if not SPEECH_DIR.is_dir():
                    out(f"## (d) skipped: {SPEECH_DIR} not found\n")
                    continue
                details += part_d(setup, res, args.limit)
        except CallauditError as e:
            out(f"## ({part}) failed: {e}\n")
            res[part] = {"error": str(e)}
        took = time.time() - t
        res["timing_seconds"][part] = took
        out(f"_part ({part}) took {took:.0f} s_")
        out()
        if args.json:  # after every part: a long run cut short keeps what it measured
            write_json(args.json, res)

    for line in kept_d:
        out(line)
    if details:
        out("## Details")
        out()
        for line in details:
            out(line)
    total = time.time() - started
    res["timing_seconds"]["total"] = total
    out(f"_total {total:.0f} s_")
    if args.json:
        write_json(args.json, res)
    return 0


def kept_part_d(text: str, source: Path) -> list[str]:
    """Part d's section of an earlier output, headed by where and when it was measured (so a
    run of parts a-c after a detection-only change need not spend half an hour on it)."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("## (d) Character")), None)
    if start is None:
        raise ValueError("no part (d) in it")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("_part (d) took")), None)
    if end is None:
        raise ValueError("part (d) is cut short in it")
    # The commit it was measured at: an earlier copy names its origin, a full run its own.
    origin = re.search(r"Part \(d\) below (?:comes from|is copied from).*?commit (\w+)", text)
    own = re.search(r"^- commit (\w+)", text, re.M)
    commit = origin.group(1) if origin else own.group(1) if own else "unknown"
    diff = _git("diff", "--name-only", commit, "--", "analyzer/asr.py", "analyzer/audio.py",
                "analyzer/text.py")
    changed = diff.split() if diff is not None else ["unknown"]
    note = (f"<!-- Part (d) below is copied from {source}, measured at commit {commit} "
            f"(`scripts/eval.py --keep-d`); transcription files changed since: "
            f"{', '.join(changed) if changed else 'none'}. -->")
    return [note, ""] + lines[start : end + 1] + [""]


def write_json(path: Path, res: dict) -> None:
    from analyzer.fileio import atomic_write_text

    atomic_write_text(path, json.dumps(res, ensure_ascii=False, indent=1, default=str))


if __name__ == "__main__":
    sys.exit(main())
