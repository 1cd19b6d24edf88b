"""Seeded synthetic product catalogue with a documented generative story.

The story (also written into the data card):

1. Merchants come first. Most are honest; about 12% are shady and list inferior goods far
   more often. A listing's chance of being inferior depends on its merchant, so merchant
   identity carries signal but never the answer.
2. Each inferior listing gets one mechanism:
   - ``counterfeit``: a famous brand at an impossible price, often (not always) with copy
     wording (高仿, 原单, 1:1 ...), an invented list price, fake-order-inflated ratings;
   - ``misdescribed``: ordinary wording and price, but buyers find out: high return and
     negative-review rates, lower ratings;
   - ``unsafe``: unapproved efficacy or missing-licence wording in beauty, supplements, baby
     and food, with more complaints;
   - ``junk``: thin listings: short titles, few images, empty descriptions, very low prices.
3. Titles are real when ``../shared/data`` is present: each listing starts from a real
   Taobao product title (train part only; see ``training.data.real_text``), its category
   read from the product words in it (``other`` when none matches), and the defects above
   are injected into that real title (copy wording and a famous brand, efficacy wording,
   misdescribed material claims, a title cut short for junk). Honest listings keep the real
   title as it is, and many carry no description and no sales history, as a new real
   listing does. Without the shared data the titles come from templates (with a warning).
4. Honest listings overlap on purpose: authorised resellers name brands at fair prices,
   clearance sales have deep discounts, some honest sellers exaggerate, new listings have no
   sales history, and some inferior listings avoid every cue word.
5. Labels are flipped at random for ``label_noise`` of the rows (reviewer error).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from kinds.listing_quality.record import LISTING_FIELDS
from training.data import real_text

CATEGORY_WEIGHTS: dict[str, float] = {
    "beauty": 0.17, "food": 0.14, "supplements": 0.09, "apparel": 0.18,
    "electronics": 0.13, "appliances": 0.08, "baby": 0.09, "home": 0.12,
}
CATEGORY_MEDIAN_PRICE: dict[str, float] = {
    "beauty": 160, "food": 45, "supplements": 220, "apparel": 180,
    "electronics": 900, "appliances": 1300, "baby": 170, "home": 110, "other": 120,
}
# Product words that place a real title in a category (first match wins; else ``other``).
CATEGORY_KEYWORDS: dict[str, tuple[str, ...]] = {
    "beauty": ("口红", "面膜", "精华", "面霜", "眼霜", "粉底", "香水", "防晒", "洗面奶", "卸妆", "化妆", "护肤",
               "唇", "眉笔", "睫毛", "乳液", "爽肤水", "美甲", "洗发", "沐浴"),
    "supplements": ("鱼油", "维生素", "钙片", "蛋白粉", "益生菌", "叶黄素", "胶原蛋白", "褪黑素", "保健", "营养"),
    "food": ("茶", "蜂蜜", "零食", "坚果", "大米", "咖啡", "牛肉", "燕窝", "红枣", "饼", "糕", "酒", "特产", "食品",
             "猪", "鸡", "鱼", "果", "米", "面", "酱", "蜜", "肉"),
    "baby": ("婴儿", "宝宝", "儿童", "童装", "奶粉", "奶瓶", "纸尿裤", "孕妇", "母婴", "玩具"),
    "apparel": ("裙", "衣", "裤", "鞋", "衫", "外套", "袜", "帽", "包", "t恤", "羽绒", "毛衣", "靴", "女装", "男装"),
    "electronics": ("手机", "耳机", "充电", "电脑", "数码", "键盘", "鼠标", "相机", "平板", "硬盘", "u盘", "音箱",
                    "数据线", "路由器", "显示器", "打印", "扫描"),
    "appliances": ("空调", "冰箱", "洗衣机", "电饭", "吹风", "净水", "加湿", "空气炸锅", "微波炉", "电器", "榨汁"),
    "home": ("枕", "被", "床", "毛巾", "杯", "锅", "收纳", "拖把", "地毯", "台灯", "窗帘", "家居", "地板", "沙发",
             "桌", "椅", "柜", "灯"),
}
PRODUCTS: dict[str, tuple[str, ...]] = {
    "beauty": ("精华液", "面霜", "口红", "粉底液", "眼霜", "洗面奶", "面膜", "香水", "防晒霜", "卸妆油"),
    "food": ("坚果礼盒", "牛肉干", "普洱茶", "蜂蜜", "大米", "橄榄油", "咖啡豆", "红枣", "燕麦片", "辣条"),
    "supplements": ("鱼油", "维生素c", "钙片", "蛋白粉", "益生菌", "叶黄素", "胶原蛋白", "褪黑素", "辅酶q10"),
    "apparel": ("羽绒服", "牛仔裤", "连衣裙", "运动鞋", "卫衣", "衬衫", "羊毛衫", "皮鞋", "棉袜", "风衣"),
    "electronics": ("蓝牙耳机", "充电宝", "手机壳", "智能手表", "平板电脑", "机械键盘", "数据线", "移动硬盘"),
    "appliances": ("空气炸锅", "吹风机", "扫地机器人", "电饭煲", "净水器", "破壁机", "电动牙刷", "加湿器"),
    "baby": ("纸尿裤", "奶粉", "婴儿推车", "儿童安全座椅", "奶瓶", "婴儿湿巾", "爬行垫", "辅食机"),
    "home": ("四件套", "收纳箱", "保温杯", "拖把", "乳胶枕", "不粘锅", "毛巾", "台灯", "地毯"),
}
BRAND_BY_CATEGORY: dict[str, tuple[str, ...]] = {
    "beauty": ("香奈儿", "迪奥", "兰蔻", "雅诗兰黛", "资生堂", "sk-ii", "欧莱雅"),
    "food": ("茅台", "五粮液"),
    "supplements": ("汤臣倍健",),
    "apparel": ("耐克", "阿迪达斯", "古驰", "路易威登", "爱马仕"),
    "electronics": ("苹果", "华为", "小米"),
    "appliances": ("戴森", "飞利浦", "美的", "格力"),
    "baby": ("飞鹤", "美赞臣", "惠氏"),
    "home": ("小米", "美的"),
    "other": ("苹果", "耐克", "香奈儿", "华为"),
}
# Price of a genuine branded item relative to the category median.
BRAND_PRICE_FACTOR = 3.0
ATTRIBUTES: tuple[str, ...] = (
    "新款", "2024款", "大容量", "便携", "加厚", "轻薄", "经典款", "家用", "礼盒装", "升级版", "官方",
    "正品", "包邮", "现货", "热销", "爆款", "网红", "高端", "简约", "多色可选", "旗舰款", "限定",
)
HONEST_SELLING_POINTS: tuple[str, ...] = (
    "七天无理由退换", "顺丰发货", "支持专柜验货", "官方授权", "假一赔十", "品质保障", "售后无忧",
    "回购率高", "质检报告可查", "厂家直供", "48小时发货", "赠运费险",
)
MISDESCRIBED_CLAIMS: tuple[str, ...] = (
    "纯棉", "真皮", "实木", "纯铜", "全新原装", "进口", "有机", "零添加", "大牌品质", "超长续航",
)
DESCRIPTION_OPENERS: tuple[str, ...] = (
    "本店{p}采用优质材料", "这款{p}做工精细", "{p}是店里的回头客最爱", "本款{p}经过严格质检",
    "{p}适合日常使用", "新到一批{p}", "老顾客都说这款{p}好用", "{p}支持七天无理由",
)
DESCRIPTION_MIDDLES: tuple[str, ...] = (
    "细节清晰可见", "实物与图片一致", "颜色可能因显示器略有差异", "尺寸请参考详情页", "手工测量误差1到3厘米",
    "包装完好", "适合送礼", "家人朋友都适用", "下单前可咨询客服", "批次不同包装可能更新",
)
DESCRIPTION_CLOSERS: tuple[str, ...] = (
    "有问题请联系客服。", "欢迎选购。", "发货后提供物流单号。", "感谢支持小店。", "祝您购物愉快。", "",
)
CUE_WORDS: dict[str, tuple[str, ...]] = {
    "counterfeit": ("高仿", "a货", "原单", "1:1复刻", "大牌同厂", "尾单", "专柜同款", "精仿", "外贸原单", "超a"),
    "unsafe": ("三无", "无需认证", "速效", "根治", "祛斑", "特效", "无副作用", "秘方", "一抹见效", "包治"),
    "exaggeration": ("全网最低", "顶级", "100%", "第一品牌", "史上最", "最好", "独家", "极品"),
}
UNSAFE_CATEGORIES = ("beauty", "supplements", "baby", "food")
INFERIOR_TYPES = ("counterfeit", "misdescribed", "unsafe", "junk")
INFERIOR_TYPE_WEIGHTS = (0.35, 0.30, 0.20, 0.15)


@dataclass(frozen=True)
class ListingGenerationConfig:
    """Knobs of the generator; the defaults give about 16% inferior listings."""

    n: int = 50_000
    seed: int = 0
    merchants_per_1000: int = 40
    shady_merchant_share: float = 0.12
    label_noise: float = 0.03
    use_real_titles: bool = True
    honest_empty_description: float = 0.35
    no_history_share: float = 0.25


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]


def _maybe(rng: np.random.Generator, probability: float) -> bool:
    return bool(rng.random() < probability)


def _title(rng: np.random.Generator, category: str, kind: str, brand: str | None) -> tuple[str, str]:
    product = _pick(rng, PRODUCTS[category])
    parts = [_pick(rng, ATTRIBUTES) for _ in range(int(rng.integers(1, 4)))]
    if brand:
        parts.insert(0, brand)
    parts.append(product)
    if kind == "counterfeit" and _maybe(rng, 0.55):
        parts.insert(int(rng.integers(len(parts) + 1)), _pick(rng, CUE_WORDS["counterfeit"]))
    if kind == "unsafe" and _maybe(rng, 0.65):
        parts.append(_pick(rng, CUE_WORDS["unsafe"]))
    if kind == "misdescribed" and _maybe(rng, 0.7):
        parts.insert(int(rng.integers(len(parts) + 1)), _pick(rng, MISDESCRIBED_CLAIMS))
    if _maybe(rng, 0.2 if kind in ("counterfeit", "unsafe") else 0.07):
        parts.append(_pick(rng, CUE_WORDS["exaggeration"]))
    if kind == "honest" and _maybe(rng, 0.04):
        # Hard negative: an honest seller using wording that looks like a copy cue.
        parts.append(_pick(rng, ("专柜同款", "尾单", "原单")))
    if kind == "junk":
        parts = parts[-2:] if _maybe(rng, 0.6) else parts
    separator = _pick(rng, (" ", "", " ", "【】", "/"))
    if separator == "【】":
        return f"【{parts[0]}】" + "".join(parts[1:]), product
    return separator.join(parts), product


def category_of_title(title: str) -> str:
    """The category whose product words a real title mentions first; ``other`` if none."""
    lowered = title.lower()
    for category, words in CATEGORY_KEYWORDS.items():
        if any(w in lowered for w in words):
            return category
    return "other"


def _insert(rng: np.random.Generator, title: str, word: str) -> str:
    cut = int(rng.integers(len(title) + 1))
    return title[:cut] + word + title[cut:]


def _real_title(rng: np.random.Generator, title: str, kind: str, brand: str | None) -> str:
    """A real title with the listing's defect injected (the real words are kept)."""
    if brand and (kind == "counterfeit" or _maybe(rng, 0.5)):
        title = f"{brand}{_pick(rng, ('', ' ', '/'))}{title}" if _maybe(rng, 0.6) else _insert(rng, title, brand)
    if kind == "counterfeit" and _maybe(rng, 0.55):
        title = _insert(rng, title, _pick(rng, CUE_WORDS["counterfeit"]))
    if kind == "unsafe" and _maybe(rng, 0.65):
        title = title + _pick(rng, CUE_WORDS["unsafe"])
    if kind == "misdescribed" and _maybe(rng, 0.7):
        title = _insert(rng, title, _pick(rng, MISDESCRIBED_CLAIMS))
    if _maybe(rng, 0.2 if kind in ("counterfeit", "unsafe") else 0.05):
        title = title + _pick(rng, CUE_WORDS["exaggeration"])
    if kind == "junk" and _maybe(rng, 0.3):
        title = title[:int(rng.integers(3, 9))]
    return title


