"""Resolution of evasive spellings of sensitive words, keeping offsets to the original text.

Hosts disguise claims so that filters miss them: a character of a sensitive word written with
another character of the same pinyin (免役力 for 免疫力, 降血鸭 for 降血压), written in Latin
pinyin (减fei), replaced by a look-alike character (冶疗 for 治疗, 降皿压 for 降血压), masked (免某力,
治x疗) or split by an inserted filler. ``features.text.normalize_text`` already folds width and
case, converts traditional characters, drops emoji and decorations and removes spaces and
punctuation next to Chinese characters (治*疗, 治.疗, 治 疗 -> 治疗); this module works on its
output and maps what is left back to the canonical word, so that the lexicon rules and the
model both read the canonical text while evidence spans still point at the characters the
viewer saw.

A window is resolved to a word of ``VOCABULARY`` only when it is a real evasion:

- it differs from the word, and every position of the word is the word's own character, a
  character read with the same toneless pinyin as the word's character there, the pinyin in
  Latin letters, a look-alike character, or (in words of three or more characters, at most
  one) a mask character; a filler (某, x, 什么, 那个, 〇) may sit between two positions;
- at least one position keeps the word's own character (hosts keep part of the word so that
  the audience still reads it), unless the whole word is spelled in Latin pinyin; at least two
  positions are read (own, homophone, pinyin or look-alike), so 治某 is never read as 治疗;
- the window is not one of ``COMMON_HOMOPHONE_WORDS``: ordinary words that sound like a
  sensitive word and share a character with it (一生 / 医生, 下家 / 下架).

The vocabulary was written for this project from the statutes in ``../shared/data/laws``
(Advertising Law art. 9, 16-18, 28, 38; Cosmetics Supervision Regulation art. 37, 43; the
Price-fraud Provisions art. 19, 21; Anti-Unfair Competition Law art. 6, 8; E-Commerce Law
art. 17) and the project's own lexicons (``features.marketing``, ``features.lexicons``).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from features.text import NormalizedText, normalize_text

# Sensitive words by category, canonical spelling (written as a host would say them;
# normalized at load).
VOCABULARY_BY_CATEGORY: dict[str, tuple[str, ...]] = {
    # efficacy: diseases, symptoms and medical effects (Advertising Law art. 16-18,
    # Cosmetics Supervision Regulation art. 43)
    "efficacy_claim": (
        "治疗", "根治", "治愈", "治好", "包治", "专治", "药到病除", "疗效", "药效", "特效", "神效",
        "降血压", "降血糖", "降血脂", "降三高", "高血压", "糖尿病", "血压", "血糖", "血脂", "三高",
        "抗癌", "防癌", "癌症", "肿瘤", "抗肿瘤", "消炎", "炎症", "杀菌", "排毒", "溶脂", "燃脂",
        "免疫力", "增强免疫", "提高免疫", "失眠", "改善睡眠", "助眠", "补肾", "壮阳", "护肝", "养肝", "明目",
        "祛斑", "淡斑", "美白", "去皱", "抗衰老", "抗衰", "生发", "防脱发", "脱发", "增高", "丰胸",
        "减肥", "瘦身", "减脂", "掉秤", "关节炎", "骨质疏松", "痛风", "便秘", "湿疹", "痘痘", "祛痘",
        "妇科病", "前列腺", "心脑血管", "胃病", "幽门螺杆菌", "近视", "白发", "三甲医院",
        "降压", "抗炎", "关节", "疏松", "肥胖", "血管", "血栓"),
    # guarantees of effect (Advertising Law art. 16(2), 18(2))
    "guarantee_claim": ("保证有效", "无效退款", "见效", "有效果", "立竿见影", "副作用", "不反弹", "零风险", "百分百"),
    # absolutes (Advertising Law art. 9(3))
    "absolute_claim": ("最低价", "全网最低", "第一品牌", "国家级", "顶级", "最好", "最强", "最佳", "万能",
                       "独一无二", "史上最", "销量第一", "独家", "首选"),
    # prices (Price-fraud Provisions art. 19)
    "price_fraud": ("原价", "出厂价", "成本价", "亏本", "清仓", "跳楼价", "甩卖", "骨折价", "地板价", "秒杀"),
    # scarcity (Price-fraud Provisions art. 21)
    "false_scarcity": ("下架", "下播", "名额", "库存", "限量", "抢完", "手慢无", "不返场", "不加单"),
    # counterfeits (Anti-Unfair Competition Law art. 6)
    "counterfeit": ("高仿", "复刻", "精仿", "仿品", "莆田"),
    # off-platform trade (E-Commerce Law art. 17)
    "off_platform": ("微信", "私聊", "转账", "加我", "线下交易"),
    # endorsements (Advertising Law art. 28, 38; Anti-Unfair Competition Law art. 8)
    "fake_endorsement": ("明星", "同款", "专家", "医生", "教授", "央视", "认证", "推荐", "国家认证", "专利"),
}
VOCABULARY: tuple[str, ...] = tuple(w for words in VOCABULARY_BY_CATEGORY.values() for w in words)

# Ordinary words that sound like a vocabulary word and share a character with it: never an
# evasion. Written from the homophone pairs of the vocabulary (each checked by hand).
COMMON_HOMOPHONE_WORDS: frozenset[str] = frozenset({
    "关姐", "官阶", "舒松", "降呀",
    "一生", "益生", "医圣", "下家", "下嫁", "吓坏", "市面", "事面", "至于", "质料", "资料", "原件", "元件", "园价",
    "源价", "员价", "名鹤", "名贺", "明细", "名星", "明兴", "明性", "明信", "同宽", "同款式", "铜款",
    "专价", "专加", "转家", "转嫁", "叫授", "交手", "教售", "央室", "秧视", "认正", "任证", "推建",
    "推见", "专理", "专力", "转利", "转力", "加窝", "家我", "加卧", "价我", "嘉我", "佳我",
    "微型", "危性", "为信", "维新", "为性", "唯心", "伪性", "私了", "思聊", "丝聊", "瘦生", "手身",
    "受身", "美百", "没白", "每白", "美拜", "减费", "减非", "简肥", "见肥", "检费", "剪费", "建肥",
    "建效", "件效", "简效", "见笑", "有笑", "有效", "友效", "效果", "小果", "笑果", "校果", "副作",
    "付作", "复作", "最号", "最耗", "罪好", "最郝", "醉好", "最墙", "最抢", "最家", "最加", "最假",
    "最嘉", "最佳", "度家", "独加", "读家", "毒家", "独价", "独假", "首先", "手选", "受选", "收选",
    "首旋", "清场", "清唱", "青仓", "轻仓", "情仓", "下波", "下拨", "下剥", "吓播", "名两",
    "名量", "名亮", "明额", "库村", "酷存", "限亮", "限两", "线量", "先量", "强完", "抢玩", "抢晚",
    "大派", "打牌", "大排", "搭牌", "原丹", "原担", "原耽", "圆单", "源单", "高防", "告仿", "高放",
    "复课", "复客", "服刻", "付刻", "父刻", "尾担", "伟单", "未单", "尾蛋", "秒沙", "描杀", "妙杀",
    "苗杀", "医声", "一声", "已升", "一升", "以上", "专访", "转价", "认真", "任真",
    "人证", "明日", "名目", "名木", "明木", "护甘", "户肝", "胡肝", "不肾", "补身", "不慎", "补深",
    "消言", "小炎", "效言", "削炎", "失面", "失棉", "师眠", "十面", "助绵", "注眠", "血牙", "雪压",
    "学压", "学牙", "血亚", "血糖", "雪糖", "学堂", "血汤", "血之", "学知", "雪脂", "血指", "三搞",
    "三稿", "散高", "伞高", "聚焦", "根指", "跟治", "跟质", "根植", "跟之", "治于", "之愈", "治鱼",
    "只愈", "治号", "之好", "治郝", "直好", "至好", "只好", "包质", "包之", "包值", "保治", "专职",
    "专指", "专制", "专值", "转治", "专直", "疗校", "料效", "了效", "特校", "特笑", "特消", "特销",
    "神笑", "深效", "身效", "肾效", "抗埃", "抗挨", "康癌", "放癌", "房癌", "防挨", "防爱", "癌证",
    "癌正", "肿流", "种瘤", "中瘤", "众瘤", "杀君", "杀军", "沙菌", "排读", "排度", "派毒", "容脂",
    "融脂", "溶纸", "然脂", "燃纸", "燃指", "免一", "免役", "面疫", "缅疫", "养甘", "洋肝", "淡班",
    "淡搬", "蛋斑", "单斑", "去斑", "去班", "取斑", "取皱", "趣皱", "抗衰", "生法", "生花", "声发",
    "升发", "身发", "胜发", "托发", "拖发", "曾高", "增搞", "增稿", "争高", "风胸", "丰凶", "丰兄",
    "蜂胸", "减支", "减指", "检脂", "建脂", "掉称", "掉成", "调秤", "调称", "痛疯", "通风", "同风",
    "便密", "变秘", "湿诊", "时疹", "实疹", "豆豆", "逗逗", "斗斗", "祛豆", "去痘", "取痘", "胃并",
    "卫病", "位病", "近是", "尽视", "进视", "近事", "近似", "白法", "白花", "百发", "百分", "摆发",
    "白珐", "见校", "建校", "剑效", "又效", "地板", "骨者", "古折", "股折", "亏笨", "亏奔",
    "成本", "城本", "诚本", "出厂", "除厂", "甩买", "甩麦", "帅卖", "顶及", "顶级", "定级", "鼎级",
    "万嫩", "万能", "玩能", "晚能", "最强", "醉强", "专佳", "是聊", "转帐", "专帐", "赚账",
    "明心", "名心", "名气", "通款", "童款", "砖家", "教手", "叫兽", "央是",
    "秧是", "扬视", "认整", "人正", "推件", "退荐", "专历", "专例", "砖利",
})

# Characters that look like another (the character hosts write -> the one meant), used only
# inside a vocabulary word. CJK Radicals Supplement forms are not folded by NFKC.
LOOK_ALIKES: dict[str, str] = {
    "冶": "治", "洽": "治", "皿": "血", "疔": "疗", "瘠": "癌", "岩": "癌", "攴": "效", "郊": "效",
    "校": "效", "肌": "肥", "吧": "肥", "咸": "减", "喊": "减", "渡": "瘦", "嫂": "瘦", "艘": "瘦",
    "庒": "压", "厌": "压", "唐": "糖", "塘": "糖", "旨": "脂", "指": "脂", "兔": "免",
    "浼": "免", "役": "疫", "夫": "失", "矢": "失", "民": "眠", "抵": "低", "氏": "低", "弟": "第",
    "项": "顶", "顷": "顶", "汲": "级", "圾": "级", "徽": "微", "薇": "微", 
    "嚞": "最", "撮": "最", "昰": "最",
    "⺁": "厂", "⺅": "人", "⺆": "冂", "⺇": "几", "⻓": "长", "⻔": "门", "⻘": "青", "⻝": "食",
    "⻢": "马", "⻄": "西", "⻅": "见", "⻆": "角", "⻉": "贝", "⻋": "车", "⻜": "飞",
    "⻣": "骨", "⻤": "鬼", "⻥": "鱼", "⻦": "鸟", "⻨": "麦", "⻩": "黄", "⻬": "齐", "⻮": "齿",
    "⻳": "龟", "⺟": "母", "⺠": "民", "⺩": "王", "⺬": "示", "⺮": "竹", "⺼": "月", "⻊": "足",
}
# Placeholders for a hidden character (免某力, 治x疗) and fillers inserted between characters.
MASKS: tuple[str, ...] = ("某", "x", "〇", "*", "×")
# The masks normalization leaves between Chinese characters (it drops * and ×).
_KEPT_MASKS = frozenset("某x〇")
# 某 before these is "some" or a brand's stand-in (某些, 某个, 某家, 某宝, 某果 for Apple), not a mask.
_SOME = frozenset("某一个些种位天款次人家样品专地县国处部厂店市省宝东果音")
FILLERS: tuple[str, ...] = ("什么", "那个", "某", "x", "〇", "*", "×", "_")


@dataclass(frozen=True)
class Evasion:
    """An evasive spelling found in (normalized) text: ``text[start:end]`` stands for ``word``."""

    start: int
    end: int
    word: str
    kinds: tuple[str, ...]  # per reading: "own", "homophone", "pinyin", "look_alike", "mask"


def _toneless(reading: str) -> str:
    decomposed = unicodedata.normalize("NFD", reading)
    kept = "".join(c for c in decomposed if unicodedata.category(c) != "Mn" or c == "\u0308")
    return unicodedata.normalize("NFC", kept).replace("ü", "v")


@lru_cache(maxsize=1)
def _readings() -> dict[str, frozenset[str]]:
    """The toneless main reading of every character pypinyin knows (a rare reading, such as
    他 read tuo, would make ordinary words sound like sensitive ones)."""
    from pypinyin.pinyin_dict import pinyin_dict

    return {chr(code): frozenset({_toneless(value.split(",")[0])}) for code, value in pinyin_dict.items()}


@lru_cache(maxsize=1)
def _homophones() -> dict[str, frozenset[str]]:
    """Toneless syllable -> the basic-plane CJK characters with that reading."""
    index: dict[str, set[str]] = {}
    for char, readings in _readings().items():
        if 0x4E00 <= ord(char) <= 0x9FFF:
            for reading in readings:
                index.setdefault(reading, set()).add(char)
    return {k: frozenset(v) for k, v in index.items()}


@dataclass(frozen=True)
class _Word:
    word: str
    syllables: tuple[str, ...]
    pattern: re.Pattern[str]


def _class(chars: set[str]) -> str:
    return "[" + "".join(re.escape(c) for c in sorted(chars)) + "]"


@lru_cache(maxsize=1)
def _words() -> tuple[_Word, ...]:
    from pypinyin import Style, lazy_pinyin

    homophones = _homophones()
    alike: dict[str, set[str]] = {}
    for shown, meant in LOOK_ALIKES.items():
        if shown != meant:
            alike.setdefault(meant, set()).add(normalize_text(shown).text or shown)
    filler = "(?:" + "|".join(re.escape(f) for f in FILLERS) + ")?"
    mask = "|".join(re.escape(m) for m in MASKS)
    words = []
    for raw in dict.fromkeys(VOCABULARY):
        word = normalize_text(raw).text
        syllables = tuple(_toneless(s) for s in lazy_pinyin(word, style=Style.TONE, errors="default"))
        if len(syllables) != len(word) or not all(is_han(c) for c in word):
            continue
        parts = []
        for i, (char, syllable) in enumerate(zip(word, syllables, strict=True)):
            own = {char} | (homophones.get(syllable, frozenset()) - set(MASKS)) | alike.get(char, set())
            latin = syllable.replace("v", "(?:v|u|ü)")
            if i == 0:
                latin = "(?<![a-z])" + latin
            if i == len(word) - 1:
                latin += "(?![a-z])"
            alternatives = [_class(own), latin] + ([mask] if len(word) >= 3 else [])
            parts.append(f"(?P<p{i}>" + "|".join(alternatives) + ")")
        words.append(_Word(word, syllables, re.compile(filler.join(parts))))
    return tuple(words)


def is_han(char: str) -> bool:
    """A basic-plane CJK ideograph."""
    return 0x4E00 <= ord(char) <= 0x9FFF


@lru_cache(maxsize=1)
def _by_own_char() -> dict[str, tuple[int, ...]]:
    """Character -> the vocabulary words (indices) holding it: a window must keep one."""
    index: dict[str, list[int]] = {}
    for k, entry in enumerate(_words()):
        for char in set(entry.word):
            index.setdefault(char, []).append(k)
    return {c: tuple(v) for c, v in index.items()}


def _kind(shown: str, char: str, syllable: str) -> str:
    if shown == char:
        return "own"
    if shown in MASKS:
        return "mask"
    if len(shown) > 1 or shown.isascii():
        return "pinyin"
    if syllable in _readings().get(shown, frozenset()):
        return "homophone"
    return "look_alike"


def find_evasions(text: str) -> list[Evasion]:
    """Evasive spellings of vocabulary words in normalized ``text``, non-overlapping, leftmost
    and longest first."""
    return _leftmost_longest(_candidates(text))


def _candidates(text: str) -> list[Evasion]:
    """Every evasive spelling of each vocabulary word in ``text``, overlapping ones included."""
    words = _words()
    candidates = set()
    index = _by_own_char()
    for char in set(text):
        candidates.update(index.get(char, ()))
    if any("a" <= c <= "z" for c in text):
        candidates.update(k for k, w in enumerate(words) if len(w.word) >= 2)
    found: list[Evasion] = []
    for k in candidates:
        entry = words[k]
        for match in entry.pattern.finditer(text):
            shown = [match.group(f"p{i}") for i in range(len(entry.word))]
            if "".join(shown) == entry.word and match.end() - match.start() == len(entry.word):
                continue  # the word itself
            kinds = tuple(_kind(s, c, y) for s, c, y in zip(shown, entry.word, entry.syllables, strict=True))
            if not _is_evasion(text[match.start():match.end()], kinds):
                continue
            found.append(Evasion(match.start(), match.end(), entry.word, kinds))
    return found


def _leftmost_longest(found: list[Evasion]) -> list[Evasion]:
    chosen: list[Evasion] = []
    for evasion in sorted(found, key=lambda e: (e.start, -(e.end - e.start))):
        if not chosen or evasion.start >= chosen[-1].end:
            chosen.append(evasion)
    return chosen


def _is_evasion(window: str, kinds: tuple[str, ...]) -> bool:
    if window in COMMON_HOMOPHONE_WORDS:
        return False
    read = sum(k != "mask" for k in kinds)
    if kinds.count("mask") > 1 or read < 2:
        return False
    return "own" in kinds or all(k == "pinyin" for k in kinds)


def resolve_normalized(normalized: NormalizedText) -> NormalizedText:
    """``normalized`` with every evasive spelling replaced by its word; each replaced word's
    first and last characters point at the first and last original characters of the
    evasive spelling (spans over it cover what the viewer saw)."""
    evasions = find_evasions(normalized.text)
    if not evasions:
        return normalized
    text, offsets = [], []
    last = 0
    for evasion in evasions:
        text.append(normalized.text[last:evasion.start])
        offsets.extend(normalized.offsets[last:evasion.start])
        shown = normalized.offsets[evasion.start:evasion.end]
        n, width = len(evasion.word), len(shown) - 1
        text.append(evasion.word)
        offsets.extend(shown[0] if n == 1 else shown[round(k * width / (n - 1))] for k in range(n))
        last = evasion.end
    text.append(normalized.text[last:])
    offsets.extend(normalized.offsets[last:])
    return NormalizedText(normalized.original, "".join(text), tuple(offsets))


def resolve_plain(normalized_text: str) -> str:
    """The resolved text of a normalized text (no offsets): ``resolve_normalized(...).text``."""
    evasions = find_evasions(normalized_text)
    if not evasions:
        return normalized_text
    out, last = [], 0
    for evasion in evasions:
        out.append(normalized_text[last:evasion.start])
        out.append(evasion.word)
        last = evasion.end
    out.append(normalized_text[last:])
    return "".join(out)


def resolve_text(text: str) -> NormalizedText:
    """Normalize ``text`` (``features.text``) and resolve its evasions, offsets kept."""
    return resolve_normalized(normalize_text(text))


@lru_cache(maxsize=1)
def _categories() -> dict[str, str]:
    """Normalized vocabulary word -> its category (the first one listing it)."""
    found: dict[str, str] = {}
    for category, words in VOCABULARY_BY_CATEGORY.items():
        for word in words:
            found.setdefault(normalize_text(word).text, category)
    return found


def word_category(word: str) -> str:
    """The category of a (normalized) vocabulary word: ``find_evasions``' ``Evasion.word``."""
    return _categories()[word]


