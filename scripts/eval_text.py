"""Text-level evaluation of a detector: the corpus held-out split and external proxy sets.

Usage (from the repository root):
    .venv/bin/python scripts/eval_text.py                  # shipped classifier, all sets
    .venv/bin/python scripts/eval_text.py --limit 500      # quicker: at most 500 items a set
    .venv/bin/python scripts/eval_text.py --json out.json --card models/MODEL_CARD.md

Importable (e.g. by `make eval`): every function returns plain dicts, and each takes a
*flagger*, so the same harness scores the classifier alone and the fused detector:

    flagger(docs: list[list[str]]) -> list[set[str]]

A doc is a list of segment texts (one utterance, or a longer text cut into sentences as
Whisper would cut speech); the flagger returns the categories it flags anywhere in each doc.
`classifier_flagger(clf)` and `detector_flagger(detector)` build one.

The external sets (../shared/data, read by path, never copied) are PROXIES: social-media
comments, fraud SMS and LLM-simulated scam calls, not real debt-collection calls. Their labels
are per text and only roughly map to our categories (see ../shared/data/README.md).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from analyzer.types import CATEGORIES, Segment  # noqa: E402

DATA_DIR = ROOT.parent / "shared" / "data" / "text"
Flagger = Callable[[list[list[str]]], list[set[str]]]
_SENTENCE = re.compile(r"(?<=[。！？!?；;\n])")


def sentences(text: str) -> list[str]:
    """A long text as the segments Whisper might produce: one per sentence."""
    parts = [p.strip() for p in _SENTENCE.split(text)]
    return [p for p in parts if p] or [text]


# --------------------------------------------------------------------------- flaggers


def classifier_flagger(clf, window: bool = True) -> Flagger:
    """Categories whose probability reaches the classifier's threshold in any segment (with
    the window helper, a segment also counts when read with its neighbour)."""

    def flag(docs: list[list[str]]) -> list[set[str]]:
        out = []
        for segs in docs:
            proba = clf.window_proba(segs).proba if window else clf.predict_proba(segs)
            hit = clf.flags(proba).any(axis=0)
            out.append({c for c, h in zip(clf.categories, hit, strict=True) if h})
        return out

    return flag


def detector_flagger(detector) -> Flagger:
    """Categories of the findings `detector.detect(segments)` reports for each doc; segments
    are laid out 3 s apart on one mixed channel."""

    def flag(docs: list[list[str]]) -> list[set[str]]:
        out = []
        for segs in docs:
            segments = [
                Segment(index=i, start=3.0 * i, end=3.0 * i + 2.5, text=t)
                for i, t in enumerate(segs)
            ]
            out.append({f.category for f in detector.detect(segments)})
        return out

    return flag


# --------------------------------------------------------------------------- metrics


def binary_metrics(truth: Sequence[bool], pred: Sequence[bool]) -> dict:
    tp = sum(t and p for t, p in zip(truth, pred, strict=True))
    fp = sum(p and not t for t, p in zip(truth, pred, strict=True))
    fn = sum(t and not p for t, p in zip(truth, pred, strict=True))
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return {
        "precision": prec, "recall": rec, "f1": f1,
        "positives": sum(map(bool, truth)), "negatives": len(truth) - sum(map(bool, truth)),
    }


def flag_rates(flags: list[set[str]]) -> dict:
    """Share of docs flagged with anything, and per category."""
    n = len(flags) or 1
    per = {c: sum(c in f for f in flags) / n for c in CATEGORIES}
    return {"n": len(flags), "any": sum(bool(f) for f in flags) / n,
            "per_category": {c: r for c, r in per.items() if r > 0}}


def _cap(items: list, limit: int | None) -> list:
    """At most `limit` items, spread evenly over the list (deterministic)."""
    if limit is None or len(items) <= limit:
        return items
    step = len(items) / limit
    return [items[int(i * step)] for i in range(limit)]


# --------------------------------------------------------------------------- (a) held-out


def eval_heldout(flagger: Flagger, corpus_dir: Path | str = ROOT / "corpus",
                 seed: int = 0, holdout: float = 0.2) -> dict:
    """Per-category P/R/F1 on the corpus held-out split (the same deterministic split
    `callaudit train` uses for this seed), each utterance one segment."""
    from analyzer.classifier import CATEGORY_IDS, corpus_sha256, load_corpus, split_holdout

    examples, _ = load_corpus(Path(corpus_dir))
    _, held = split_holdout(examples, holdout, seed)
    flags = flagger([[e.text] for e in held])
    per = {
        c: binary_metrics([c in e.labels for e in held], [c in f for f in flags])
        for c in CATEGORY_IDS
    }
    lawful = [f for e, f in zip(held, flags, strict=True) if not e.labels]
    any_violation = binary_metrics([bool(e.labels) for e in held], [bool(f) for f in flags])
    return {
        "set": "corpus held-out split (in-domain)",
        "corpus_sha256": corpus_sha256(Path(corpus_dir)),
        "n": len(held),
        "per_category": per,
        "any_violation": any_violation,
        "lawful_false_alarm": flag_rates(lawful),
    }


# --------------------------------------------------------------------------- (c) external


def _read_cold(data: Path) -> list[dict]:
    with open(data / "cold/orig/COLDataset/test.csv", encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def eval_insult(flagger: Flagger, data: Path = DATA_DIR, limit: int | None = None) -> dict:
    """insult vs COLD test (attack on an individual = positive; safe and anti-bias =
    negative) and ToxiCN test (general offensive = positive; non-toxic and 'reporting' =
    negative). Attacks on groups / hate speech are neither: only their flag rate is shown."""
    out = {}
    rows = _read_cold(data)
    groups = {
        "pos": [r["TEXT"] for r in rows if r["fine-grained-label"] == "1"],
        "neg_safe": [r["TEXT"] for r in rows if r["fine-grained-label"] == "0"],
        "neg_antibias": [r["TEXT"] for r in rows if r["fine-grained-label"] == "3"],
        "other_group_attack": [r["TEXT"] for r in rows if r["fine-grained-label"] == "2"],
    }
    out["cold_test"] = _insult_section(flagger, groups, limit)
    items = json.loads((data / "toxicn/orig/ToxiCN_ex/ToxiCN/data/test.json").read_text("utf-8"))
    groups = {
        "pos": [x["content"] for x in items if x["toxic_type"] == 1],
        "neg_safe": [x["content"] for x in items if x["toxic"] == 0],
        "neg_reporting": [x["content"] for x in items if x["expression"] == 3],
        "other_hate": [x["content"] for x in items if x["toxic_type"] == 2 and x["expression"] != 3],
    }
    out["toxicn_test"] = _insult_section(flagger, groups, limit)
    return out


def _insult_section(flagger: Flagger, groups: dict[str, list[str]], limit: int | None) -> dict:
    flags = {k: flagger([sentences(t) for t in _cap(v, limit)]) for k, v in groups.items()}
    truth, pred = [], []
    for k, fl in flags.items():
        if k == "pos" or k.startswith("neg"):
            truth += [k == "pos"] * len(fl)
            pred += ["insult" in f for f in fl]
    res = {"insult": binary_metrics(truth, pred)}
    for k, fl in flags.items():
        if k != "pos":
            res[f"insult_flag_rate_{k}"] = {"n": len(fl), "rate": _rate(fl, {"insult"})}
    return res


def _rate(flags: list[set[str]], cats: set[str] | None = None) -> float:
    if not flags:
        return 0.0
    return sum(bool(f & cats) if cats else bool(f) for f in flags) / len(flags)


# Telecom_Fraud_Texts_5 classes → the categories a hit counts for (a text counts as found when
# any of them is flagged). label02 (loan/credit-card offers) maps to none of ours.
FRAUD5 = {
    "冒充公检法及政府机关类": ("label01", {"impersonation"}),
    "冒充客服服务": ("label03", {"sensitive_info", "private_payment"}),
    "冒充领导、熟人类": ("label04", {"private_payment"}),
    "贷款、代办信用卡类": ("label02", set()),
}


def eval_fraud_texts(flagger: Flagger, data: Path = DATA_DIR, limit: int | None = None) -> dict:
    """impersonation / sensitive_info / private_payment vs Telecom_Fraud_Texts_5: recall per
    mapped class, false alarms on the normal SMS (label00); precision against label00 only."""
    base = data / "telecom_fraud_texts5/derived"
    with open(base / "fraud_label01-04.utf8.tsv", encoding="utf-8", newline="") as f:
        # Quoted fields hold newlines: default quoting, not QUOTE_NONE.
        fraud = list(csv.DictReader(f, delimiter="\t"))
    with open(base / "normal_label00.utf8.tsv", encoding="utf-8", newline="") as f:
        normal = [r["content"] for r in csv.DictReader(f, delimiter="\t")]
    normal_flags = flagger([sentences(t) for t in _cap(normal, limit)])
    out: dict = {"label00_normal": flag_rates(normal_flags)}
    class_flags = {}
    for label, (name, cats) in FRAUD5.items():
        texts = _cap([r["content"] for r in fraud if r["label"] == label], limit)
        fl = flagger([sentences(t) for t in texts])
        class_flags[name] = fl
        entry = flag_rates(fl)
        if cats:
            entry["recall_any_of"] = {"categories": sorted(cats), "recall": _rate(fl, cats)}
        out[f"{name}_{label}"] = entry
    # Per category: positives = its mapped classes, negatives = normal SMS.
    for cat in ("impersonation", "sensitive_info", "private_payment"):
        pos = [f for name, cats in FRAUD5.values() if cat in cats for f in class_flags[name]]
        truth = [True] * len(pos) + [False] * len(normal_flags)
        pred = [cat in f for f in pos] + [cat in f for f in normal_flags]
        out[cat] = binary_metrics(truth, pred)
    return out


def _dialogues(path: Path) -> dict[str, dict]:
    """tts_id → {fraud_type, is_fraud, caller turns in order}."""
    out: dict[str, dict] = {}
    with open(path, encoding="utf-8", newline="") as f:
        for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            d = out.setdefault(r["tts_id"], {"type": r["fraud_type"], "fraud": r["is_fraud"],
                                             "caller": []})
            if r["speaker"].startswith("left"):
                d["caller"].append(r["text"])
    return {k: v for k, v in out.items() if v["caller"]}


# TeleAntiFraud scam types → our categories (any of them counts as found).
TELEANTIFRAUD = {
    "绑架诈骗": {"threat"},
    "客服诈骗": {"sensitive_info", "private_payment"},
    "银行诈骗": {"sensitive_info", "private_payment"},
    "身份盗窃": {"sensitive_info", "private_payment"},
}


def eval_teleantifraud(flagger: Flagger, data: Path = DATA_DIR, limit: int | None = None) -> dict:
    """Caller turns of LLM-simulated calls, one doc per dialogue: recall on mapped scam types,
    false alarms on the normal service calls (per dialogue and per caller turn)."""
    base = data / "teleantifraud_mas/derived"
    fraud: dict[str, list] = {}
    for path in sorted(base.glob("turns__fraud_dialogues-*.tsv")):
        for d in _dialogues(path).values():  # tts_id repeats across files: keep per file
            fraud.setdefault(d["type"], []).append(d["caller"])
    normal = [d["caller"] for p in sorted(base.glob("turns__normal_dialogues-*.tsv"))
              for d in _dialogues(p).values()]
    normal = _cap(normal, limit)
    out: dict = {"normal_dialogues": flag_rates(flagger(normal))}
    turns = [[t] for d in normal for t in d]
    out["normal_caller_turns"] = flag_rates(flagger(turns))
    for ftype in sorted(fraud):
        fl = flagger(_cap(fraud[ftype], limit))
        entry = flag_rates(fl)
        if ftype in TELEANTIFRAUD:
            cats = TELEANTIFRAUD[ftype]
            entry["recall_any_of"] = {"categories": sorted(cats), "recall": _rate(fl, cats)}
        out[ftype] = entry
    return out


def eval_collection_bot(flagger: Flagger, data: Path = DATA_DIR) -> dict:
    """A lender's compliant reminder-bot lines: every flag is a false alarm (the lines that ask
    a relative to pass the message on are a third_party boundary case, shown apart)."""
    import yaml

    domain = yaml.safe_load((data / "yld_collection_bot/orig/data/domain.yml").read_text("utf-8"))
    lines = {k: v[0] for k, v in domain["templates"].items()}
    relay = {k for k, v in lines.items() if "转达" in v or "通知他" in v}
    flags = dict(zip(lines, flagger([sentences(v) for v in lines.values()]), strict=True))
    return {
        "collector_lines": flag_rates([f for k, f in flags.items() if k not in relay]),
        "relay_to_relative_lines": flag_rates([f for k, f in flags.items() if k in relay]),
        "flagged": {k: sorted(f) for k, f in flags.items() if f},
    }


def eval_external(flagger: Flagger, data: Path | str = DATA_DIR, limit: int | None = None) -> dict:
    """All external proxy sets (needs ../shared/data; raises FileNotFoundError without)."""
    data = Path(data)
    return {
        "note": "PROXIES: third-party texts, not debt-collection calls; labels map roughly.",
        "insult": eval_insult(flagger, data, limit),
        "fraud_texts5": eval_fraud_texts(flagger, data, limit),
        "teleantifraud": eval_teleantifraud(flagger, data, limit),
        "collection_bot": eval_collection_bot(flagger, data),
    }


# --------------------------------------------------------------------------- reporting


def _prf(m: dict) -> str:
    return (f"P {m['precision']:.3f}  R {m['recall']:.3f}  F1 {m['f1']:.3f}  "
            f"(+{m['positives']} / -{m['negatives']})")


def _rates(r: dict) -> str:
    per = ", ".join(f"{c} {v:.3f}" for c, v in sorted(r["per_category"].items()))
    return f"any {r['any']:.3f} of {r['n']}" + (f" ({per})" if per else "")


def format_heldout(res: dict) -> str:
    lines = [f"(a) {res['set']}, n={res['n']}"]
    for c, m in res["per_category"].items():
        lines.append(f"  {c:16s} {_prf(m)}")
    lines.append(f"  {'any violation':16s} {_prf(res['any_violation'])}")
    lines.append(f"  lawful flagged: {_rates(res['lawful_false_alarm'])}")
    return "\n".join(lines)


def format_external(res: dict) -> str:
    ins, f5, taf, bot = (res["insult"], res["fraud_texts5"], res["teleantifraud"],
                         res["collection_bot"])
    lines = [f"(c) external sets — {res['note']}"]
    for name, sec in ins.items():
        lines.append(f"  insult vs {name:12s} {_prf(sec['insult'])}")
        for k, v in sec.items():
            if k != "insult":
                lines.append(f"      {k}: {v['rate']:.3f} of {v['n']}")
    for cat in ("impersonation", "sensitive_info", "private_payment"):
        lines.append(f"  {cat:16s} vs Telecom_Fraud_Texts_5 (neg: label00 SMS) {_prf(f5[cat])}")
    for k, v in f5.items():
        if k not in ("impersonation", "sensitive_info", "private_payment"):
            extra = (f"; recall {'/'.join(v['recall_any_of']['categories'])} "
                     f"{v['recall_any_of']['recall']:.3f}") if "recall_any_of" in v else ""
            lines.append(f"      {k}: flagged {_rates(v)}{extra}")
    lines.append("  TeleAntiFraud (LLM-simulated calls, caller turns):")
    for k, v in taf.items():
        extra = (f"; recall {'/'.join(v['recall_any_of']['categories'])} "
                 f"{v['recall_any_of']['recall']:.3f}") if "recall_any_of" in v else ""
        lines.append(f"      {k}: flagged {_rates(v)}{extra}")
    lines.append(f"  lender bot collector lines (all lawful): flagged {_rates(bot['collector_lines'])}")
    lines.append(f"  lender bot relay-to-relative lines: flagged {_rates(bot['relay_to_relative_lines'])}")
    return "\n".join(lines)


def card_section(ext: dict, limit: int | None) -> str:
    """Markdown for the model card's external-proxy section."""
    ins, f5, taf, bot = (ext["insult"], ext["fraud_texts5"], ext["teleantifraud"],
                         ext["collection_bot"])
    rows = [
        "Proxies only: third-party texts, not debt-collection calls; labels map to our "
        "categories roughly (../shared/data/README.md). Long texts are cut into sentences and "
        "scored with the window helper; a text counts as flagged when any sentence is."
        + (f" At most {limit} items per set." if limit else ""),
        "",
        "| set | category | precision | recall | F1 | +/− |",
        "|---|---|---|---|---|---|",
    ]
    for name, sec in ins.items():
        m = sec["insult"]
        rows.append(f"| {name} | insult | {m['precision']:.3f} | {m['recall']:.3f} | "
                    f"{m['f1']:.3f} | {m['positives']}/{m['negatives']} |")
    for cat in ("impersonation", "sensitive_info", "private_payment"):
        m = f5[cat]
        rows.append(f"| Telecom_Fraud_Texts_5 (neg: normal SMS) | {cat} | {m['precision']:.3f} | "
                    f"{m['recall']:.3f} | {m['f1']:.3f} | {m['positives']}/{m['negatives']} |")
    rows += [
        "",
        "False alarms (share of items with any flag):",
        f"- normal SMS (label00): {f5['label00_normal']['any']:.3f} of {f5['label00_normal']['n']}",
        f"- TeleAntiFraud normal service calls: {taf['normal_dialogues']['any']:.3f} of "
        f"{taf['normal_dialogues']['n']} dialogues, {taf['normal_caller_turns']['any']:.3f} of "
        f"{taf['normal_caller_turns']['n']} caller turns",
        f"- lender's compliant bot lines: {bot['collector_lines']['any']:.3f} of "
        f"{bot['collector_lines']['n']} (relay-to-relative lines: "
        f"{bot['relay_to_relative_lines']['any']:.3f} of {bot['relay_to_relative_lines']['n']})",
    ]
    rows += ["", "Recall on scam dialogues (TeleAntiFraud, LLM-simulated, caller turns):"]
    for ftype, cats in TELEANTIFRAUD.items():
        if ftype in taf:
            rows.append(f"- {ftype} found as {'/'.join(sorted(cats))}: "
                        f"{taf[ftype]['recall_any_of']['recall']:.3f} of {taf[ftype]['n']}")
    return "\n".join(rows)


