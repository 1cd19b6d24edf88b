import pytest

from features.evasion import find_evasions
from features.marketing import MARKETING_CATEGORIES, RULES, lexicon_scores, match_lexicon
from features.text import normalize_text


@pytest.mark.parametrize(
    ("text", "category", "rule_id"),
    [
        ("家人们这个是全网最低价", "absolute_claim", "ABS-001"),
        ("我们是行业第一品牌", "absolute_claim", "ABS-002"),
        ("这个能治疗失眠", "efficacy_claim", "EFF-001"),
        ("吃了降血某压", "efficacy_claim", "EFF-002"),
        ("无效退款的", "guarantee_claim", "GUA-001"),
        ("七天见效", "guarantee_claim", "GUA-002"),
        ("原价九百九十九今天只要九十九", "price_fraud", "PRI-001"),
        ("最后三单了", "false_scarcity", "SCA-001"),
        ("高 仿 包包", "counterfeit", "CNT-001"),
        ("加薇信私聊", "off_platform", "OFF-001"),
        ("央视推荐过", "fake_endorsement", "END-002"),
    ],
)
def test_rules_match_claims_and_their_evasions(text: str, category: str, rule_id: str) -> None:
    matches = match_lexicon(text)
    assert any(m.category == category and m.rule_id == rule_id for m in matches), matches


@pytest.mark.parametrize(
    "text",
    ["第一次来直播间的宝宝", "最近天气冷了", "最后一个问题我回答一下", "不满意可以按原价退款", "最好先看一下尺码",
     "第一个颜色是黑色", "价格以下单页面为准"],
)
def test_hard_negatives_do_not_match(text: str) -> None:
    assert match_lexicon(text) == []


def test_spans_point_at_the_original_characters() -> None:
    text = "宝宝们 加 薇 信 私聊"
    [match] = [m for m in match_lexicon(text) if m.rule_id == "OFF-001"]
    assert text[match.start:match.end] == match.text == "加 薇 信"


def test_rule_ids_are_unique_and_categories_known() -> None:
    assert len({r.rule_id for r in RULES}) == len(RULES)
    assert {r.category for r in RULES} == set(MARKETING_CATEGORIES)


def test_lexicon_scores_distinguish_block_and_review_rules() -> None:
    scores = lexicon_scores(match_lexicon("高仿的，全网最低"))
    assert scores["counterfeit"] == 1.0
    assert scores["absolute_claim"] == 0.5
    assert scores["off_platform"] == 0.0


def test_spoken_efficacy_guarantees_with_refunds_block_but_ordinary_refunds_do_not() -> None:
    for text in ("这个面霜用了斑去不掉全额退款", "吃完没效果全额退", "没效果的话我给你退钱"):
        assert any(m.rule_id == "GUA-004" and m.severity == "block" for m in match_lexicon(text)), text
    for text in ("七天无理由退款", "不满意可以退款", "质量问题包退", "洗了不掉色包退"):
        assert not any(m.category == "guarantee_claim" for m in match_lexicon(text)), text


# -- the patterns of real live-room speech (issue 17) ----------------------------------------
# Sentences written for these tests in the way hosts speak (numbers said aloud, no punctuation);
# the rules' precision on the released real rooms is measured in test_live_asr_rules.py.

@pytest.mark.parametrize(
    ("text", "rule_id"),
    [
        ("家人们日常价格三百七十六今天只要二百九", "PRI-010"),
        ("平常咱们家这一瓶是一百九十八块钱", "PRI-012"),
        ("您去线下至少六七十对不对", "PRI-010"),
        ("不要六百三十一只要五百九十九", "PRI-012"),
        ("这个价格比往常的价格更加划算", "PRI-011"),
        ("马上就要下播了还没拍的抓紧", "SCA-010"),
        ("下播之后就没有这个赠品了", "SCA-010"),
        ("名额有限先到先得", "SCA-011"),
        ("拍完不加单不返场", "SCA-011"),
        ("还有最后五分钟", "SCA-011"),
        ("错过这波就没有这个价了", "SCA-012"),
        ("明天就恢复日常价了", "SCA-012"),
        ("大家拼一下手速", "SCA-013"),
        ("坚持吃三个月一定有效果", "GUA-010"),
        ("这三瓶喝完一定不会让你失望", "GUA-010"),
        ("停了也不会反弹", "GUA-011"),
        ("随时想停随时都能停", "GUA-011"),
        ("没有任何副作用放心吃", "GUA-012"),
        ("今天把价格打到底了", "ABS-010"),
        ("整个平台唯一一家官方店", "ABS-010"),
        ("女明星都在喝这一款", "END-010"),
        ("央视选品非常严格", "END-010"),
        ("很多医生都推荐过", "END-010"),
        ("和北京好几家医院都有合作", "END-011"),
        ("睡不着的就去吃三号链接", "EFF-010"),
        ("软硬骨同补加补钙", "EFF-010"),
        ("帮你赶走黑气黄气", "EFF-010"),
        ("这个吃了能治糖尿病", "EFF-011"),
        ("坚持喝三个月可以治好失眠", "EFF-011"),
        ("这个吃了三天血糖就降下来了", "EFF-012"),
        ("吃上一个月血压就稳住了", "EFF-012"),
        ("百分之百有效", "GUA-013"),
        ("这个效果百分之百", "GUA-013"),
        ("百分百见效的", "GUA-013"),
    ],
)
def test_spoken_sales_talk_rules(text: str, rule_id: str) -> None:
    assert any(m.rule_id == rule_id for m in match_lexicon(text)), [m.rule_id for m in match_lexicon(text)]