def _description(rng: np.random.Generator, product: str, kind: str, empty_share: float = 0.0) -> str:
    if kind == "honest" and _maybe(rng, empty_share):
        return ""
    if kind == "junk" and _maybe(rng, 0.6):
        return "" if _maybe(rng, 0.5) else product
    sentences = [_pick(rng, DESCRIPTION_OPENERS).format(p=product)]
    sentences += [_pick(rng, DESCRIPTION_MIDDLES) for _ in range(int(rng.integers(1, 4)))]
    if kind == "honest" and _maybe(rng, 0.6):
        sentences.append(_pick(rng, HONEST_SELLING_POINTS))
    if kind == "unsafe" and _maybe(rng, 0.5):
        sentences.append(f"{_pick(rng, CUE_WORDS['unsafe'])}效果明显")
    if kind == "counterfeit" and _maybe(rng, 0.3):
        sentences.append(f"和专柜{_pick(rng, ('一模一样', '同一工厂', '品质无差'))}")
    if kind == "misdescribed" and _maybe(rng, 0.4):
        sentences.append(f"{_pick(rng, MISDESCRIBED_CLAIMS)}材质")
    return "，".join(sentences) + _pick(rng, DESCRIPTION_CLOSERS)


def _inferior_kind(rng: np.random.Generator, category: str) -> str:
    kind = INFERIOR_TYPES[int(rng.choice(len(INFERIOR_TYPES), p=INFERIOR_TYPE_WEIGHTS))]
    if kind == "unsafe" and category not in UNSAFE_CATEGORIES:
        return "misdescribed"
    return kind