def update_card(card: Path, section: str) -> None:
    from analyzer.classifier import _EXTERNAL_END, _EXTERNAL_START, _write_atomic

    text = card.read_text(encoding="utf-8")
    head, sep, rest = text.partition(_EXTERNAL_START)
    _, sep2, tail = rest.partition(_EXTERNAL_END)
    if not (sep and sep2):
        raise SystemExit(f"{card}: 找不到外部评测标记，请先用 `callaudit train` 重新生成模型卡。")
    _write_atomic(card, f"{head}{_EXTERNAL_START}\n{section}\n{_EXTERNAL_END}{tail}".encode())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, default=None, help="model dir (default models/)")
    ap.add_argument("--corpus", type=Path, default=ROOT / "corpus")
    ap.add_argument("--data", type=Path, default=DATA_DIR)
    ap.add_argument("--limit", type=int, default=None, help="at most N items per external set")
    ap.add_argument("--no-window", action="store_true", help="score segments alone")
    ap.add_argument("--json", type=Path, help="also write all results as JSON here")
    ap.add_argument("--card", type=Path, help="write the external section into this model card")
    args = ap.parse_args(argv)

    from analyzer.classifier import load_classifier

    clf = load_classifier(args.model)
    flagger = classifier_flagger(clf, window=not args.no_window)
    results: dict = {"model": clf.name}
    seed = clf.meta["config"]["seed"]
    results["heldout"] = eval_heldout(flagger, args.corpus, seed, clf.meta["config"]["holdout"])
    if results["heldout"]["corpus_sha256"] != clf.meta["corpus_sha256"]:
        print("warning: corpus changed since training; held-out split differs", file=sys.stderr)
    print(format_heldout(results["heldout"]))
    if args.data.is_dir():
        results["external"] = eval_external(flagger, args.data, args.limit)
        print(format_external(results["external"]))
        if args.card:
            update_card(args.card, card_section(results["external"], args.limit))
    else:
        print(f"(c) skipped: {args.data} not found", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
