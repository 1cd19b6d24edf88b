"""Seeded synthetic livestream transcript segments (ASR style) with multi-label truth.

The story (also written into the data card):

1. A stream is a sequence of segments of a few seconds each. A host greets, describes the
   product, gives prices, talks logistics, answers questions and calls to action, in the
   colloquial, unpunctuated style of ASR output (家人们, 宝宝们, 咱们, 然后, 对吧 ...).
2. Some hosts break the rules. A segment may carry violating phrases of any of the eight
   categories, alone or together (multi-label), written from many templates with slots;
   about a third of them are paraphrases no lexicon rule covers.
3. Evaders disguise violating phrases: spaces or symbols between characters, traditional
   characters, full-width letters, homophones and pinyin for contact words, fillers inside
   words, AABB reduplication, Chinese numerals.
4. Hard negatives are frequent: 第一次, 最近, 最后一个问题, a refund at the 原价, disclaimers
   such as 不能代替药物治疗, truthful scarcity of a sold-out size.
5. ``label_noise`` of segments have one category flipped at random (annotator error).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
from tqdm import tqdm

from features.marketing import MARKETING_CATEGORIES

VERTICALS: dict[str, tuple[str, ...]] = {
    "beauty": ("精华", "面霜", "口红", "粉底液", "面膜", "防晒霜", "眼霜"),
    "food": ("牛肉干", "坚果", "蜂蜜", "普洱茶", "螺蛳粉", "燕窝", "红枣"),
    "supplements": ("鱼油", "钙片", "益生菌", "蛋白粉", "叶黄素", "褪黑素"),
    "apparel": ("羽绒服", "卫衣", "牛仔裤", "连衣裙", "运动鞋", "包包"),
    "electronics": ("蓝牙耳机", "充电宝", "手机壳", "智能手表", "数据线"),
    "home": ("四件套", "保温杯", "不粘锅", "收纳盒", "乳胶枕"),
    "baby": ("纸尿裤", "奶瓶", "婴儿湿巾", "儿童牙膏", "辅食"),
    "jewelry": ("金手镯", "银项链", "珍珠耳环", "翡翠吊坠"),
}
ADDRESS = ("家人们", "宝宝们", "姐妹们", "兄弟们", "朋友们", "直播间的家人们", "老铁们", "亲们")
FILLERS = ("那个", "然后", "对吧", "是不是", "就是说", "咱们", "真的", "我跟你们说", "来", "好")
GREETINGS = ("欢迎{a}来到直播间", "{a}晚上好", "新进来的{a}点个关注", "{a}下午好啊", "欢迎新来的{a}",
             "感谢{a}的点赞", "{a}把灯牌点亮")
DESCRIPTIONS = ("这款{p}是我们家的经典款", "{p}的质地非常细腻", "{p}用的是今年的新料", "这个{p}我自己也在用",
                "{p}有三个颜色可以选", "{p}的包装是礼盒装的", "{p}的尺寸在详情页写得很清楚", "这个{p}是我们工厂自己生产的",
                "{p}回购率特别高", "{p}的味道是淡淡的", "这款{p}适合日常用", "{p}今天有现货")
PRICES = ("今天直播间价格是{n}块", "这个{p}到手价{n}", "拍一发二一共{n}元", "今天下单送一个小样", "满{n}减二十",
          "价格是{n}元包邮", "领券之后{n}块钱")
LOGISTICS = ("四十八小时内发货", "顺丰包邮", "七天无理由退换", "支持运费险", "偏远地区不包邮哦", "下午五点前下单当天发")
QA = ("有宝宝问能不能用在敏感肌", "有人问有没有大码", "问孕妇能不能吃的请咨询医生", "这个问题我回答一下",
      "看到有家人问保质期多久", "问发什么快递的是顺丰", "有人问色号我一个个说")
CALLS = ("喜欢的点击下方小黄车", "一号链接", "拍之前看一下规格", "没拍到的不要着急",
         "拍完记得备注颜色", "点关注不迷路")
HARD_NEGATIVES = ("第一次来直播间的{a}", "最近天气冷了注意保暖", "最后一个问题我回答一下", "不满意可以按原价退款",
                  "本品不能代替药物治疗", "这个码数卖完了就真没有了", "我第一次用的时候也觉得惊喜", "最后我们再看一下细节",
                  "原价退回到你的账户", "有疾病的请遵医嘱", "我们不保证每个人效果都一样", "价格以下单页面为准",
                  "第一个颜色是黑色", "最近很多人在问", "治疗类的产品我们直播间不卖")

# Violating phrases per category: lexicon-covered templates and paraphrases no rule covers.
VIOLATIONS: dict[str, tuple[str, ...]] = {
    "absolute_claim": ("全网最低价", "这是全网最便宜的", "行业第一品牌", "顶级的品质", "国家级的配方", "100%有效",
                       "史上最好用的{p}", "没有比这个更便宜的了", "别家绝对没有这个价", "闭眼入不会错的天花板",
                       "销量第一", "万能的{p}"),
    "efficacy_claim": ("能治疗失眠", "根治湿疹", "吃了降血糖", "降血压效果特别好", "祛斑美白", "增强免疫力",
                       "喝了血管都通了", "吃完一觉睡到天亮失眠没了", "抹两次斑就淡了", "三高的都说好", "抗癌防癌的",
                       "专治脱发"),
    "guarantee_claim": ("无效退款", "7天见效", "保证治愈", "用了没效果全额退", "一次见效", "三天瘦五斤",
                        "包你用完就年轻十岁", "没变化你来找我", "永不反弹", "零副作用"),
    "price_fraud": ("原价999今天只要99", "专柜价1299这里只要199", "出厂价给到大家", "亏本清仓", "原价三百九十九现在只要六十九",
                    "成本价都不到", "今天赔本卖", "跳楼价", "平时卖五百今天只要五十", "倒闭甩卖"),
    "false_scarcity": ("最后三单", "马上下架", "仅此一次", "错过再等一年", "只剩最后5件", "库存只剩两套",
                       "手慢无", "再不拍就没了今天是最后一波", "这批货卖完永远不会再有", "限时一次"),
    "counterfeit": ("高仿的", "A货", "1:1复刻", "大牌同厂", "原单尾货", "专柜同款一模一样", "跟大牌一个工厂出来的",
                    "撕了标的大牌", "超A的品质", "外贸原单"),
    "off_platform": ("加微信私聊", "加我V", "私聊下单", "QQ号123456789", "联系我WhatsApp", "不走平台给你便宜",
                     "扫码付款更优惠", "私我给你发链接", "加我vx", "主页有联系方式私下交易"),
    "fake_endorsement": ("国家认证的", "专家推荐", "央视推荐过", "明星同款", "医生都在推荐", "某明星同款",
                         "国宴专供", "院士推荐的配方", "网红都在用", "卫健委推荐"),
}
SCRIPTED_EVASIONS = {"微信": ("wei信", "薇信", "V信", "威信", "vx"), "私聊": ("私 聊", "私*聊")}
CHINESE_NUMBERS = {"1": "一", "2": "两", "3": "三", "5": "五", "7": "七"}


@dataclass(frozen=True)
class TranscriptGenerationConfig:
    """Knobs of the transcript generator."""

    n: int = 20_000
    seed: int = 0
    violation_rate: float = 0.35
    multi_label_rate: float = 0.2
    evasion_rate: float = 0.35
    hard_negative_rate: float = 0.25
    label_noise: float = 0.01
    segments_per_stream: int = 40


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]


@lru_cache(maxsize=1)
def _s2t():  # noqa: ANN202 - opencc has no type stubs
    import opencc

    return opencc.OpenCC("s2t")


def _evade(rng: np.random.Generator, phrase: str) -> str:
    """Disguise a violating phrase the way evaders do."""
    kind = int(rng.integers(7))
    if kind == 0:
        return _pick(rng, (" ", "-", "*", ".", "~", "❤")).join(phrase)
    if kind == 1:
        return _s2t().convert(phrase)
    if kind == 2:
        return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in phrase)
    if kind == 3:
        for word, variants in SCRIPTED_EVASIONS.items():
            if word in phrase:
                return phrase.replace(word, _pick(rng, variants))
        return "\u200b".join(phrase)
    if kind == 4 and len(phrase) >= 3:
        cut = int(rng.integers(1, len(phrase)))
        return phrase[:cut] + _pick(rng, ("某", "什么")) + phrase[cut:]
    if kind == 5 and len(phrase) >= 2:
        return "".join(c * 2 for c in phrase[:4]) + phrase[4:]
    return "".join(CHINESE_NUMBERS.get(c, c) for c in phrase)


def _clause(rng: np.random.Generator, product: str) -> str:
    template = _pick(rng, GREETINGS + DESCRIPTIONS + PRICES + LOGISTICS + QA + CALLS)
    return template.format(a=_pick(rng, ADDRESS), p=product, n=int(rng.integers(9, 500)))


def _segment(rng: np.random.Generator, config: TranscriptGenerationConfig, product: str
             ) -> tuple[str, set[str], bool, bool]:
    parts = [_clause(rng, product) for _ in range(int(rng.integers(1, 3)))]
    labels: set[str] = set()
    evaded = hard = False
    if rng.random() < config.violation_rate:
        n_categories = 2 if rng.random() < config.multi_label_rate else 1
        for category in rng.choice(MARKETING_CATEGORIES, size=n_categories, replace=False):
            phrase = _pick(rng, VIOLATIONS[str(category)]).format(p=product)
            if rng.random() < config.evasion_rate:
                phrase, evaded = _evade(rng, phrase), True
            parts.insert(int(rng.integers(len(parts) + 1)), phrase)
            labels.add(str(category))
    if rng.random() < config.hard_negative_rate:
        parts.insert(int(rng.integers(len(parts) + 1)), _pick(rng, HARD_NEGATIVES).format(a=_pick(rng, ADDRESS)))
        hard = True
    if rng.random() < 0.6:
        parts.insert(0, _pick(rng, ADDRESS))
    if rng.random() < 0.5:
        parts.insert(int(rng.integers(len(parts) + 1)), _pick(rng, FILLERS))
    separator = _pick(rng, ("", "", " ", "，"))
    return separator.join(parts), labels, evaded, hard


def generate_transcripts(config: TranscriptGenerationConfig, progress: bool = True) -> pd.DataFrame:
    """Generate ``config.n`` segments grouped into streams, following the module's story."""
    rng = np.random.default_rng(config.seed)
    rows = []
    stream, position, clock, vertical, product = -1, config.segments_per_stream, 0, "", ""
    for _ in tqdm(range(config.n), desc="segments", disable=not progress, mininterval=0.5):
        if position >= config.segments_per_stream:
            stream, position, clock = stream + 1, 0, 0
            vertical = _pick(rng, tuple(VERTICALS))
            product = _pick(rng, VERTICALS[vertical])
        text, labels, evaded, hard = _segment(rng, config, product)
        if rng.random() < config.label_noise:
            labels ^= {str(rng.choice(MARKETING_CATEGORIES))}
        duration = int(rng.integers(2500, 7000))
        rows.append({
            "stream_id": f"S{config.seed}-{stream:05d}", "segment_index": position,
            "start_ms": clock, "end_ms": clock + duration, "vertical": vertical, "text": text,
            "labels": "|".join(c for c in MARKETING_CATEGORIES if c in labels),
            "evasion": evaded, "hard_negative": hard,
        })
        position, clock = position + 1, clock + duration + int(rng.integers(0, 800))
    return pd.DataFrame(rows)


def transcript_data_card(frame: pd.DataFrame, config: TranscriptGenerationConfig) -> str:
    """Markdown data card: story, label balance, evasion and hard-negative shares."""
    story = (__doc__ or "").split("The story (also written into the data card):", 1)[-1].strip()
    counts = {c: int(frame["labels"].str.split("|").apply(lambda ls, c=c: c in ls).sum())
              for c in MARKETING_CATEGORIES}
    return "\n".join([
        "# Data card: synthetic livestream transcript segments",
        "",
        f"- segments: {len(frame):,}; streams: {frame['stream_id'].nunique():,}; seed: {config.seed}",
        f"- segments with at least one violation: {(frame['labels'] != '').mean():.1%}",
        f"- evasion variants: {frame['evasion'].mean():.1%}; hard negatives: {frame['hard_negative'].mean():.1%}",
        f"- label noise: {config.label_noise:.1%} of segments with one category flipped",
        "- labels: `labels`, categories joined by `|` (empty = clean)",
        "",
        "## Generative story",
        "",
        story,
        "",
        "## Segments per category",
        "",
        "| category | segments |",
        "|---|---|",
        *[f"| {c} | {n:,} |" for c, n in counts.items()],
        "",
    ])