def _price(rng: np.random.Generator, category: str, kind: str, brand: str | None) -> tuple[float, float | None]:
    median = CATEGORY_MEDIAN_PRICE[category]
    base = median * float(rng.lognormal(0.0, 0.55))
    if brand and kind != "counterfeit":
        base *= BRAND_PRICE_FACTOR * float(rng.lognormal(0, 0.25))
    list_price: float | None = round(base, 1)
    if kind == "counterfeit":
        genuine = median * BRAND_PRICE_FACTOR * float(rng.lognormal(0, 0.25))
        list_price = round(genuine, 1) if _maybe(rng, 0.7) else None
        price = genuine * float(rng.uniform(0.06, 0.45))
    elif kind == "junk":
        price = base * float(rng.uniform(0.05, 0.5))
    else:
        discount = float(rng.beta(8, 2))
        if kind == "honest" and _maybe(rng, 0.08):
            discount = float(rng.uniform(0.2, 0.5))  # clearance sale: honest but deep discount
        price = base * discount
    if _maybe(rng, 0.25):
        list_price = None
    return round(max(price, 0.9), 1), list_price


@dataclass(frozen=True)
class _Behaviour:
    rating_mean: float
    negative: tuple[float, float]
    returns: tuple[float, float]
    complaints: tuple[float, float]


