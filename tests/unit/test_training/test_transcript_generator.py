import pandas as pd
import pytest

from features.marketing import MARKETING_CATEGORIES
from kinds.false_marketing.generator import (
    TranscriptGenerationConfig,
    generate_transcripts,
    spoken_number,
)
from tests.conftest import SHARED_DATA
from training.data import real_text

needs_shared_data = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is not here")


def test_synthetic_segments_are_long_spoken_and_seeded() -> None:
    config = TranscriptGenerationConfig(n=2000, seed=1, use_real_text=False)
    frame = generate_transcripts(config, progress=False)
    pd.testing.assert_frame_equal(frame, generate_transcripts(config, progress=False))
    lengths = frame["text"].str.len()
    assert 38 <= lengths.median() <= 56  # the real segments' median is 46
    assert lengths.quantile(0.95) <= real_text.MAX_PIECE + 5
    assert frame["text"].str.contains("[，。！？]").mean() < 0.05  # ASR: no punctuation
    labels = frame["labels"].str.split("|")
    assert {c for ls in labels for c in ls if c} == set(MARKETING_CATEGORIES)
    assert 0.2 < (frame["labels"] != "").mean() < 0.4
    assert frame["evasion"].any() and frame["hard_negative"].mean() > 0.2
    assert frame["text"].nunique() > 0.95 * len(frame)


def test_spoken_numbers() -> None:
    assert [spoken_number(v) for v in (2, 7, 10, 15, 199, 1299, 305)] == [
        "两", "七", "十", "十五", "一百九十九", "一千二百九十九", "三百零五"]


@needs_shared_data
def test_real_text_joins_from_the_train_part_only() -> None:
    frame = generate_transcripts(TranscriptGenerationConfig(n=2000, seed=2), progress=False)
    real = frame[frame["source"] != "synthetic"]
    assert {"real_review", "real_ad_copy", "real_ad_copy+claim", "regulator", "ingame_ads"} <= set(real["source"])
    assert (real.loc[real["source"] == "regulator", "labels"].str.contains("efficacy_claim")).all()
    assert (real.loc[real["source"].isin(["real_review", "real_ad_copy", "real_title"]), "labels"] == "").all()
    root = real_text.require_shared_data()
    check_titles = {t for t in real_text.product_titles(root) if real_text.is_check_text(t)}
    assert not set(real.loc[real["source"] == "real_title", "text"]) & check_titles
