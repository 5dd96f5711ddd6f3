"""False-hit rates of the lexicon (rules alone) on shared text sets, read in place.

Usage (from the repository root):
    .venv/bin/python scripts/eval_lexicon.py              # negative (lawful) sets
    .venv/bin/python scripts/eval_lexicon.py --show 5     # plus 5 flagged examples per set
    .venv/bin/python scripts/eval_lexicon.py --positives  # fraud scripts: what the rules find

Per set: share of texts with an exact rule hit, a homophone-only (fuzzy) hit, and a finding
of the rules-only detector (hits after context, counter-context and the threshold), with the
rules that fire most. Every finding on a negative set is a false alarm. The sets are
third-party proxies (../shared/data/README.md), never copied into the project.
"""

from __future__ import annotations

import argparse
import collections
import csv
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from analyzer.lexicon import default_lexicon  # noqa: E402
from analyzer.scoring import RuleDetector  # noqa: E402
from analyzer.types import Segment  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "text"
TAM = DATA / "teleantifraud_mas" / "derived"
csv.field_size_limit(10**8)


def tsv(path: Path) -> Iterator[dict]:
    with open(path, encoding="utf-8", newline="") as f:
        yield from csv.DictReader(f, delimiter="\t")


def negative_sets() -> Iterator[tuple[str, list[str]]]:
    tam = list(tsv(TAM / "turns__normal_dialogues-20250303_015751.tsv"))
    yield "TAM normal, caller turns", [r["text"] for r in tam if r["speaker"].startswith("left")]
    yield "TAM normal, callee turns", [r["text"] for r in tam if r["speaker"].startswith("right")]
    sms = DATA / "telecom_fraud_texts5/derived/normal_label00.utf8.tsv"
    yield "TFT5 normal SMS", [r["content"] for r in tsv(sms)]
    bot = DATA / "yld_collection_bot/orig/data"
    dom = (bot / "domain.yml").read_text(encoding="utf-8")
    yield "yld collector lines", re.findall(r'^\s+- "(.+)"\s*$', dom, re.M)
    nlu = (bot / "nlu_expired.md").read_text(encoding="utf-8")
    yield "yld debtor replies", [ln[2:].strip() for ln in nlu.splitlines() if ln.startswith("- ")]


def positive_sets() -> Iterator[tuple[str, list[str]]]:
    by: dict[str, list[str]] = collections.defaultdict(list)
    for r in tsv(DATA / "telecom_fraud_texts5/derived/fraud_label01-04.utf8.tsv"):
        by[f"TFT5 fraud {r['source_file']}"].append(r["content"])
    for name in ("turns__fraud_dialogues-20250228_023012.tsv",
                 "turns__fraud_dialogues-20250301_111817.tsv"):
        for r in tsv(TAM / name):
            if r["speaker"].startswith("left"):
                by[f"TAM fraud caller {r['fraud_type']}"].append(r["text"])
    yield from sorted(by.items())


def run(name: str, texts: list[str], lexicon, detector, show: int = 0) -> dict:
    """Hit and finding rates of one set, printed and returned."""
    t = time.time()
    n = len(texts) or 1
    exact = fuzzy_only = any_fuzzy = found = 0
    rules: collections.Counter = collections.Counter()
    fuzzy_rules: collections.Counter = collections.Counter()
    cats: collections.Counter = collections.Counter()
    examples = []
    for text in texts:
        m = lexicon.analyze(text)
        e = [h for h in m.hits if not h.fuzzy]
        fz = [h for h in m.hits if h.fuzzy]
        exact += bool(e)
        fuzzy_only += bool(fz) and not e
        any_fuzzy += bool(fz)
        rules.update(h.rule_id for h in e)
        fuzzy_rules.update(h.rule_id for h in fz)
        fs = detector.detect([Segment(0, 0.0, 1.0, text)], whole_call=False)
        if fs:
            found += 1
            cats.update(f.category for f in fs)
            if len(examples) < show:
                examples.append((text[:80], [(f.category, f.evidence, round(f.score, 2))
                                             for f in fs]))
    dt = time.time() - t
    print(f"## {name}: n={len(texts)}  exact-hit {exact / n:.2%}  "
          f"fuzzy-only-hit {fuzzy_only / n:.2%}  any-fuzzy {any_fuzzy / n:.2%}  "
          f"findings {found / n:.2%}  ({dt / n * 1000:.2f} ms/text)")
    print("   top exact rules:", rules.most_common(8))
    print("   top fuzzy rules:", fuzzy_rules.most_common(8))
    print("   finding categories:", dict(cats))
    for ex in examples:
        print("   e.g.", ex)
    return {"n": len(texts), "exact": exact / n, "fuzzy_only": fuzzy_only / n,
            "findings": found / n, "categories": dict(cats)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--show", type=int, default=0, help="flagged examples to print per set")
    ap.add_argument("--positives", action="store_true",
                    help="score the fraud scripts instead of the lawful sets")
    args = ap.parse_args(argv)
    if not DATA.is_dir():
        print(f"{DATA} not found: the shared data sets are needed", file=sys.stderr)
        return 2
    lexicon = default_lexicon()
    detector = RuleDetector(lexicon)
    for name, texts in positive_sets() if args.positives else negative_sets():
        run(name, texts, lexicon, detector, args.show)
    return 0


if __name__ == "__main__":
    sys.exit(main())