def masked_evasions(text: str) -> list[Evasion]:
    """The evasions of normalized ``text`` that hide part of the word behind a mask between two
    of its characters (关某节, 免某力, 骨质舒某松, 治x疗): a host who masks a word knows it is
    forbidden, so the mask is evidence of its own. Not a mask: one at the word's first or last
    character (某厂家 is not 出厂价), 某 before a character that follows it as "some" or a brand's
    stand-in (``_SOME``: 不加某些, 有某果; so 专某家 is missed too), and a mask beside a Latin
    letter (iphone x, xl, 3x, guan某节)."""
    masked = [evasion for evasion in _candidates(text)
              if text[evasion.start] not in _KEPT_MASKS and text[evasion.end - 1] not in _KEPT_MASKS
              and _mask_inside(text, evasion)]
    return _leftmost_longest(masked)  # chosen among masked ones: 提高免某 does not hide 免某力


def _mask_inside(text: str, evasion: Evasion) -> bool:
    """Whether a run of one mask (x may repeat; 某某 is "so-and-so") sits strictly inside the
    window between two Chinese characters that are not masks; 某 not before a "some" character."""
    i = evasion.start + 1
    while i < evasion.end - 1:
        char = text[i]
        if char not in _KEPT_MASKS:
            i += 1
            continue
        last = i
        while last + 1 < evasion.end - 1 and text[last + 1] == char:
            last += 1
        before, after = text[i - 1], text[last + 1]
        if (is_han(before) and is_han(after) and before not in _KEPT_MASKS and after not in _KEPT_MASKS
                and (char != "某" or (last == i and after not in _SOME))):
            return True
        i = last + 1
    return False