@pytest.mark.parametrize(
    "text",
    [
        # coupon arithmetic and plain prices
        "领券减二十到手一百九十九", "拍两件更划算平均一瓶十几块", "今天到手价三瓶一百九十九", "下单满一百二直接立减十块",
        "加了会员再帮你省三十二块钱",
        # first time, had better, enumerations
        "第一次来直播间的宝宝点个关注", "最好饭后半小时再吃", "最好是早上空腹喝", "第一个是红色第二个是蓝色",
        # authenticity and after-sales promises
        "官方旗舰店发货正品保证假一赔四", "七天无理由退换还有运费险", "破损包赔顺丰包邮",
        # describing a problem without a claim; ordinary enthusiasm
        "随着年纪增长身体里的有益菌会越来越少", "这个面霜口碑很好性价比很高",
        # a cut-off for shipping, not scarcity
        "下午五点前下单当天发货",
        # a star mentioned without endorsement
        "主播自己也在用",
        # percentages of content and of buyers' ratings; 治 in ordinary words
        "百分之百有效成分添加", "百分之百纯棉的面料", "好评率百分之百", "有效期到明年三月", "这个三明治可以治饿",
        "可以治理得很干净", "血糖高的人要少吃甜的",
        # questions, denials, conditions, coupons (a fresh reviewer's cases)
        "血糖正常了吗", "你血压稳了吗", "等血糖降下来了再吃这个", "我们不能保证血压降下来", "血糖稳了也别停药",
        "尿酸降下来之前不要吃海鲜", "有姐妹问吃了血糖降下来了吗", "这款不能治糖尿病", "它不可以治高血压请遵医嘱",
        "我们从来不说能治便秘", "不要相信能治糖尿病的说法", "能治近视吗不能", "这个优惠券百分之百有效哦",
        "百分之百有效的发票", "我们不敢说百分之百有效", "效果百分之百吗不敢保证",
    ],
)
def test_real_speech_hard_negatives_trip_no_rule(text: str) -> None:
    assert match_lexicon(text) == [], [(m.rule_id, m.text) for m in match_lexicon(text)]


@pytest.mark.parametrize(
    "text",
    ["加微信 abc123", "加微信 Lily2024", "加 微 信 wxid_k9f2", "加V：abc1234", "vx: lily_2024 私聊", "微信号 jenny0808",
     "wei信 shop_88", "扣扣 12345678", "加qq号 35791113", "whatsapp: anna_2025", "telegram tg_store99",
     "联系v sale2024"],
)
def test_contact_handles_in_latin_letters_are_caught(text: str) -> None:
    """Tried as an attacker would: a handle in Latin letters after a contact word (issue 17)."""
    assert any(m.category == "off_platform" and m.severity == "block" for m in match_lexicon(text)), text


@pytest.mark.parametrize("text", ["加vip会员更优惠", "vivo x6 手机壳", "型号 vb50mg 胶囊", "华为 vp9039a 会议终端"])
def test_model_numbers_and_vip_are_not_contact_handles(text: str) -> None:
    assert not any(m.category == "off_platform" for m in match_lexicon(text)), text


@pytest.mark.parametrize(
    "text",
    ["LV家新款老花手袋 原版皮 顶级复刻", "高版本 纯原 代购级", "莆田aj 公司级", "一比一 原单", "GAO FANG 包包", "香奈儿 1:1 口红"],
)
def test_counterfeit_jargon_is_caught(text: str) -> None:
    assert any(m.category == "counterfeit" for m in match_lexicon(text)), text


