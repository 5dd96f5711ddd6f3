"""Scoring of `make eval` on hand-built cases; every expected value is worked out by hand in
the comments (none is copied from the code's output)."""

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest

from analyzer.evaluation import (
    CerTotal,
    ScamHeadlines,
    Turn,
    cer,
    cer_chars,
    count_by_category,
    edit_distance,
    match_call,
    overlaps,
    prf,
    same_channel,
)
from analyzer.lexicon import default_lexicon
from analyzer.types import CATEGORIES, Finding, Segment

ROOT = Path(__file__).resolve().parent.parent


def finding(cat, start, end, channel=None, indices=()):
    return Finding(cat, start, end, 0.9, "high", ["x"], ["fake"], "", list(indices), channel)


def turn(index, start, end, labels=(), channel=None, text="", speaker="collector"):
    return Turn("call", index, start, end, text, tuple(labels), speaker, channel)


# --------------------------------------------------------------------------- overlap


def test_overlap_edges_with_tolerance():
    t = turn(0, 10.0, 12.0)
    assert overlaps(12.9, 13.5, t, 1.0)  # starts 0.9 s after the turn's end
    assert overlaps(13.0, 13.5, t, 1.0)  # exactly at end + tolerance
    assert not overlaps(13.1, 14.0, t, 1.0)
    assert overlaps(8.0, 9.0, t, 1.0)  # ends exactly at start - tolerance
    assert not overlaps(7.0, 8.9, t, 1.0)
    assert overlaps(12.0, 13.0, t, 0.0)  # touching counts
    assert not overlaps(12.01, 13.0, t, 0.0)
    assert overlaps(0.0, 30.0, t, 0.0)  # a long finding covering the turn


def test_channels_match_only_when_both_known_and_different():
    assert same_channel(None, 0) and same_channel(1, None) and same_channel(None, None)
    assert same_channel(1, 1)
    assert not same_channel(0, 1)


def test_turn_from_labels_json_entry():
    t = Turn.from_label("e01", {"index": 3, "speaker": "debtor", "channel": 1, "start": 1.5,
                                "end": 2.25, "text": "好的", "labels": ["insult"]})
    assert t == Turn("e01", 3, 1.5, 2.25, "好的", ("insult",), "debtor", 1)


# --------------------------------------------------------------------------- matching


TURNS = [
    turn(0, 0.0, 4.0, ["threat"]),
    turn(1, 4.5, 8.0),
    turn(2, 9.0, 12.0, ["insult", "threat"]),
]


def test_match_call_credits_findings_and_labels():
    fs = [
        finding("threat", 1.0, 3.0),  # inside turn 0 (threat): correct
        finding("insult", 5.0, 6.0),  # turn 2 widened starts at 8.0: false positive
        finding("threat", 12.5, 13.0),  # after turn 2, within 1 s: correct
        finding("insult", 8.2, 8.8),  # in the pause before turn 2, within 1 s: correct
    ]
    m = match_call("call", fs, TURNS, tol=1.0)
    assert m.correct == [fs[0], fs[2], fs[3]]
    assert m.false_positives == [fs[1]]
    assert [(t.index, c) for t, c in m.recalled] == [(0, "threat"), (2, "insult"), (2, "threat")]
    assert m.missed == []
    assert not m.lawful

    counts = count_by_category([m])
    assert set(counts) == {*CATEGORIES, "overall"}
    # overall: 3 of 4 findings correct, 3 of 3 labels recalled; F1 = 2*.75*1/1.75 = 6/7
    o = counts["overall"].metrics()
    assert (o["precision"], o["recall"]) == (0.75, 1.0)
    assert o["f1"] == pytest.approx(6 / 7)
    # insult: 1 correct + 1 false positive, 1 of 1 recalled: P .5, R 1, F1 2/3
    ins = counts["insult"].metrics()
    assert (ins["findings"], ins["false_positives"], ins["labels"]) == (2, 1, 1)
    assert ins["f1"] == pytest.approx(2 / 3)
    assert counts["threat"].metrics()["precision"] == 1.0
    assert counts["exposure"].metrics() == {"precision": None, "recall": None, "f1": None,
                                            "findings": 0, "labels": 0,
                                            "false_positives": 0, "missed": 0}


def test_a_missing_finding_is_a_miss_and_tolerance_matters():
    fs = [finding("threat", 1.0, 3.0)]  # ends 6 s before turn 2
    m = match_call("call", fs, TURNS, tol=1.0)
    assert [(t.index, c) for t, c in m.missed] == [(2, "insult"), (2, "threat")]
    # The same finding 0.5 s late for turn 0 counts at ±1 s and not at ±0.
    late = [finding("threat", 4.5, 5.0)]
    assert match_call("call", late, TURNS, tol=1.0).correct == late
    assert match_call("call", late, TURNS, tol=0.0).false_positives == late


