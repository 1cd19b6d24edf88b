"""False-marketing categories and the project's own lexicon rules.

Rules were written for this project from the statutes in ``../shared/data/laws`` and the
DESIGN taxonomy:

- Advertising Law art. 9(3) (national-level, highest, best), art. 4 and 28 (false ads),
  art. 16-18 (medical and health-food efficacy, guarantees of effect), art. 38 (endorsers);
- Price-marking and Price-fraud Provisions art. 19 (invented original prices, fake
  discounts, false clearance), art. 21 (false scarcity is deceptive pricing conduct);
- Anti-Unfair Competition Law art. 6 (confusion with others' goods) and art. 8 (false
  commercial publicity, invented honours);
- E-Commerce Law art. 17 (truthful information) and the platform's off-platform trading rule;
- Cosmetics Supervision Regulation art. 43 (no medical efficacy claims for cosmetics).

Every rule is a regular expression over *normalized* text (``features.text``) with context
conditions written as look-arounds, so hard negatives such as 第一次, 最近, 最后一个问题 or a
refund at the 原价 do not match. Matches carry the category, the rule id, the severity
(``block``: a blocking rule raises the segment to block; ``review``: raises to review) and
the span in the original text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from features.first_chars import with_first_character_check
from features.text import NormalizedText, normalize_text

MARKETING_CATEGORIES: tuple[str, ...] = (
    "absolute_claim", "efficacy_claim", "guarantee_claim", "price_fraud", "false_scarcity",
    "counterfeit", "off_platform", "fake_endorsement",
)
Severity = Literal["block", "review"]


@dataclass(frozen=True)
class LexiconRule:
    """One rule: an id, a category, a pattern over normalized text and a severity."""

    rule_id: str
    category: str
    pattern: str
    severity: Severity
    source: str


# Hard-negative contexts reused by several rules.
_NOT_TIME = r"(?!次|个|天|时间|步|眼|批|期|轮|名|位|季|集|场|口|手|回)"

RULES: tuple[LexiconRule, ...] = (
    # absolute_claim: Advertising Law art. 9(3)
    LexiconRule("ABS-001", "absolute_claim", r"全网(最低|最便宜|最优惠|第1|第一|独家)", "review", "广告法 第九条"),
    LexiconRule("ABS-002", "absolute_claim", r"(全国|全球|世界|行业|全网)?(第一品牌|第1品牌|销量第一|销量第1|排名第一|排名第1)", "review", "广告法 第九条"),
    LexiconRule("ABS-003", "absolute_claim", r"国家级(?!非遗|保护区|开发区|高新区|贫困县)", "review", "广告法 第九条"),
    LexiconRule("ABS-004", "absolute_claim", r"(顶级|极品|最高级|最佳|最好(?!是|不要|先|别|还是|能|的朋友|去|用完)|最强|最先进|史上最|万能|独一无二|绝无仅有|100%(有效|纯|正品|安全)|百分百有效|零风险|最有效)", "review", "广告法 第九条"),
    LexiconRule("ABS-005", "absolute_claim", r"第(一|1)" + _NOT_TIME + r"(?=品牌|名|选择|大牌|好用)", "review", "广告法 第九条"),
    LexiconRule("ABS-006", "absolute_claim", r"(最低价|价格最低|最便宜)(?!以|请以|为准)", "review", "广告法 第九条"),
    # efficacy_claim: Advertising Law art. 16-18, Cosmetics Regulation art. 43
    LexiconRule("EFF-001", "efficacy_claim", r"(治疗|治好|根治|治愈|包治|药到病除|专治)", "block", "广告法 第十七条"),
    LexiconRule("EFF-002", "efficacy_claim", r"(降血压|降血糖|降血脂|降三高|抗癌|防癌|抗肿瘤|消炎|杀菌消炎|排毒养颜|溶脂)", "block", "广告法 第十七条"),
    LexiconRule("EFF-003", "efficacy_claim", r"(祛斑|美白淡斑|去皱|抗衰老|生发|防脱发|增高|丰胸|减肥|瘦身|燃脂)(?!的方法咨询|建议咨询医生)", "review", "化妆品监督管理条例 第四十三条"),
    LexiconRule("EFF-004", "efficacy_claim", r"(增强免疫力|提高免疫力|改善睡眠|治失眠|失眠克星|补肾|壮阳|护肝|明目|延年益寿)", "review", "广告法 第十八条"),
    # guarantee_claim: Advertising Law art. 16(2), 18(2)
    LexiconRule("GUA-001", "guarantee_claim", r"(无效退款|无效全额退|没效果退|不见效退|无效包退|保证有效|保证治愈|保证见效|保证瘦)", "block", "广告法 第十六条"),
    LexiconRule("GUA-004", "guarantee_claim", r"(没效果|没有效果|无效|不见效|不管用|去不掉|瘦不下来|长不出来)(的话)?(就|我)?(给你)?(全额|包)?退(款|钱|全款)?", "block", "广告法 第十六条"),
    LexiconRule("GUA-002", "guarantee_claim", r"\d+天(见效|起效|瘦|美白|白|治好|断根)", "block", "广告法 第十六条"),
    LexiconRule("GUA-003", "guarantee_claim", r"(立竿见影|一次见效|用完就见效|马上见效|当天见效|永不反弹|不反弹|零副作用|无副作用)", "review", "广告法 第十六条"),
    # price_fraud: Price-fraud Provisions art. 19
    LexiconRule("PRI-001", "price_fraud", r"(?<!按)(?<!以)原价\d+(元|块)?(现在|今天|今晚|直播间)?(只要|仅需|仅要|秒杀|只卖|才)", "block", "明码标价和禁止价格欺诈规定 第十九条"),
    LexiconRule("PRI-002", "price_fraud", r"(出厂价|成本价|亏本(价|卖|清仓|甩卖)|赔本(卖|清仓)|跳楼价|血亏|全场1折)", "review", "明码标价和禁止价格欺诈规定 第十九条"),
    LexiconRule("PRI-003", "price_fraud", r"(专柜|市场|官网)价\d+(元|块)?(这里|今天|现在)?(只要|仅需|才)", "review", "明码标价和禁止价格欺诈规定 第十九条"),
    LexiconRule("PRI-004", "price_fraud", r"(倒闭|关店|清仓)(大)?甩卖", "review", "明码标价和禁止价格欺诈规定 第十九条"),
    # false_scarcity: deceptive urgency (Price-fraud Provisions art. 21)
    LexiconRule("SCA-001", "false_scarcity", r"最后\d+(单|件|个|份|套|瓶|盒)(?!问题|人|位|环节|链接的?问题)", "review", "明码标价和禁止价格欺诈规定 第二十一条"),
    LexiconRule("SCA-002", "false_scarcity", r"(马上下架|即将下架|立刻下架|错过(再|就)?等(1|一)年|仅此(1|一)次|限时(1|一)次|最后(1|一)波|库存(只剩|仅剩)|手慢无|抢完就没)", "review", "明码标价和禁止价格欺诈规定 第二十一条"),
    LexiconRule("SCA-003", "false_scarcity", r"只剩(最后)?\d+(单|件|个|份|套|瓶|盒)", "review", "明码标价和禁止价格欺诈规定 第二十一条"),
    # counterfeit: Anti-Unfair Competition Law art. 6
    LexiconRule("CNT-001", "counterfeit", r"(高仿|a货|超a|精仿|仿品|复刻版|1:1复刻|1比1复刻|1:1)", "block", "反不正当竞争法 第六条"),
    LexiconRule("CNT-002", "counterfeit", r"(原单|尾单|外贸原单|大牌同厂|同厂同料|工厂直出大牌|代工厂出的?|原厂原标|专柜同款)", "review", "反不正当竞争法 第六条"),
    LexiconRule("CNT-003", "counterfeit", r"(没有|不带|撕了?|去了?)(吊牌|标|logo)(的)?(大牌|正品)", "review", "反不正当竞争法 第六条"),
    # off_platform: E-Commerce Law art. 17 and platform rules
    LexiconRule("OFF-001", "off_platform", r"(加|添加|联系|找|搜)(我)?(的)?(微信|qq|whatsapp|telegram|tg|v)(?![a-z])", "block", "电子商务法 第十七条 / 平台规则"),
    LexiconRule("OFF-002", "off_platform", r"(私聊我?|私下)(下单|交易|转账|发货|付款|联系)|私聊我", "review", "电子商务法 第十七条 / 平台规则"),
    LexiconRule("OFF-003", "off_platform", r"(微信|qq|vx)(号)?[:是]?\d{5,}|(?<!\d)1[3-9]\d{9}(?!\d)", "block", "电子商务法 第十七条 / 平台规则"),
    LexiconRule("OFF-004", "off_platform", r"(转账|扫码)(付款|给我|支付)|不走平台|线下交易|绕过平台", "block", "电子商务法 第十七条 / 平台规则"),
    # fake_endorsement: Advertising Law art. 38, Anti-Unfair Competition Law art. 8
    LexiconRule("END-001", "fake_endorsement", r"(国家认证|国家推荐|国家指定|国家专利产品|卫健委推荐|药监局认证)", "review", "广告法 第二十八条"),
    LexiconRule("END-002", "fake_endorsement", r"(专家推荐|医生推荐|院士推荐|教授推荐|权威推荐|央视推荐|央视上榜|cctv推荐|春晚同款)", "review", "广告法 第三十八条"),
    LexiconRule("END-003", "fake_endorsement", r"(明星同款|某明星同款|网红都在用|明星都在用|总统同款|国宴专供|特供)", "review", "反不正当竞争法 第八条"),
)


@dataclass(frozen=True)
class LexiconMatch:
    """A rule that matched: category, rule, severity and the span in the original text."""

    category: str
    rule_id: str
    severity: Severity
    start: int
    end: int
    text: str


@lru_cache(maxsize=1)
def _compiled() -> tuple[tuple[LexiconRule, re.Pattern[str]], ...]:
    return tuple((rule, re.compile(with_first_character_check(rule.pattern))) for rule in RULES)


@lru_cache(maxsize=1)
def _any_rule() -> re.Pattern[str]:
    return re.compile(with_first_character_check("|".join(f"(?:{rule.pattern})" for rule in RULES)))


def lexicon_may_match(normalized_text: str) -> bool:
    """False only when no rule matches ``normalized_text`` (one combined search; the text's
    offset map is then never needed for lexicon spans)."""
    return _any_rule().search(normalized_text) is not None


def match_lexicon(text: str | NormalizedText) -> list[LexiconMatch]:
    """Every rule match in ``text`` (normalized here unless already normalized), with spans
    pointing at the original characters."""
    normalized = text if isinstance(text, NormalizedText) else normalize_text(text)
    matches = []
    for rule, pattern in _compiled():
        for found in pattern.finditer(normalized.text):
            if found.end() == found.start():
                continue
            start, end = normalized.original_span(found.start(), found.end())
            matches.append(LexiconMatch(rule.category, rule.rule_id, rule.severity, start, end,
                                        normalized.original[start:end]))
    return sorted(matches, key=lambda m: (m.start, m.category))


def lexicon_scores(matches: list[LexiconMatch]) -> dict[str, float]:
    """The lexicon baseline's score per category: 1 for a blocking-rule hit, 0.5 for a
    review-rule hit, 0 otherwise."""
    scores = dict.fromkeys(MARKETING_CATEGORIES, 0.0)
    for match in matches:
        scores[match.category] = max(scores[match.category], 1.0 if match.severity == "block" else 0.5)
    return scores
