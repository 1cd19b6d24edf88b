"""Livestream transcript segments (ASR style) with multi-label truth, grounded in real text.

The story (also written into the data card):

1. A stream sells one product of one vertical (health supplements, skincare, cosmetics,
   blood-pressure monitors and other home medical devices, food, apparel, home goods,
   electronics, baby goods, jewellery). A segment is what the ASR heard in a few seconds:
   2 to 5 spoken clauses run together without punctuation, with fillers (然后, 对吧, 家人们,
   嗯, 你看), numbers as spoken (一百九十九, 两粒), and ASR character confusions (的/得,
   在/再, 买/卖 never). Segments are 14 to 94 characters long (median near 46), like the
   real ones the maintainers describe.
2. Most talk is lawful: product facts per vertical (dosage, texture, how to measure blood
   pressure), prices and coupon arithmetic, logistics and after-sales, answers to buyers.
3. Some hosts break the rules. A violating clause (any of the eight categories, most often
   ``efficacy_claim``, then ``false_scarcity``, ``price_fraud``, ``fake_endorsement``,
   ``absolute_claim``, ``guarantee_claim``) is embedded among lawful clauses. Clauses are
   composed from parts (disease euphemisms x effects x durations, ...), so most of them
   are paraphrases no lexicon rule covers.
4. Evaders disguise claims: 某 and 什么 inside words, euphemisms for diseases (三高, 糖友,
   那个病) and for other platforms (绿色软件, 小企鹅, 某信), traditional or full-width
   characters, spaces and symbols between characters, pinyin and homophones.
5. Hard negatives are frequent and spoken the same way: 第一次, 最后一步, 七天无理由, 正品保证,
   按原价退款, truthful stock counts, coupon arithmetic, disclaimers (不能代替药物).
6. Real text (``../shared/data``, train part only; see ``training.data.real_text``) is
   mixed in when present: shopping reviews and product titles as clean background, real ad
   copy as clean seller talk and as the carrier of embedded violating clauses, the
   regulator's penalised claims as real ``efficacy_claim`` positives (also embedded into
   sales talk), and in-game ad spam as real ``off_platform`` positives.
7. ``label_noise`` of the synthetic segments have one category flipped (annotator error).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from features.marketing import MARKETING_CATEGORIES, match_lexicon
from training.data import real_text

Rng = np.random.Generator

VERTICALS: dict[str, tuple[str, ...]] = {
    "supplements": ("鱼油", "深海鱼油", "复合维生素", "钙片", "益生菌", "蛋白粉", "叶黄素", "辅酶q10",
                    "维生素d", "葡萄籽", "氨糖", "胶原蛋白肽"),
    "skincare": ("精华液", "面霜", "水乳套装", "防晒霜", "面膜", "眼霜", "洗面奶", "精华油", "身体乳"),
    "cosmetics": ("口红", "粉底液", "气垫", "眉笔", "散粉", "眼影盘", "腮红"),
    "medical_devices": ("血压计", "血糖仪", "按摩仪", "颈椎按摩器", "雾化器", "额温枪", "理疗仪", "艾灸盒"),
    "food": ("牛肉干", "坚果", "蜂蜜", "普洱茶", "燕窝", "红枣", "黑芝麻丸", "阿胶糕", "代餐粉"),
    "apparel": ("羽绒服", "卫衣", "牛仔裤", "连衣裙", "运动鞋", "羊绒衫"),
    "home": ("四件套", "保温杯", "不粘锅", "乳胶枕", "净水器", "空气炸锅"),
    "electronics": ("蓝牙耳机", "充电宝", "智能手表", "数据线"),
    "baby": ("纸尿裤", "奶粉", "婴儿湿巾", "儿童牙膏", "辅食"),
    "jewelry": ("金手镯", "银项链", "珍珠耳环", "翡翠吊坠"),
}
# Verticals weighted toward what the real rooms sell (supplements, skincare, devices).
VERTICAL_WEIGHTS: dict[str, float] = {
    "supplements": 0.22, "skincare": 0.17, "cosmetics": 0.08, "medical_devices": 0.15, "food": 0.1,
    "apparel": 0.07, "home": 0.06, "electronics": 0.05, "baby": 0.05, "jewelry": 0.05,
}
ADDRESS = ("家人们", "宝宝们", "姐妹们", "兄弟们", "朋友们", "直播间的家人们", "老铁们", "亲们", "叔叔阿姨们",
           "新进来的朋友")
FILLERS = ("那个", "然后", "对吧", "是不是", "就是说", "咱们", "真的", "我跟你们说", "来", "好", "嗯", "啊",
           "你看", "听我说", "这个", "就是", "呃", "哎")
UNITS = ("粒", "瓶", "盒", "支", "片", "袋", "套", "件")

GENERAL_LAWFUL = (
    "欢迎{a}来到直播间", "{a}晚上好", "新进来的{a}点个关注", "感谢{a}的点赞", "{a}把灯牌点亮",
    "喜欢的点击下方小黄车{k}号链接", "拍之前看一下规格", "没拍到的不要着急 我们再加{k}单库存",
    "拍完记得备注颜色", "点关注不迷路", "有问题可以在公屏上打出来", "我们家是品牌官方旗舰店",
    "四十八小时内发货", "顺丰包邮", "七天无理由退换", "支持运费险", "偏远地区不包邮哦", "下午五点前下单当天发",
    "今天直播间价格是{n}块", "这个{p}到手价{n}", "拍一发二一共{n}元", "今天下单送一个小样", "满{n}减二十",
    "标价{n} 领{c}的券 再减{c} 到手{m}", "两件打九折 三件打八五折", "价格是{n}元包邮", "领券之后{m}块钱",
    "现在下单是{n}块钱{k}{u}", "算下来一{u}才{c}块钱", "这个价格跟昨天一样的", "详情页的价格就是到手价",
    "有人问色号我一个个说", "这个问题我回答一下", "看到有家人问保质期多久", "问发什么快递的是顺丰",
    "主播自己也在用", "我们这个{p}的评价大家可以去看", "售后有任何问题找客服", "{p}的包装是礼盒装的",
)
# Lawful product talk per vertical.
VERTICAL_LAWFUL: dict[str, tuple[str, ...]] = {
    "supplements": (
        "每天早上吃{k}粒 饭后吃", "这个是蓝帽子的保健食品 批号在详情页", "一瓶是{n}粒 能吃一个多月",
        "{p}的含量详情页写得很清楚", "保健食品不能代替药物", "有基础病的先问一下医生", "孕妇不建议吃",
        "胶囊是软胶囊 好吞", "配料表就这几样 大家自己看", "原料是进口的 有检测报告", "建议连续吃一段时间再看感受",
        "吃的时候多喝水", "小朋友不要吃成人的", "配合饮食和运动", "这个是膳食补充 不是药",
    ),
    "skincare": (
        "质地是乳霜状的 很好推开", "上脸很清爽不黏", "敏感肌可以先在耳后试一下", "成分里有烟酰胺和玻尿酸",
        "保湿做得不错 秋冬用刚好", "早晚各用一次", "用完再上乳液锁水", "一瓶是{n}毫升", "味道是淡淡的花香",
        "油皮干皮都可以用", "防晒要每天涂 出门前十五分钟", "备案信息在详情页可以查", "开封以后半年内用完",
    ),
    "cosmetics": (
        "这个色号黄皮也能用", "上嘴很显气色", "持妆大概四五个小时", "粉底液是偏雾面的", "一共有{k}个色号",
        "试色都是原相机拍的", "眉笔是细头的 新手也好画", "散粉定妆不卡粉",
    ),
    "medical_devices": (
        "这个血压计是上臂式的", "测量的时候坐好 手臂和心脏一样高", "有语音播报 老人家看得清",
        "可以存两组数据 一家人都能用", "医疗器械注册证在详情页", "测出来数值不正常要去医院",
        "量之前先休息五分钟", "每天固定时间量 记下来给医生看", "袖带是加大的 胳膊粗的也能用",
        "按摩仪有三档力度", "充一次电能用{k}周", "血糖仪送{n}片试纸", "机器保修一年", "插电就能用 操作简单",
    ),
    "food": (
        "这个{p}是今年的新货", "一袋是{n}克", "配料表很干净", "口感是偏甜的", "开袋即食", "放冰箱冷藏更好吃",
        "生产日期都是最近的", "有老人小孩的家庭可以买", "一天吃一两包就够了",
    ),
    "apparel": ("面料是纯棉的", "尺码偏大一码", "有{k}个颜色", "主播身高一米六五穿M码", "可以机洗", "版型是宽松的"),
    "home": ("尺寸是一米八的床", "杯子能保温十二个小时", "锅是不粘涂层的", "净水器滤芯半年换一次", "清洗很方便"),
    "electronics": ("续航大概{k}个小时", "支持快充", "蓝牙连接很稳", "有三种颜色", "保修一年"),
    "baby": ("纸尿裤是超薄的", "奶粉是一段的 零到六个月", "湿巾是无香的", "适合三岁以上的宝宝", "冲泡水温四十度"),
    "jewelry": ("金手镯是足金的 有证书", "克重是{k}克左右", "项链长度可以调", "珍珠是淡水珍珠"),
}
HARD_NEGATIVES = (
    "第一次来直播间的{a}", "第一次用的话先少量", "最后一步 把{p}按压吸收", "最后一个问题我回答一下",
    "最近天气冷了注意保暖", "最近很多人在问", "不满意可以按原价退款", "原价退回到你的账户", "七天无理由 放心拍",
    "我们是正品保证 支持专柜验货", "本品不能代替药物治疗", "这个码数卖完了就真没有了", "有疾病的请遵医嘱",
    "我们不保证每个人效果都一样", "价格以下单页面为准", "第一个颜色是黑色", "治疗类的产品我们直播间不卖",
    "今天就播到十点", "库存在详情页能看到", "这个{p}不能治病 是保健食品", "高血压的朋友买个血压计在家测一测",
    "最好是饭后吃", "最好别空腹吃", "今天是第一场直播", "这是我们最后一个链接", "优惠券最后两个小时",
    "不要相信私下加联系方式的 都是骗子", "不要去别的地方拍 只在我们直播间", "正品 假一赔三",
    "第一品牌我们不敢说 但是质量你们放心", "有没有效果因人而异", "{c}块钱的券每人限领一张",
)

# Parts from which violating clauses are composed (seller talk, written for this project).
DISEASES = ("高血压", "血压高", "三高", "糖尿病", "血糖高", "失眠", "睡不着觉", "关节痛", "老寒腿", "颈椎病",
            "胃病", "便秘", "脂肪肝", "痛风", "湿疹", "痘痘", "斑", "脱发", "骨质疏松", "心脑血管的毛病",
            "老慢支", "前列腺", "妇科炎症", "近视", "老花眼")
DISEASE_EUPHEMISMS = ("那个三高", "糖友", "那个病", "血某压", "血什么糖", "富贵病", "老毛病", "那方面的问题",
                      "脑子里那个东西", "血管堵的", "尿酸高的", "老胃病")
EFFECTS = ("就下来了", "就好了", "就没了", "彻底断根", "不用再吃药了", "药都可以停了", "一次就见轻",
           "慢慢就恢复了", "比吃药还管用", "血管都通了", "再也没犯过", "指标全都正常了", "斑就淡了", "头发就长出来了")
DURATIONS = ("吃一个月", "喝三天", "用一个疗程", "坚持两周", "吃完这一盒", "抹一个星期", "用上半个月", "吃两瓶")
EFFICACY = (
    "{d}的{t}{e}", "{w}{t}{e}", "我们这个{p}是专门调理{d}的", "能治{d}", "对{d}特别有效果", "{x}的吃它就对了",
    "吃了能降血压降血糖", "长期吃能清理血管里的垃圾", "增强免疫力 不容易感冒", "能预防老年痴呆", "抗癌防癌的",
    "修复受损的细胞", "能排毒养颜", "美白祛斑 一抹就白", "祛痘修复烂脸", "一个月长出新头发", "软化血管 溶解血栓",
    "调理内分泌 月经不调的吃它", "保护肝脏 喝酒的必备", "补肾壮阳", "明目 戴眼镜的都能摘了", "改善睡眠 一觉到天亮",
    "{x}{t}{e}", "很多{x}吃了都说好", "医院治不好的{d} 吃我们这个", "测一测就能调理{d}",
    "这个按摩仪能治{d}", "天天用{d}就好了",
)
ABSOLUTE = (
    "全网最低价 没有比这个更便宜的", "效果是最好的", "行业第一", "市面上最纯的{p}", "顶级的原料",
    "绝对是百分之百的纯度", "用了绝对不会过敏", "全国销量第一", "这是史上最好用的{p}", "没有比我们家更好的{p}",
    "国家级的配方", "独一无二的工艺", "效果最强的就是这一款", "别家绝对没有这个价", "闭眼入的天花板",
)
GUARANTEE = (
    "吃完没效果全额退", "{t}见效 无效退款", "保证你一个疗程就看到变化", "包你满意 没效果找我", "没有任何副作用",
    "永不反弹", "百分之百有效", "用了没变化你回来找我", "保证治好", "{t}不见效我给你退", "一定能瘦下来",
)
PRICE_FRAUD = (
    "专柜卖{h}多 今天直播间{m}", "原价{h} 今天只要{m}", "平时都卖{h}多的 今天{m}", "这是出厂价 我们一分钱不赚",
    "今天亏钱给大家冲销量", "老板疯了 这个价亏本卖", "比批发价还低", "外面卖{h} 我们这里{m}", "成本价都不到",
    "今天赔本清仓", "市场价{h} 今天只要{m}", "药店卖{h}多的 我们这里{m}",
)
SCARCITY = (
    "只剩最后{k}单了", "这个价格就这一场 下播就恢复原价", "库存不多了 还有{k}单", "倒计时五四三二一 上链接",
    "今天不买明天就涨价了", "这批货卖完就没有了 厂家不生产了", "过了今天就没这个价了", "马上下架了 抓紧拍",
    "仅此一次 错过再等一年", "手慢无啊", "最后{k}套 拍完就没了", "名额有限 就放{k}单", "今天是最后一波福利了",
)
COUNTERFEIT = (
    "跟专柜一模一样 就是没有logo", "大牌同一个代工厂出来的", "原单尾货", "高仿的 看不出来", "一比一复刻",
    "撕了标的大牌", "外贸原单 懂的都懂", "跟大牌同厂同料", "超a的品质", "跟某大牌一个工厂的",
)
OFF_PLATFORM = (
    "加我那个绿色软件", "主页有联系方式 私下找我便宜", "去某信上找我", "加我扣扣发你", "不要在这拍 私信我",
    "加V给你便宜", "加我微信私聊", "加我小企鹅", "私聊下单 便宜{c}块", "扫码转账更优惠", "绿泡泡上找我",
    "加我薇信 备注直播间", "不走平台给你便宜", "去我朋友圈看", "vx上发你链接",
)
ENDORSEMENT = (
    "这个是医生推荐的", "三甲医院的主任都在吃", "电视上报道过的", "专家说这个对心脑血管好", "明星同款",
    "国家认证的专利配方", "我们是国宴指定供应商", "医院也在用这个", "某明星天天在用", "老中医推荐的方子",
    "央视推荐过的", "院士研发的配方", "卫健委推荐的", "很多医生自己都在吃",
)
VIOLATIONS: dict[str, tuple[str, ...]] = {
    "absolute_claim": ABSOLUTE, "efficacy_claim": EFFICACY, "guarantee_claim": GUARANTEE,
    "price_fraud": PRICE_FRAUD, "false_scarcity": SCARCITY, "counterfeit": COUNTERFEIT,
    "off_platform": OFF_PLATFORM, "fake_endorsement": ENDORSEMENT,
}
# How often each category is chosen for a violating segment (the real order of frequency).
CATEGORY_WEIGHTS: dict[str, float] = {
    "efficacy_claim": 0.27, "false_scarcity": 0.15, "price_fraud": 0.13, "fake_endorsement": 0.12,
    "absolute_claim": 0.11, "guarantee_claim": 0.1, "counterfeit": 0.06, "off_platform": 0.06,
}
SCRIPTED_EVASIONS = {"微信": ("wei信", "薇信", "V信", "威信", "vx"), "私聊": ("私 聊", "私*聊")}
ASR_CONFUSIONS = {"的": "得", "在": "再", "那": "哪", "做": "作", "已": "以", "吗": "嘛", "是": "事", "他": "她"}
DIGIT_WORDS = "零一二三四五六七八九"


def spoken_number(value: int) -> str:
    """A number as it is spoken (199 -> 一百九十九, 2 -> 两)."""
    if value == 2:
        return "两"
    if value < 10:
        return DIGIT_WORDS[value]
    out = ""
    for unit_value, unit in ((1000, "千"), (100, "百"), (10, "十")):
        digit, value = divmod(value, unit_value)
        if digit:
            out += ("" if (unit == "十" and digit == 1 and not out) else DIGIT_WORDS[digit]) + unit
        elif out and value:
            out += "零" if not out.endswith("零") else ""
    return out + (DIGIT_WORDS[value] if value else "")


@dataclass(frozen=True)
class TranscriptGenerationConfig:
    """Knobs of the transcript generator."""

    n: int = 20_000
    seed: int = 0
    violation_rate: float = 0.3
    multi_label_rate: float = 0.12
    evasion_rate: float = 0.3
    hard_negative_rate: float = 0.3
    label_noise: float = 0.01
    segments_per_stream: int = 40
    spoken_number_rate: float = 0.7
    asr_confusion_rate: float = 0.15
    use_real_text: bool = True
    real_share: float = 0.5  # real-text rows added, as a share of ``n``


def _pick(rng: Rng, options: tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]


@lru_cache(maxsize=1)
def _s2t():  # opencc has no type stubs
    import opencc

    return opencc.OpenCC("s2t")


def _evade(rng: Rng, phrase: str) -> str:
    """Disguise a violating phrase the way evaders do."""
    kind = int(rng.integers(6))
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
    if len(phrase) >= 3 and kind in (3, 4):
        cut = int(rng.integers(1, len(phrase)))
        return phrase[:cut] + _pick(rng, ("某", "什么", "嗯")) + phrase[cut:]
    return "".join(c * 2 for c in phrase[:4]) + phrase[4:]


def _fill(rng: Rng, template: str, product: str, spoken: bool) -> str:
    high = int(rng.choice((199, 299, 399, 599, 899, 999, 1299)))
    low = int(rng.integers(19, high // 3))
    numbers = {"n": int(rng.integers(29, 400)), "m": low, "h": high, "c": int(rng.choice((5, 10, 20, 30, 50))),
               "k": int(rng.integers(2, 9))}
    words = {key: (spoken_number(v) if spoken else str(v)) for key, v in numbers.items()}
    return template.format(
        a=_pick(rng, ADDRESS), p=product, u=_pick(rng, UNITS), d=_pick(rng, DISEASES),
        w=_pick(rng, DISEASE_EUPHEMISMS), x=_pick(rng, DISEASE_EUPHEMISMS + DISEASES),
        t=_pick(rng, DURATIONS), e=_pick(rng, EFFECTS), **words)


def _asr_noise(rng: Rng, text: str, rate: float) -> str:
    if rng.random() >= rate:
        return text
    positions = [i for i, c in enumerate(text) if c in ASR_CONFUSIONS]
    if not positions:
        return text
    i = positions[int(rng.integers(len(positions)))]
    return text[:i] + ASR_CONFUSIONS[text[i]] + text[i + 1:]


@dataclass
class _Stream:
    vertical: str
    product: str


def _lawful_clause(rng: Rng, stream: _Stream, spoken: bool) -> str:
    pool = VERTICAL_LAWFUL[stream.vertical] if rng.random() < 0.55 else GENERAL_LAWFUL
    return _fill(rng, _pick(rng, pool), stream.product, spoken)


def _join(rng: Rng, parts: list[str]) -> str:
    out = parts[0]
    for part in parts[1:]:
        glue = _pick(rng, ("", "", " ", "然后", "对吧", "你看", "嗯", "就是", "啊", "这个"))
        out += glue + part
    return out


def _violating_clause(rng: Rng, category: str, stream: _Stream, spoken: bool,
                      regulator: list[str]) -> str:
    if category == "efficacy_claim" and regulator and rng.random() < 0.25:
        return _pick(rng, tuple(regulator))[:40]
    return _fill(rng, _pick(rng, VIOLATIONS[category]), stream.product, spoken)


def _segment(rng: Rng, config: TranscriptGenerationConfig, stream: _Stream,
             regulator: list[str]) -> tuple[str, set[str], bool, bool]:
    spoken = rng.random() < config.spoken_number_rate
    parts = [(_lawful_clause(rng, stream, spoken), False) for _ in range(int(rng.integers(2, 5)))]
    labels: set[str] = set()
    evaded = hard = False
    if rng.random() < config.violation_rate:
        categories, weights = list(CATEGORY_WEIGHTS), np.array(list(CATEGORY_WEIGHTS.values()))
        n_categories = 2 if rng.random() < config.multi_label_rate else 1
        for category in rng.choice(categories, size=n_categories, replace=False, p=weights / weights.sum()):
            phrase = _violating_clause(rng, str(category), stream, spoken, regulator)
            if rng.random() < config.evasion_rate:
                phrase, evaded = _evade(rng, phrase), True
            parts.insert(int(rng.integers(len(parts) + 1)), (phrase, True))
            labels.add(str(category))
    if rng.random() < config.hard_negative_rate:
        clause = _fill(rng, _pick(rng, HARD_NEGATIVES), stream.product, spoken)
        parts.insert(int(rng.integers(len(parts) + 1)), (clause, False))
        hard = True
    if rng.random() < 0.5:
        parts.insert(0, (_pick(rng, ADDRESS), False))
    for _ in range(int(rng.integers(0, 3))):
        parts.insert(int(rng.integers(len(parts) + 1)), (_pick(rng, FILLERS), False))
    # Keep segments within the real length range: drop lawful clauses (never a violating one).
    while sum(len(p) for p, _ in parts) > real_text.MAX_PIECE and any(not kept for _, kept in parts[1:]):
        droppable = [i for i, (_, kept) in enumerate(parts) if not kept]
        parts.pop(droppable[-1])
    text = _asr_noise(rng, _join(rng, [p for p, _ in parts]), config.asr_confusion_rate)
    return text, labels, evaded, hard


def _synthetic_rows(config: TranscriptGenerationConfig, rng: Rng, regulator: list[str],
                    progress: bool) -> list[dict]:
    rows = []
    stream_id, position, clock = -1, config.segments_per_stream, 0
    stream = _Stream("", "")
    verticals, weights = list(VERTICAL_WEIGHTS), np.array(list(VERTICAL_WEIGHTS.values()))
    for _ in tqdm(range(config.n), desc="segments", disable=None if progress else True, mininterval=0.5):
        if position >= config.segments_per_stream:
            stream_id, position, clock = stream_id + 1, 0, 0
            vertical = str(rng.choice(verticals, p=weights / weights.sum()))
            stream = _Stream(vertical, _pick(rng, VERTICALS[vertical]))
        text, labels, evaded, hard = _segment(rng, config, stream, regulator)
        if rng.random() < config.label_noise:
            labels ^= {str(rng.choice(MARKETING_CATEGORIES))}
        duration = int(rng.integers(2500, 9000))
        rows.append({
            "stream_id": f"S{config.seed}-{stream_id:05d}", "segment_index": position,
            "start_ms": clock, "end_ms": clock + duration, "vertical": stream.vertical, "text": text,
            "labels": "|".join(c for c in MARKETING_CATEGORIES if c in labels),
            "evasion": evaded, "hard_negative": hard, "source": "synthetic",
        })
        position, clock = position + 1, clock + duration + int(rng.integers(0, 800))
    return rows


def _lexicon_clean(text: str) -> bool:
    return not match_lexicon(text)


def regulator_labels(piece: str) -> str:
    """Weak labels of a regulator piece: efficacy, plus guarantee / endorsement by lexicon."""
    extra = {m.category for m in match_lexicon(piece)} & {"guarantee_claim", "fake_endorsement"}
    return "|".join(c for c in MARKETING_CATEGORIES if c == "efficacy_claim" or c in extra)


@dataclass(frozen=True)
class RealPools:
    """The train part of every real source, cut into segment-sized pieces."""

    reviews: list[str]
    ad_copy: list[str]
    titles: list[str]
    regulator: list[str]
    ingame: pd.DataFrame
    files: dict[str, Path]


def real_pools(root: Path) -> RealPools:
    """Read the real sources and keep their train part (``real_text.is_check_text`` false)."""
    review_frame = real_text.reviews(root)
    review_pieces = [p for r in review_frame["review"] if not real_text.is_check_text(r)
                     for p in real_text.pieces(r)[:2]]
    ads = [p for a in real_text.ad_copy(root) if not real_text.is_check_text(a) for p in real_text.pieces(a)]
    titles = [t for t in real_text.product_titles(root) if not real_text.is_check_text(t)]
    regulator = [p for case in real_text.regulator_cases(root) if not real_text.is_check_text(case.key)
                 for p in case.segments()]
    ingame = real_text.ingame_ads(root, "train")
    return RealPools(review_pieces, ads, titles, regulator, ingame, real_text.source_files(root))


def _real_rows(config: TranscriptGenerationConfig, rng: Rng, pools: RealPools) -> list[dict]:
    """Real clean background, real ad copy carrying embedded violations, regulator claims
    and in-game ads, about ``real_share * n`` rows in all."""
    budget = int(config.real_share * config.n)
    rows: list[dict] = []

    def add(text: str, labels: str, source: str, evasion: bool = False) -> None:
        rows.append({"stream_id": f"R{config.seed}-{source}", "segment_index": len(rows), "start_ms": 0,
                     "end_ms": 0, "vertical": "real", "text": text, "labels": labels, "evasion": evasion,
                     "hard_negative": False, "source": source})

    def sample(pool: list[str], k: int, keep: Callable[[str], bool] = _lexicon_clean) -> list[str]:
        """Up to ``k`` texts of ``pool`` in random order that ``keep`` accepts."""
        out = []
        for i in rng.permutation(len(pool)):
            if len(out) >= k:
                break
            if keep(pool[i]):
                out.append(pool[i])
        return out

    for text in sample(pools.reviews, int(budget * 0.3)):
        add(text, "", "real_review")
    for text in sample(pools.titles, int(budget * 0.07)):
        add(text, "", "real_title")
    for text in sample(pools.ad_copy, int(budget * 0.13)):
        add(text, "", "real_ad_copy")
    categories, weights = list(CATEGORY_WEIGHTS), np.array(list(CATEGORY_WEIGHTS.values()))
    stream = _Stream("real", "这款")
    for text in sample(pools.ad_copy, int(budget * 0.1)):
        category = str(rng.choice(categories, p=weights / weights.sum()))
        clause = _violating_clause(rng, category, stream, rng.random() < 0.5, pools.regulator)
        evasion = rng.random() < config.evasion_rate
        clause = _evade(rng, clause) if evasion else clause
        cut = int(rng.integers(0, max(1, len(text) - len(clause))))
        add((text[:cut] + clause + text[cut:])[:real_text.MAX_PIECE + len(clause)], category,
            "real_ad_copy+claim", evasion)
    for text in sample(pools.regulator, int(budget * 0.1), keep=lambda _: True):
        add(text, regulator_labels(text), "regulator")
    ingame = pools.ingame.sample(n=min(len(pools.ingame), int(budget * 0.3)), random_state=config.seed)
    for label, text in zip(ingame["label"], ingame["text"], strict=True):
        add(str(text), "off_platform" if int(label) == 1 else "", "ingame_ads")
    return rows


def generate_transcripts(config: TranscriptGenerationConfig, progress: bool = True,
                         real_root: Path | None = None) -> pd.DataFrame:
    """Generate ``config.n`` synthetic segments grouped into streams, plus the real-text rows
    of the story's step 6 when ``config.use_real_text`` and the shared data are present."""
    rng = np.random.default_rng(config.seed)
    root = real_root or (real_text.shared_data_dir() if config.use_real_text else None)
    pools = real_pools(root) if root is not None and config.use_real_text else None
    if config.use_real_text and pools is None:
        real_text.warn_missing("transcripts are synthetic only; the model will not be grounded in real text")
    rows = _synthetic_rows(config, rng, pools.regulator if pools else [], progress)
    if pools is not None:
        rows += _real_rows(config, rng, pools)
    return pd.DataFrame(rows)


