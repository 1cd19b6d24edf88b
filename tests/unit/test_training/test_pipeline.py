"""The TF-IDF scorer shared by the text pipelines: row weights act as repeated rows."""

from __future__ import annotations

import numpy as np
import pytest

from training.pipeline import CharTfidf, fit_char_scorer

TEXTS = ["全网最低价只有今天", "今天给大家讲讲成分", "最好的面霜没有之一", "这款面霜适合干皮",
         "国家级最高品质", "下单记得看尺码", "第一名的销量", "我们的客服在线"]
LABELS = np.array([1, 0, 1, 0, 1, 0, 1, 0])


def test_a_row_weight_of_three_fits_as_three_copies_of_the_row() -> None:
    weights = np.array([3.0, 1, 1, 1, 1, 1, 1, 1])
    weighted = fit_char_scorer(CharTfidf.fit(TEXTS, 2**12), LABELS, 4.0, sample_weight=weights)
    base = CharTfidf.fit(TEXTS, 2**12)
    # The same IDF and rows for both, so that only the loss differs.
    copies_features = CharTfidf(base.hashing, base.idf, base.matrix[[*range(8), 0, 0]])
    copies = fit_char_scorer(copies_features, np.concatenate([LABELS, [1, 1]]), 4.0)
    np.testing.assert_allclose(weighted.coef, copies.coef, atol=1e-4)
    assert weighted.intercept == pytest.approx(copies.intercept, abs=1e-4)


def test_weighting_a_row_up_raises_its_score() -> None:
    features = CharTfidf.fit(TEXTS, 2**12)
    plain = fit_char_scorer(features, LABELS, 4.0)
    heavy = fit_char_scorer(features, LABELS, 4.0, sample_weight=np.array([1, 8.0, 1, 1, 1, 1, 1, 1]))
    # Row 1 is clean: weighting it up pushes its score further down.
    assert heavy.score([TEXTS[1]])[0] < plain.score([TEXTS[1]])[0]



def test_lineage_names_the_shopguard_commit_and_absolute_files_from_any_folder(tmp_path, monkeypatch) -> None:
    # Training from an analyst's own git folder once recorded that folder's commit, and a
    # relative file path that said nothing once the folder changed.
    import subprocess
    from pathlib import Path

    from training.lineage import SOURCE_TREE, git_commit, training_file

    analyst = tmp_path / "analyst"
    analyst.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=analyst, check=True)
    monkeypatch.chdir(analyst)
    ours = subprocess.run(["git", "rev-parse", "HEAD"], cwd=SOURCE_TREE, capture_output=True, text=True)
    recorded = git_commit()
    if ours.returncode != 0:
        assert recorded is None  # a source tree outside git records no commit
    else:
        assert recorded is not None and recorded.startswith(ours.stdout.strip())
    (analyst / "rows.csv").write_text("title\na\n", encoding="utf-8")
    assert training_file(Path("rows.csv"), 1).path == str(analyst / "rows.csv")