def test_jade_a_grade_is_not_counterfeit() -> None:
    """In the jade trade A货 means natural, untreated jade: the context cancels the rule."""
    assert not any(m.category == "counterfeit" for m in match_lexicon("翡翠吊坠a货豆子")), "jade"
    assert any(m.category == "counterfeit" for m in match_lexicon("a货包包 支持验货"))


@pytest.mark.parametrize(
    ("text", "rule_id"),
    [("复刻AJ1芝加哥 男鞋", "CNT-008"), ("ZP品质 斜挎包", "CNT-008"), ("PK版本 AJ4 黑猫", "CNT-008"),
     ("专柜品质 口红", "CNT-008"), ("LJR版 倒钩", "CNT-008"), ("海马 N厂 V3版", "CNT-008"),
     ("驴家 斜挎包", "CNT-007"), ("香奶奶新款链条包", "CNT-007"), ("欧米茄海马 clean厂 8800机芯", "CNT-008"),
     ("华强北五代耳机 降噪", "CNT-010"), ("华强北顶配版 pro2 降噪", "CNT-010"), ("无线耳机 pro2 定位改名 弹窗", "CNT-010")],
)
def test_replica_trade_shorthand_is_caught(text: str, rule_id: str) -> None:
    """CNT-008 and the brand nicknames of CNT-007: the trade's own shorthand in a title."""
    assert rule_id in {m.rule_id for m in match_lexicon(text)}, text


def test_a_brand_led_by_a_numeral_keeps_the_one_to_one_before_it() -> None:
    assert "CNT-004" in {m.rule_id for m in match_lexicon("一比一百达翡丽")}


@pytest.mark.parametrize(
    "text",
    ["air jordan 2005复刻 aj4", "二零零五年复刻", "aj1 85复刻", "任天堂 官方复刻 游戏机", "水洗工艺处理后复刻出自然落色效果",
     "复刻老味道", "oem厂 代工 纯棉t恤", "led厂价直销", "专柜正品 羽绒服", "小香风 外套 女",
     "深圳华强北电子市场 柜台出租", "华强北路 旺铺", "steel厂价直供 不锈钢管", "我在华强北上班", "华强北实体店 正品行货 支持验货",
     "华强北赛格广场 店面", "微信定位改名教程", "店铺定位改名了", "honda厂 原装配件", "steel厂 不锈钢管", "indie厂牌 新专辑",
     "dj厂牌 巡演"],
)
def test_official_reissues_and_ordinary_factory_talk_are_not_replicas(text: str) -> None:
    assert not any(m.category == "counterfeit" for m in match_lexicon(text)), text


@pytest.mark.parametrize(("text", "rule_id", "said"), [
    ("吃了以后关某节不疼了", "EFF-013", "关某节"),
    ("家人们 免某力也上来了", "EFF-013", "免某力"),
    ("中老年人骨质舒某松的都可以吃", "EFF-013", "骨质舒某松"),  # 骨质疏松 with a homophone (舒) and a mask
    ("主播马上下某播了", "SCA-014", "下某播"),
    ("这个是高x仿的", "CNT-009", "高x仿"),
    ("能提高免某力", "EFF-013", "免某力"),  # 提高免某 (a mask at its edge) does not hide 免某力
    ("今天全网最某价", "ABS-012", "最某价"),
])
def test_a_sensitive_word_said_with_a_mask_is_reviewed_under_its_category(text: str, rule_id: str, said: str) -> None:
    found = [m for m in match_lexicon(text) if m.rule_id == rule_id]
    assert [(m.text, m.severity) for m in found] == [(said, "review")]
    assert text[found[0].start:found[0].end] == said


@pytest.mark.parametrize("text", [
    "虽然没有某果屏幕好", "N年前某县的招待所",  # the two buyers' reviews of ../shared/data an earlier guard let through
    "我们不加某些添加剂", "某厂家生产的", "起到某作用",  # 某 as "some", or at a word's edge
    "保证有XP驱动盘", "iphone x效果很好", "这款特xiao好用",  # a Latin x in a word, or not between two Chinese characters
])
def test_some_and_latin_x_where_the_resolver_reads_a_word_are_no_masked_word(text: str) -> None:
    masked = {rule.rule_id for rule in RULES if rule.masked_word}
    assert find_evasions(normalize_text(text).text)  # a word is read there: the guard is what refuses it
    assert not [m for m in match_lexicon(text) if m.rule_id in masked]