BEHAVIOUR: dict[str, _Behaviour] = {
    "honest": _Behaviour(4.72, (1.5, 30), (2, 30), (1, 120)),
    "counterfeit": _Behaviour(4.55, (2, 22), (2.5, 22), (2, 60)),
    "misdescribed": _Behaviour(4.15, (3, 12), (4, 14), (2, 40)),
    "unsafe": _Behaviour(4.45, (2, 20), (2, 25), (3, 30)),
    "junk": _Behaviour(3.95, (3, 14), (3, 16), (2, 50)),
}


def _behaviour(rng: np.random.Generator, kind: str, no_history: float = 0.1) -> dict[str, float | int | None]:
    spec = BEHAVIOUR[kind]
    if _maybe(rng, no_history):
        return {"sales": 0, "rating": None, "review_count": 0, "negative_review_rate": None,
                "return_rate": None, "complaint_rate": None}
    sales = int(rng.lognormal(4.0 if kind != "junk" else 2.8, 1.4)) + 1
    return {
        "sales": sales,
        "rating": round(float(np.clip(rng.normal(spec.rating_mean, 0.35), 1.0, 5.0)), 2),
        "review_count": int(rng.poisson(sales * 0.3)),
        "negative_review_rate": round(float(rng.beta(*spec.negative)), 4),
        "return_rate": round(float(rng.beta(*spec.returns)), 4),
        "complaint_rate": round(float(rng.beta(*spec.complaints)), 4),
    }


def _image_count(rng: np.random.Generator, kind: str) -> int:
    if kind == "junk":
        return int(rng.integers(0, 3))
    return int(np.clip(rng.poisson(5.0), 0, 20))


