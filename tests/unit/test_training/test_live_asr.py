"""The real live-room speech of ../shared/data/live_asr: the loader, this project's own labels,
and how the lexicon rules do on the released labelled rooms (skipped without the data)."""

import gzip
import json
import re

import numpy as np
import pytest

from features.marketing import MARKETING_CATEGORIES, RULES, match_lexicon
from tests.conftest import SHARED_DATA
from training.data import live_asr

pytestmark = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is not here")


@pytest.fixture(scope="module")
def labelled():
    return live_asr.labelled_sentences(SHARED_DATA)


def test_project_labels_all_point_at_clip_sentences_and_carry_no_text() -> None:
    with gzip.open(live_asr.PROJECT_LABELS, "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle]
    assert all(set(r) == {"sha256", "round", "labels", "labels_a", "labels_b", "agreed", "unsure"} for r in rows)
    keys = set(live_asr.clip_sentences(SHARED_DATA)["text"].map(live_asr.sentence_key))
    assert all(r["sha256"] in keys for r in rows)  # every label names a real sentence
    agreed = [r for r in rows if r["agreed"]]
    # agreed = same verdict from both annotators; labels = the categories both chose
    assert all(set(r["labels"]) == set(r["labels_a"]) & set(r["labels_b"]) for r in rows)
    assert all(bool(r["labels_a"]) == bool(r["labels_b"]) for r in agreed)
    assert len(agreed) / len(rows) > 0.95  # the binary agreement of the rounds


def test_labelled_sentences_join_both_sources_grouped_by_room(labelled) -> None:
    sources = labelled["label_source"].str.startswith("project").value_counts()
    assert sources[False] == 2441 and sources[True] > 9000
    assert labelled["text"].is_unique and labelled["room"].nunique() == 46
    labels = labelled["labels"].str.split("|").explode()
    assert set(labels[labels != ""]) <= set(MARKETING_CATEGORIES)
    assert 0.10 < (labelled["labels"] != "").mean() < 0.25


def test_speech_rules_are_precise_on_the_released_rooms(labelled) -> None:
    """Each rule written for real speech (ids 010 and up), on every labelled sentence it matches:
    most of them are violations of its own category."""
    truth = {c: labelled["labels"].str.contains(c).to_numpy() for c in MARKETING_CATEGORIES}
    matches = [match_lexicon(t) for t in labelled["text"]]
    for rule in (r for r in RULES if int(r.rule_id.split("-")[1]) >= 10 and r.category in truth):
        hit = np.array([any(m.rule_id == rule.rule_id for m in found) for found in matches])
        if hit.sum() >= 10:
            assert truth[rule.category][hit].mean() >= 0.6, (rule.rule_id, int(hit.sum()))


@pytest.mark.parametrize(("family", "pattern"), [
    ("coupon arithmetic", r"券|满\d|减\d|到手"), ("first time", r"第一次|第1次"), ("had better", r"最好"),
    ("authenticity and after-sales", r"正品|假一赔|七天无理由|运费险|包赔"),
])
def test_real_clean_sentences_of_hard_negative_families_trip_few_rules(labelled, family, pattern) -> None:
    clean = labelled[(labelled["labels"] == "") & labelled["text"].str.contains(pattern)]
    assert len(clean) >= 2, family
    tripped = sum(bool(match_lexicon(t)) for t in clean["text"])
    assert tripped <= 0.03 * len(clean), (family, tripped, len(clean))


def test_sentences_split_as_the_data_readme_says() -> None:
    assert live_asr.split_sentences("家人们好。今天有活动吗？有！ 拍一号") == ["家人们好。", "今天有活动吗？", "有！", "拍一号"]
    assert re.fullmatch(r"[0-9a-f]{64}", live_asr.sentence_key("家人们好。"))
