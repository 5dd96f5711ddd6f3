"""Overlap check for a new blind evaluation set: prints only counts and THIS set's own clauses,
never the reference texts (the writer of a blind set must not read the other sets).

Usage (from the repository root), before rendering; exit status 1 while anything collides:
    .venv/bin/python scripts/check_overlap.py eval/holdout10/dialogues.yaml samples/dialogues.yaml eval corpus

Clause check: every turn text (and `say`) and scenario line of the set is split at
punctuation (。！？，、：；…— and other marks) and whitespace; clauses of 6+ characters
are searched as substrings of the reference texts (whitespace removed). Reverse: every
reference clause (same splitting) of 6+ characters searched inside this set's turns and
scenarios (whitespace removed); only call id and turn index are printed.
Sentence check: turns split at 。！？…, then ，、：； and whitespace removed; sentences of
6+ characters compared with the reference sentences made the same way, and searched in
the corpus/*.tsv text with the same characters removed.
References: samples/dialogues.yaml, every other eval/*/dialogues.yaml,
corpus/calls/*/dialogues.yaml and corpus/*.tsv (and any other corpus text file).
"""
from __future__ import annotations

import glob
import os
import re
import sys

import yaml

SPLIT = r"[。！？，、：；…—\-\s,.!?;:()（）《》“”\"'「」『』【】\[\]]+"
SENT_SPLIT = r"[。！？…!?]+"
STRIP = r"[，、：；,;:\s]"


def clauses(text):
    return [c for c in (re.sub(r"\s", "", x) for x in re.split(SPLIT, text)) if len(c) >= 6]


def sentences(text):
    out = []
    for s in re.split(SENT_SPLIT, text):
        s = re.sub(STRIP, "", s)
        if len(s) >= 6:
            out.append(s)
    return out


def load_set(path):
    with open(path, encoding="utf-8") as f:
        d = yaml.safe_load(f)
    items = []  # (call id, turn index or 'scenario', text)
    for c in d["calls"]:
        items.append((c["id"], "scenario", str(c.get("scenario", ""))))
        for i, t in enumerate(c["turns"]):
            items.append((c["id"], i, str(t["text"])))
            if t.get("say"):
                items.append((c["id"], f"{i}say", str(t["say"])))
    return items


def ref_paths(args, own):
    paths = []
    for a in args:
        if os.path.isfile(a):
            paths.append(a)
        elif os.path.basename(a.rstrip("/")) == "eval":
            paths += sorted(glob.glob(os.path.join(a, "*", "dialogues.yaml")))
        else:
            for p in sorted(glob.glob(os.path.join(a, "**", "*"), recursive=True)):
                if os.path.isfile(p) and p.rsplit(".", 1)[-1] in ("yaml", "tsv", "txt", "md", "json"):
                    paths.append(p)
    own = os.path.abspath(own)
    return [p for p in paths if os.path.abspath(p) != own]


def ref_texts(path):
    """Texts of one reference file (never printed)."""
    with open(path, encoding="utf-8", errors="ignore") as f:
        raw = f.read()
    if path.endswith(".yaml"):
        try:
            d = yaml.safe_load(raw)
            out = []
            for c in d.get("calls", []):
                out.append(str(c.get("scenario", "")))
                for t in c.get("turns", []):
                    out.append(str(t.get("text", "")))
                    if t.get("say"):
                        out.append(str(t["say"]))
            return raw, out
        except (yaml.YAMLError, AttributeError, TypeError):
            pass  # not a dialogue file: read it line by line
    return raw, raw.splitlines()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2:
        print(__doc__)
        return 2
    own, refs = args[0], args[1:]
    items = load_set(own)
    paths = ref_paths(refs, own)
    big = []
    ref_clauses = set()
    ref_sents = set()
    tsv_stripped = []
    for p in paths:
        raw, texts = ref_texts(p)
        big.append(re.sub(r"\s", "", raw))
        for t in texts:
            ref_clauses.update(clauses(t))
            if p.endswith(".yaml"):
                ref_sents.update(sentences(t))
        if not p.endswith(".yaml"):
            tsv_stripped.append(re.sub(STRIP, "", raw))
    bigtext = "\n".join(big)
    tsvtext = "\n".join(tsv_stripped)
    print(f"reference files: {len(paths)}")

    # forward clause check
    own_clauses = []
    for cid, idx, text in items:
        for c in clauses(text):
            own_clauses.append((cid, idx, c))
    fwd = [(cid, idx, c) for cid, idx, c in own_clauses if c in bigtext]
    print(f"forward: {len(fwd)} of {len(own_clauses)} clauses collide")
    for cid, idx, c in fwd:
        print(f"  FWD {cid} {idx}: {c}")

    # reverse clause check
    own_flat = [(cid, idx, re.sub(r"\s", "", text)) for cid, idx, text in items]
    rev_hits = 0
    where = {}
    for rc in ref_clauses:
        for cid, idx, t in own_flat:
            if rc in t:
                rev_hits += 1
                where[(cid, idx)] = where.get((cid, idx), 0) + 1
    print(f"reverse: {rev_hits} hits of {len(ref_clauses)} reference clauses")
    for (cid, idx), n in sorted(where.items(), key=str):
        print(f"  REV {cid} {idx}: {n}")

    # sentence check (turn texts and say only)
    own_sents = []
    for cid, idx, text in items:
        if idx == "scenario":
            continue
        for s in sentences(text):
            own_sents.append((cid, idx, s))
    sh = [(cid, idx, s) for cid, idx, s in own_sents if s in ref_sents or s in tsvtext]
    print(f"sentences: {len(sh)} of {len(own_sents)} collide")
    for cid, idx, s in sh:
        print(f"  SENT {cid} {idx}: {s}")
    return 1 if fwd or rev_hits or sh else 0


if __name__ == "__main__":
    sys.exit(main())
