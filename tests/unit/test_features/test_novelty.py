import numpy as np

from features.novelty import BigramNovelty
from features.text import normalize_text

TRAINING = [normalize_text(t).text for t in (
    "家人们这个鱼油每天早上吃两粒饭后吃", "这个血压计是上臂式的有语音播报", "喜欢的点击下方小黄车一号链接",
    "七天无理由退换顺丰包邮", "质地是乳霜状的很好推开")]


def test_training_text_is_not_novel_and_foreign_text_is() -> None:
    novelty = BigramNovelty.fit(TRAINING)
    seen, mixed, foreign = novelty.score([TRAINING[0], TRAINING[1][:8] + "量子纠缠的观测者效应",
                                          "the quick brown fox jumps over"])
    assert seen == 0.0
    assert 0.2 < mixed < 0.9
    assert foreign > 0.9


def test_round_trip_through_arrays_keeps_scores() -> None:
    novelty = BigramNovelty.fit(TRAINING)
    again = BigramNovelty.from_arrays(novelty.to_arrays())
    texts = ["鱼油每天吃两粒", "完全没见过的句子", "a"]
    np.testing.assert_array_equal(novelty.score(texts), again.score(texts))
    assert novelty.to_arrays()["bits"].nbytes == 2**20 // 8
