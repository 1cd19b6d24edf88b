from pathlib import Path

import pytest

from kinds.listing_quality.generator import (
    CATEGORY_WEIGHTS,
    ListingGenerationConfig,
    generate_listings,
    listing_data_card,
)
from tests.conftest import SHARED_DATA
from training.data import real_text
from training.data.files import write_table

needs_shared_data = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is not here")


def test_same_seed_gives_same_bytes(tmp_path: Path) -> None:
    config = ListingGenerationConfig(n=800, seed=3)
    write_table(generate_listings(config, progress=False), tmp_path / "a.parquet")
    write_table(generate_listings(config, progress=False), tmp_path / "b.parquet")
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()


def test_different_seed_gives_different_data() -> None:
    a = generate_listings(ListingGenerationConfig(n=300, seed=1), progress=False)
    b = generate_listings(ListingGenerationConfig(n=300, seed=2), progress=False)
    assert a["title"].tolist() != b["title"].tolist()


def test_catalogue_covers_categories_mechanisms_and_noise() -> None:
    frame = generate_listings(ListingGenerationConfig(n=6000, seed=0, use_real_titles=False), progress=False)
    assert set(frame["category"]) == set(CATEGORY_WEIGHTS)
    assert set(frame["inferior_type"]) == {"honest", "counterfeit", "misdescribed", "unsafe", "junk"}
    assert 0.08 < frame["is_inferior"].mean() < 0.3
    assert 0.01 < frame["label_flipped"].mean() < 0.06
    assert frame["title"].nunique() > 0.6 * len(frame)  # varied templates, not a few strings


@needs_shared_data
def test_real_titles_carry_the_injected_defects_and_never_the_check_part() -> None:
    frame = generate_listings(ListingGenerationConfig(n=4000, seed=0), progress=False)
    assert (frame["title_source"] == "real").all()
    assert set(frame["category"]) <= set(CATEGORY_WEIGHTS) | {"other"}
    assert frame["category"].nunique() >= 6
    titles = set(real_text.product_titles(real_text.require_shared_data()))
    honest = frame[frame["inferior_type"] == "honest"]
    assert honest["title"].isin(titles).mean() > 0.85  # honest listings keep the real title
    assert not any(real_text.is_check_text(t) for t in honest["title"] if t in titles)
    counterfeit = frame[frame["inferior_type"] == "counterfeit"]
    assert (~counterfeit["title"].isin(titles)).mean() > 0.85  # a brand or cue injected (some avoid every cue)
    assert (honest["description"] == "").mean() > 0.25  # like a new real listing


def test_no_single_feature_separates_the_classes() -> None:
    frame = generate_listings(ListingGenerationConfig(n=6000, seed=0), progress=False)
    from sklearn.metrics import roc_auc_score

    for column in ("price", "rating", "return_rate", "image_count", "negative_review_rate"):
        values = frame[column].fillna(frame[column].median())
        auc = roc_auc_score(frame["is_inferior"], values)
        assert 0.2 < auc < 0.8, column


def test_data_card_states_story_balance_and_noise() -> None:
    config = ListingGenerationConfig(n=500, seed=0)
    card = listing_data_card(generate_listings(config, progress=False), config)
    for expected in ("Generative story", "counterfeit", "label noise", "Class balance per category"):
        assert expected in card