def test_one_finding_spanning_two_labelled_turns_recalls_both_counts_once():
    fs = [finding("threat", 0.0, 12.0)]
    m = match_call("call", fs, TURNS, tol=1.0)
    assert len(m.correct) == 1
    assert [(t.index, c) for t, c in m.recalled] == [(0, "threat"), (2, "threat")]
    o = count_by_category([m])["overall"]
    # 1 finding, 1 correct; 3 labels, 2 recalled (insult missed)
    assert (o.correct, o.false_positive, o.recalled, o.missed) == (1, 0, 2, 1)


def test_stereo_channel_must_match():
    turns = [turn(0, 0.0, 4.0, ["threat"], channel=0)]
    other = match_call("call", [finding("threat", 1.0, 3.0, channel=1)], turns)
    assert len(other.false_positives) == 1 and len(other.missed) == 1
    same = match_call("call", [finding("threat", 1.0, 3.0, channel=0)], turns)
    assert len(same.correct) == 1 and len(same.recalled) == 1


def test_lawful_call_finding_is_false_positive():
    m = match_call("call", [finding("insult", 1.0, 2.0)], [turn(0, 0.0, 4.0)])
    assert m.lawful and m.findings == 1 and len(m.false_positives) == 1


def test_prf_undefined_and_zero_cases():
    assert prf(0, 0, 0, 0) == {"precision": None, "recall": None, "f1": None}
    assert prf(0, 0, 0, 3) == {"precision": None, "recall": 0.0, "f1": 0.0}  # found nothing
    assert prf(0, 2, 0, 0) == {"precision": 0.0, "recall": None, "f1": 0.0}  # only false alarms
    # P 3/4, R 2/4: F1 = 2*.75*.5/1.25 = 0.6
    r = prf(3, 4, 2, 4)
    assert (r["precision"], r["recall"]) == (0.75, 0.5) and r["f1"] == pytest.approx(0.6)


# --------------------------------------------------------------------------- CER


def test_edit_distance_by_hand():
    assert edit_distance("kitten", "sitting") == 3  # k->s, e->i, +g
    assert edit_distance("", "abc") == 3
    assert edit_distance("abc", "") == 3
    assert edit_distance("abc", "abc") == 0
    assert edit_distance("ab", "ba") == 2  # no transpositions
    assert edit_distance("欠钱不还", "欠款不还") == 1


def test_cer_chars_strips_punctuation_and_folds_forms():
    assert cer_chars("你好，世界！ Hello.") == "你好世界hello"
    assert cer_chars("還錢") == "还钱"
    assert cer_chars("２０２５年 APP") == "2025年app"
    assert cer_chars("“验证码”、（六位）…") == "验证码六位"


def test_cer_per_pair():
    assert cer("还钱", "還錢。") == 0.0  # Traditional and punctuation are not errors
    assert cer("我要还钱。", "我要还前") == 0.25  # 1 substitution / 4 characters
    assert cer("今天", "今天下午") == 1.0  # 2 insertions / 2 characters
    assert cer("，", "什么") is None  # empty reference: undefined


def test_cer_total_is_corpus_level_not_mean_of_ratios():
    t = CerTotal()
    assert t.add("abcd", "abce") == 1
    assert t.add("xy", "") == 2
    # 3 edits / 6 reference characters = 0.5 (the mean of 0.25 and 1.0 would be 0.625)
    assert (t.edits, t.ref_chars, t.utterances) == (3, 6, 2)
    assert t.cer == 0.5
    assert CerTotal().cer is None


# --------------------------------------------------------------------------- cause hints


