"""Cue lexicons for product listings, written for this project.

Terms are matched on normalized text (see ``features.text``), so they are written in
simplified Chinese and lower case. Sources: the Advertising Law (arts. 9, 17, 28), the
Cosmetics Supervision Regulation (art. 37), the Anti-Unfair Competition Law (art. 6) and the
platform's own listing rules.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from functools import lru_cache

LISTING_CUES: dict[str, tuple[str, ...]] = {
    # Goods presented as a copy of, or "the same factory as", a protected brand.
    "counterfeit": (
        "高仿", "a货", "原单", "复刻", "1:1", "大牌同厂", "同厂", "尾单", "工厂货", "专柜同款",
        "代工厂", "超a", "精仿", "莆田", "仿品", "外贸原单", "大牌平替同厂", "原厂原标",
    ),
    # Safety and regulatory red flags: unapproved efficacy, missing licences, banned additives.
    "unsafe": (
        "三无", "无需认证", "无批号", "速效", "根治", "祛斑", "美白针", "激素", "婴儿可用强效",
        "药用级", "治疗", "降血糖", "降血压", "包治", "特效", "无副作用", "纯天然无添加", "秘方",
        "偏方", "孕妇可用", "一抹见效", "瘦身神药",
    ),
    # Superlatives and absolutes (Advertising Law art. 9).
    "exaggeration": (
        "全网最低", "最低价", "第一品牌", "国家级", "顶级", "100%", "百分百", "绝对", "史上最",
        "最好", "最强", "万能", "永久", "独家", "极品", "全球首发",
    ),
}

# Well-known brand names; a brand with an implausible price is a classic counterfeit signal.
BRANDS: tuple[str, ...] = (
    "香奈儿", "迪奥", "兰蔻", "雅诗兰黛", "资生堂", "sk-ii", "欧莱雅", "古驰", "路易威登", "lv",
    "爱马仕", "耐克", "nike", "阿迪达斯", "adidas", "苹果", "iphone", "华为", "小米", "戴森",
    "dyson", "飞利浦", "美的", "格力", "飞鹤", "美赞臣", "惠氏", "汤臣倍健", "茅台", "五粮液",
)


@dataclass(frozen=True)
class CueHit:
    """One lexicon term found in normalized text."""

    group: str
    term: str
    start: int
    end: int


@lru_cache(maxsize=8)
def _pattern(terms: tuple[str, ...]) -> re.Pattern[str]:
    ordered = sorted(set(terms), key=len, reverse=True)
    return re.compile("|".join(re.escape(t) for t in ordered))


def find_cues(normalized_text: str, groups: dict[str, tuple[str, ...]]) -> list[CueHit]:
    """All non-overlapping lexicon hits of every group in already-normalized text."""
    hits: list[CueHit] = []
    for group, terms in groups.items():
        for match in _pattern(terms).finditer(normalized_text):
            hits.append(CueHit(group, match.group(0), match.start(), match.end()))
    return sorted(hits, key=lambda h: (h.start, h.group))


_TEXT_BREAK = "\x00"  # never inside a normalized text or a lexicon term


def find_cues_many(normalized_texts: list[str], groups: dict[str, tuple[str, ...]]) -> list[list[CueHit]]:
    """``[find_cues(t, groups) for t in normalized_texts]`` in one regex pass per group over
    the joined texts (a term never spans two texts: it cannot hold the break character)."""
    joined = _TEXT_BREAK.join(normalized_texts)
    if joined.count(_TEXT_BREAK) != len(normalized_texts) - 1:
        return [find_cues(t, groups) for t in normalized_texts]
    starts = [0]
    for text in normalized_texts[:-1]:
        starts.append(starts[-1] + len(text) + 1)
    hits: list[list[CueHit]] = [[] for _ in normalized_texts]
    for group, terms in groups.items():
        for match in _pattern(terms).finditer(joined):
            row = bisect.bisect_right(starts, match.start()) - 1
            offset = starts[row]
            hits[row].append(CueHit(group, match.group(0), match.start() - offset, match.end() - offset))
    for row_hits in hits:
        row_hits.sort(key=lambda h: (h.start, h.group))
    return hits