def generate_listings(config: ListingGenerationConfig, progress: bool = True,
                      real_root: Path | None = None) -> pd.DataFrame:
    """Generate ``config.n`` listings following the module's generative story (real titles
    from the train part of ``../shared/data`` when present and ``config.use_real_titles``)."""
    rng = np.random.default_rng(config.seed)
    titles = _real_title_pool(config, real_root)
    n_merchants = max(5, config.n * config.merchants_per_1000 // 1000)
    shady = rng.random(n_merchants) < config.shady_merchant_share
    inferior_rate = np.where(shady, rng.beta(5, 4, n_merchants), rng.beta(1.2, 14, n_merchants))
    categories = tuple(CATEGORY_WEIGHTS)
    weights = np.array(list(CATEGORY_WEIGHTS.values()))
    rows = []
    for i in tqdm(range(config.n), desc="listings", disable=None if progress else True, mininterval=0.5):
        merchant = int(rng.integers(n_merchants))
        real = titles[int(rng.integers(len(titles)))] if titles else None
        category = category_of_title(real) if real else \
            categories[int(rng.choice(len(categories), p=weights / weights.sum()))]
        inferior = _maybe(rng, float(inferior_rate[merchant]))
        kind = _inferior_kind(rng, category) if inferior else "honest"
        brand_p = {"counterfeit": 0.85, "honest": 0.12}.get(kind, 0.05)
        brand = _pick(rng, BRAND_BY_CATEGORY[category]) if _maybe(rng, brand_p) else None
        if real:
            title, product = _real_title(rng, real, kind, brand), real
        else:
            title, product = _title(rng, category, kind, brand)
        price, list_price = _price(rng, category, kind, brand)
        rows.append({
            "listing_id": f"L{config.seed}-{i:07d}",
            "merchant_id": f"M{config.seed}-{merchant:05d}",
            "title": title,
            "description": _description(rng, _pick(rng, PRODUCTS.get(category, ("商品",))), kind,
                                        config.honest_empty_description if real else 0.0),
            "category": category,
            "price": price,
            "list_price": list_price,
            "image_count": _image_count(rng, kind),
            **_behaviour(rng, kind, config.no_history_share if real else 0.1),
            "inferior_type": kind,
            "is_inferior": int(inferior),
            "title_source": "real" if real else "template",
        })
    frame = pd.DataFrame(rows)
    flip = rng.random(len(frame)) < config.label_noise
    frame["label_flipped"] = flip
    frame["is_inferior"] = np.where(flip, 1 - frame["is_inferior"], frame["is_inferior"]).astype(int)
    return frame


def _real_title_pool(config: ListingGenerationConfig, real_root: Path | None) -> tuple[str, ...]:
    if not config.use_real_titles:
        return ()
    root = real_root or real_text.shared_data_dir()
    if root is None:
        real_text.warn_missing("listing titles come from templates; the model will not be grounded in real titles")
        return ()
    return tuple(t for t in real_text.product_titles(root) if not real_text.is_check_text(t))


def listing_data_card(frame: pd.DataFrame, config: ListingGenerationConfig) -> str:
    """Markdown data card: the story, the class balance and the noise."""
    story = (__doc__ or "").split("The story (also written into the data card):", 1)[-1].strip()
    by_type = frame["inferior_type"].value_counts().sort_index()
    by_category = frame.groupby("category")["is_inferior"].agg(["count", "mean"]).sort_index()
    lines = [
        "# Data card: synthetic listings",
        "",
        f"- rows: {len(frame):,}; merchants: {frame['merchant_id'].nunique():,}; seed: {config.seed}",
        f"- label `is_inferior` positive share: {frame['is_inferior'].mean():.2%}",
        f"- label noise: {config.label_noise:.1%} of labels flipped at random "
        f"({int(frame['label_flipped'].sum()):,} rows, marked in `label_flipped`)",
        f"- shady merchant share: {config.shady_merchant_share:.0%}",
        f"- titles: {(frame['title_source'] == 'real').mean():.0%} start from real Taobao titles "
        "(train part of ../shared/data; the held-out check part is never used)" if (frame["title_source"] == "real").any()
        else "- titles: **templates only** (../shared/data was not found); the model will not be grounded in real titles",
        "- generator: `shopguard data generate listings` (kinds/listing_quality/generator.py); "
        "same seed, same bytes",
        "",
        "## Generative story",
        "",
        story,
        "",
        "## Mechanism counts (before label noise)",
        "",
        "| inferior_type | rows |",
        "|---|---|",
        *[f"| {k} | {v:,} |" for k, v in by_type.items()],
        "",
        "## Class balance per category",
        "",
        "| category | rows | inferior share |",
        "|---|---|---|",
        *[f"| {c} | {int(r['count']):,} | {r['mean']:.2%} |" for c, r in by_category.iterrows()],
        "",
        "## Intended use and limits",
        "",
        "Synthetic data for building and testing the pipeline end to end. It is not a sample of "
        "any real platform: figures measured on it show that the pipeline works, not how well a "
        "model will do on real traffic. `inferior_type` and `label_flipped` are generator "
        "bookkeeping and must not be used as features.",
        "",
    ]
    return "\n".join(lines)


API_FIELDS: tuple[str, ...] = LISTING_FIELDS


def to_api_records(frame: pd.DataFrame) -> list[dict]:
    """Generated listings as ``POST /v1/listings/score`` records (missing values left out,
    counts as integers)."""
    records = []
    for row in frame[list(API_FIELDS)].to_dict(orient="records"):
        clean = {k: v for k, v in row.items() if not (isinstance(v, float) and v != v)}
        for key in ("image_count", "sales", "review_count"):
            if key in clean:
                clean[key] = int(clean[key])
        records.append(clean)
    return records