def _load_eval_script():
    spec = importlib.util.spec_from_file_location("eval_script", ROOT / "scripts" / "eval.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class KeywordDetector:
    """Flags `threat` on every segment whose text contains "KW"."""

    threshold = 0.5

    def detect(self, segments, whole_call=True):
        return [finding("threat", s.start, s.end, s.channel, [s.index])
                for s in segments if "KW" in s.text]


def test_cause_hints_of_false_positives_and_misses():
    ev = _load_eval_script()
    turns = [
        turn(0, 0.0, 4.0, ["threat"], text="我要KW威胁你"),
        turn(1, 4.5, 8.0, text="好的", speaker="debtor"),
        turn(2, 10.0, 13.0, ["threat"], text="你小心点"),  # no KW: detector gap
        turn(3, 20.0, 24.0, ["threat"], text="再不还KW"),  # heard without KW: ASR
        turn(4, 30.0, 33.0, text="你才KW呢", speaker="debtor"),  # debtor's words flagged
        turn(5, 40.0, 43.0, text="好好说"),  # heard with KW: ASR false positive
        turn(6, 50.0, 56.0, ["threat"], text="先还KW"),  # heard split in two: segmentation
        turn(7, 60.0, 62.0, ["threat"], text="KW"),  # heard 2.5 s late: timing
    ]
    heard = [
        (0.0, 4.0, "我要KW威胁你"), (4.5, 8.0, "好的"), (10.0, 13.0, "你小心点"),
        (20.0, 24.0, "再不还"), (30.0, 33.0, "你才KW呢"), (40.0, 43.0, "好KW说"),
        (50.0, 52.5, "先还K"), (52.6, 56.0, "W"), (64.5, 66.0, "KW"),
    ]
    segments = [Segment(i, s, e, t) for i, (s, e, t) in enumerate(heard)]
    det = KeywordDetector()
    rep = SimpleNamespace(segments=segments, findings=det.detect(segments))
    m = match_call("call", rep.findings, turns, tol=1.0)
    setup = SimpleNamespace(detectors={"fused": det})
    script = ev.script_findings(setup.detectors, {"call": turns})
    # On the clean script the keyword is in turns 0, 3, 4, 6 and 7.
    assert [f.start for f in script["fused"]["call"]] == [0.0, 20.0, 30.0, 50.0, 60.0]
    d = ev.b_details(setup, [m], {"call": rep}, {"call": turns}, script)

    fps = {(x["start"]): x["cause"] for x in d["fp"]}
    assert set(fps) == {30.0, 40.0, 64.5}
    assert fps[30.0].startswith("detection:") and "debtor turn 4" in fps[30.0]
    # "好好说" vs "好kw说": 好->k, +w = 2 edits / 3 characters
    assert fps[40.0].startswith("ASR:") and "0.67" in fps[40.0]
    assert fps[64.5].startswith("timing:") and "turn 7" in fps[64.5]

    misses = {x["turn"]: x["cause"] for x in d["miss"]}
    assert set(misses) == {2, 3, 6, 7}
    assert misses[2].startswith("detection:")
    # "再不还KW" vs "再不还": 2 deletions / 5 characters
    assert misses[3].startswith("ASR:") and "0.40" in misses[3]
    assert misses[6].startswith("segmentation:") and "2 segments" in misses[6]
    assert misses[7].startswith("timing:")
    assert any("**call** threat turn 6" in line for line in d["lines"])


class FakeScorer:
    """Candidates for segments containing given characters: {char: (category, score)}."""

    def __init__(self, name, table):
        self.name = name
        self.table = table

    def candidates(self, segments):
        from analyzer.scoring import Candidate

        out = []
        for p in segments:
            for ch, (cat, score) in self.table.items():
                if ch in p.segment.text:
                    out.append(Candidate(cat, [p.position], p.segment.start, p.segment.end,
                                         p.segment.channel, score, "medium", [ch], ["fake"],
                                         [], {self.name: score}))
        return out


def test_shared_detect_matches_each_scorer_subset():
    from analyzer.scoring import RuleDetector

    ev = _load_eval_script()
    a = FakeScorer("a", {"甲": ("threat", 0.4), "丙": ("exposure", 0.8)})
    b = FakeScorer("b", {"甲": ("threat", 0.3), "乙": ("insult", 0.9)})
    det = RuleDetector(SimpleNamespace(without_objections=lambda text: text,
                                         without_warnings=lambda text: text,
                                         third_party_cue=lambda text: None,
                                         warning_across=lambda earlier, later: None,
                                         common=default_lexicon().common), threshold=0.5)
    det.scorers = [a, b]
    shared = ev.SharedDetect(det, {"fused": [0, 1], "a": [0], "b": [1]})
    docs = [["甲"], ["乙", "丙"], ["无"]]
    got = {name: shared.flagger(name)(docs) for name in ("fused", "a", "b")}
    # "甲": 0.4 and 0.3 are each under 0.5; together 1 - 0.6 * 0.7 = 0.58 (noisy-OR)
    assert got["fused"] == [{"threat"}, {"insult", "exposure"}, set()]
    assert got["a"] == [set(), {"exposure"}, set()]
    assert got["b"] == [set(), {"insult"}, set()]
    # The same as running the detector with only those scorers.
    for name, scorers in (("a", [a]), ("b", [b]), ("fused", [a, b])):
        only = ev._with_scorers(det, scorers)
        for doc, cats in zip(docs, got[name], strict=True):
            segs = [Segment(i, 3.0 * i, 3.0 * i + 2.5, t) for i, t in enumerate(doc)]
            assert {f.category for f in only.detect(segs)} == cats


def test_blind_sets_are_never_detailed():
    ev = _load_eval_script()
    roles = {name: role for name, (_, role) in ev.CALL_SETS.items()}
    blind = ("holdout10", "holdout11", "holdout12", "holdout13")
    assert all(roles[n] in ev.BLIND_ROLES for n in blind)
    # Retired into the training corpus: in-sample, so not run by default.
    retired = ("holdout", "holdout2", "holdout3", "holdout4", "holdout5", "holdout6",
               "holdout7", "holdout8", "holdout9")
    assert all(roles[n] == ev.RETIRED for n in retired)
    assert not set(retired) & set(ev.DEFAULT_CALL_SETS.split(","))
    assert roles["calls"] not in ev.BLIND_ROLES  # the development set is read to find errors
    # Every default set exists on disk with its labels.
    for name in ev.DEFAULT_CALL_SETS.split(","):
        assert (ev.CALL_SETS[name][0] / "labels.json").is_file()


_EARLIER = """# callaudit evaluation

- commit 06ff85e, 2026-11-20 10:00, CPython 3.11.7, 2 CPU cores, load average 0.1 at start

## (c) External proxy text sets
| x | 1 |

## (d) Character error rate of the transcription (3 utterances, ../shared/data/speech)

| subset | utts | 16k callaudit |
| **overall** | 3 | 0.100 |

_part (d) took 5 s_

## Details
"""


def test_part_d_is_copied_with_its_commit(tmp_path):
    ev = _load_eval_script()
    kept = ev.kept_part_d(_EARLIER, tmp_path / "old.md")
    assert "commit 06ff85e" in kept[0] and "old.md" in kept[0]
    body = "\n".join(kept[1:])
    assert body.strip().startswith("## (d) Character") and body.strip().endswith("_part (d) took 5 s_")
    assert "## (c)" not in body and "## Details" not in body
    # A copy of a copy names the first measurement, not the run that copied it.
    copied = _EARLIER.replace("commit 06ff85e", "commit a81c961").replace(
        "## (d) Character", "<!-- Part (d) below comes from `x` run at commit 06ff85e. -->\n\n## (d) Character")
    assert "commit 06ff85e" in ev.kept_part_d(copied, tmp_path / "new.md")[0]


@pytest.mark.parametrize("text", ["# no part d here\n", _EARLIER.split("_part (d)")[0]])
def test_keep_d_refuses_a_file_without_a_whole_part_d(tmp_path, text, capsys):
    ev = _load_eval_script()
    old = tmp_path / "old.md"
    old.write_text(text, encoding="utf-8")
    with pytest.raises(SystemExit) as e:
        ev.main(["--only", "a", "--keep-d", str(old)])
    assert e.value.code == 2 and "old.md" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        ev.main(["--only", "ad", "--keep-d", str(old)])


def test_scam_headlines_count_scams_by_their_ids():
    s = ScamHeadlines()
    s.add("v08_scam_fake_regulator", lawful=False, likely_scam=True)
    s.add("v09_scam_fake_court", lawful=False, likely_scam=False)
    s.add("e03_lawful_scam_warning", lawful=True, likely_scam=True)  # warns of a scam: not one
    s.add("v10_agency_threats", lawful=False, likely_scam=False)
    s.add("v11_scammer_name_in_word", lawful=False, likely_scam=True)  # "scammer" is not "scam"
    assert s.to_dict() == {
        "scam_calls": 2, "scam_headlined": ["v08_scam_fake_regulator"],
        "scam_missed": ["v09_scam_fake_court"], "other_calls": 3,
        "other_headlined": ["e03_lawful_scam_warning", "v11_scammer_name_in_word"],
        "lawful_calls": 1, "lawful_headlined": ["e03_lawful_scam_warning"],
    }
    more = ScamHeadlines()
    more.add("u01_lawful_bank", lawful=True, likely_scam=False)
    more.add("u09_scam_safe_account", lawful=False, likely_scam=True)
    s.extend(more)
    assert s.line(" (fused)") == (
        "- headlined as a likely scam (fused): scam calls (the id says scam) **2 of 3** (not: "
        "v09_scam_fake_court); other calls 2 of 4, of them lawful **1 of 2** "
        "(e03_lawful_scam_warning)")