def _real_sources_section(frame: pd.DataFrame) -> list[str]:
    counts = frame["source"].value_counts()
    if set(counts.index) == {"synthetic"}:
        return ["- **real text: none** (../shared/data was not found); this file is synthetic only", ""]
    doc = (real_text.__doc__ or "").split("Label choices (also written into the data cards):", 1)[-1].strip()
    return ["## Rows per source", "", "| source | rows | with a violation |", "|---|---|---|",
            *[f"| {s} | {n:,} | {(frame.loc[frame['source'] == s, 'labels'] != '').mean():.1%} |"
              for s, n in counts.items()],
            "", "## How the real text was labelled", "", doc, "",
            f"Real texts in the held-out check part (salted hash, {real_text.CHECK_SHARE:.0%}) are never "
            "used here; the trainer's real-world checks use only them.", ""]


def transcript_data_card(frame: pd.DataFrame, config: TranscriptGenerationConfig) -> str:
    """Markdown data card: story, sources, label balance, evasion and hard-negative shares."""
    story = (__doc__ or "").split("The story (also written into the data card):", 1)[-1].strip()
    counts = {c: int(frame["labels"].str.split("|").apply(lambda ls, c=c: c in ls).sum())
              for c in MARKETING_CATEGORIES}
    lengths = frame.loc[frame["source"] == "synthetic", "text"].str.len()
    return "\n".join([
        "# Data card: livestream transcript segments",
        "",
        f"- segments: {len(frame):,}; synthetic streams: {frame.loc[frame['source'] == 'synthetic', 'stream_id'].nunique():,}; "
        f"seed: {config.seed}",
        f"- synthetic segment length: median {lengths.median():.0f}, 5-95% {lengths.quantile(0.05):.0f}-"
        f"{lengths.quantile(0.95):.0f} characters",
        f"- segments with at least one violation: {(frame['labels'] != '').mean():.1%}",
        f"- evasion variants: {frame['evasion'].mean():.1%}; hard negatives: {frame['hard_negative'].mean():.1%}",
        f"- label noise: {config.label_noise:.1%} of synthetic segments with one category flipped",
        "- labels: `labels`, categories joined by `|` (empty = clean); `source` names where a row came from",
        "",
        "## Generative story",
        "",
        story,
        "",
        *_real_sources_section(frame),
        "## Segments per category",
        "",
        "| category | segments |",
        "|---|---|",
        *[f"| {c} | {n:,} |" for c, n in counts.items()],
        "",
    ])

