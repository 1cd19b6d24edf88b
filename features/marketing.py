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
refund at the 原价 do not match; the masked-word rules (``LexiconRule.masked_word``) read a
sensitive word said with a mask inside it (关某节) through ``features.evasion.masked_evasions``
(their pattern only names the masks; ``_MASK_BETWEEN_HAN`` is their pre-check). Matches carry
the category, the rule id, the severity (``block``: a blocking rule raises the segment to
block; ``review``: raises to review) and the span in the original text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from features.evasion import masked_evasions, word_category
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
    unless: str | None = None  # a context that, found anywhere in the text, cancels the rule (翡翠 for a货)
    # Matched where a sensitive word of the rule's category is said masked (关某节, 免某力;
    # ``features.evasion.masked_evasions``); ``pattern`` then only names the masks.
    masked_word: bool = False


# Hard-negative contexts reused by several rules.
_JADE = r"翡翠|玉石|和田玉|缅甸玉|冰种|糯种"  # in the jade trade "a货" means natural, untreated jade
_NOT_TIME = r"(?!次|个|天|时间|步|眼|批|期|轮|名|位|季|集|场|口|手|回)"
# The masks a masked word holds (features.evasion.masked_evasions), and the pre-check of the
# masked-word rules: a mask between two Chinese characters.
_MASKS = r"某|〇|x"
# Characters of the raw text that may become a mask once normalized (a cheap check before it).
MASK_CHARACTERS: frozenset[str] = frozenset("某〇xXｘＸ")
_MASK_BETWEEN_HAN = re.compile(r"(?<=[\u4e00-\u9fff])(?:某|〇|x+)(?=[\u4e00-\u9fff])")

RULES: tuple[LexiconRule, ...] = (
    # absolute_claim: Advertising Law art. 9(3)
    LexiconRule("ABS-001", "absolute_claim", r"全网(最低|最便宜|最优惠|第1|第一|独家)", "review", "广告法 第九条"),
    LexiconRule("ABS-002", "absolute_claim", r"(全国|全球|世界|行业|全网)?(第一品牌|第1品牌|销量第一|销量第1|排名第一|排名第1)", "review", "广告法 第九条"),
    LexiconRule("ABS-003", "absolute_claim", r"国家级(?!非遗|保护区|开发区|高新区|贫困县)", "review", "广告法 第九条"),
    LexiconRule("ABS-004", "absolute_claim", r"(顶级|极品|最高级|最佳|最好(?=的(?!朋友|办法|方式|时间)|用|看|喝的|吃的|不过)|(?:(?<=是)|(?<=效果)|(?<=质量)|(?<=品质)|(?<=口感)|(?<=性价比))最好|最强|最先进|史上最|万能|独一无二|绝无仅有|100%(有效|纯|正品|安全)|百分百有效|零风险|最有效)", "review", "广告法 第九条"),
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
    LexiconRule("CNT-001", "counterfeit", r"(高仿|a货|超a|精仿|仿品|复刻版|1:1复刻|1比1复刻|1:1)", "block", "反不正当竞争法 第六条",
                unless=_JADE),
    LexiconRule("CNT-004", "counterfeit", r"(a货|超a货)|1比1|一比一|(顶级|高版本|最高版本|纯原|公司级|代购级|专柜级|档口|原版皮|原厂皮)(版本|货|品质|复刻|高仿)?|莆田(鞋|货|工厂|aj|耐克)|高版本|对版|gao ?fang|jing ?fang|fu ?ke|yuan ?dan|chun ?yuan|(?<![a-z])([a-z]|lv|ch|gg)家(的)?(新款|经典|包|鞋|衣|同款|大牌|走秀|老花|爆款)", "review", "反不正当竞争法 第六条",
                unless=_JADE),
    LexiconRule("CNT-002", "counterfeit", r"(原单|尾单|外贸原单|大牌同厂|同厂同料|工厂直出大牌|代工厂出的?|原厂原标|专柜同款)", "review", "反不正当竞争法 第六条"),
    LexiconRule("CNT-003", "counterfeit", r"(没有|不带|撕了?|去了?)(吊牌|标|logo)(的)?(大牌|正品)", "review", "反不正当竞争法 第六条"),
    # Replica sellers' own talk: likeness to the genuine article, factory and mould talk,
    # grades, brand nicknames (written for this project; buyers' 山寨 / 冒牌 complaints are not it).
    LexiconRule("CNT-005", "counterfeit", r"(和|跟|与|同)(正品|专柜|原版|正版|官方|真品)(的)?(货)?(一样|一致|无异|无差|没区别|没有区别|无区别|一模一样|相同|同款同料|同料)|(媲美|堪比|直逼|等同于?|对标|不输)(正品|专柜|原版|正版|真品)|(正品|原版|正版|真品)(级|级别|级的)(品质|质量|做工|版本|货)?|细节(对比|比对)(正品|专柜|原版)|(正品|原版|专柜)(对比|比对)(细节|图|无差)|(肉眼|外行|一般人|普通人|路人|懂行的)(都|也)?(看不出|分辨不出|分不出|认不出|辨别不出)|(区别|区分)(于)?(市场|市面)(上)?(的)?(通货|普通版|垃圾版|低端货|货)|(市场|市面)通货|(可|能|支持|保|轻松)过(验|鉴定|得物|毒|专柜)|(专柜|得物|毒)(可|能|随便|随意)(验|过|鉴定)", "review", "反不正当竞争法 第六条"),
    LexiconRule("CNT-006", "counterfeit", r"原厂(皮料|五金|面料|开模|代工|流出|尾货|渠道|出货)|(原版|原鞋|原包|正品)(开模|皮料|五金|面料|鞋型|包型|楦型|同料|原料|开版)|私模|正确(鞋型|版型|包型|楦型|细节|版本)|大牌(原厂|工厂|代工厂?)|(工厂|厂家|内部|专柜)(流出|渠道货)|渠道货|(复刻|仿)(版|款|品|货|鞋|包|表)|完美(复刻|还原)|还原度(高达|达到|有)?\d|(顶级|一比一|1比1)(版本|品质|做工|还原|工艺)", "review", "反不正当竞争法 第六条",
                unless=_JADE),
    LexiconRule("CNT-007", "counterfeit", r"(驴|香|迪|古驰|巴黎|普拉达|爱马|芬迪|巴宝莉|gg|ch|lv)家(的)?(新款|经典|包|鞋|衣|同款|大牌|走秀|老花|爆款|围巾|手表|项链|耳环|丝巾|腰带|钱包|斜挎|手提|双肩|卡包|水桶|托特|腋下|皮带|手镯|耳钉)|香奶奶|驴牌", "review", "反不正当竞争法 第六条"),
    # The replica trade's own shorthand (written for this project): 复刻 on its own (not a
    # brand's dated or official re-release, nor a taste or a childhood "recreated"), 专柜品质,
    # 正品 as "zp", factories named by letters (n厂, zf厂: never oem / odm, nor 厂价 / 厂直)
    # and sneaker batch names before 版 or 纯原.
    LexiconRule("CNT-008", "counterfeit", r"(?<!官方)(?<!\d{2})(?<!\d{2}年)(?<!\d{2}版)复刻(?!出|游戏|版游戏|经典游戏|老味道|味道|儿时|童年|记忆|经典味)|专柜(同)?品质|(?<![a-z0-9])zp(品质|级|对比|一致|一样|开模|原料|做工|同款)|(对比|比对|和|跟|同)zp(?![a-z0-9])|(?<![a-z0-9])(?!oem|odm)(?:[a-z]{1,4}\d?|clean)厂(?!家|商|区|址|长|房|价|直|里|内|外|子|牌)|(?<![a-z])(pk|ljr|og|h12|gx|lw|vt|god)(版本|版|纯原|代工)", "review", "反不正当竞争法 第六条",
                unless=_JADE),
    # Copies of branded electronics (written for this project): the Shenzhen market named beside the
    # gadget it copies (华强北五代耳机, 华强北顶配版; not the market as a place), or the copied earphones'
    # rename-and-locate feature (定位改名) said of earphones (not a map's or a shop's).
    LexiconRule("CNT-010", "counterfeit", r"华强北[^，。！？,.!?]{0,6}?(耳机|airpods|pro\d?|[一二三四五六]代|顶配|洛达|悦虎|手表|版本?)|(耳机|airpods|pro\d?|蓝牙)[^，。！？,.!?]{0,12}?(定位|弹窗)改名|(定位|弹窗)改名[^，。！？,.!?]{0,12}?(耳机|airpods|蓝牙)", "review",
                "反不正当竞争法 第六条"),
    # off_platform: E-Commerce Law art. 17 and platform rules
    LexiconRule("OFF-001", "off_platform", r"(加|添加|联系|找|搜)(我)?(的)?(微信|qq|whatsapp|telegram|tg|v(?![a-z]{1,3}\b)(?!ip))", "block", "电子商务法 第十七条 / 平台规则"),
    LexiconRule("OFF-002", "off_platform", r"(私聊我?|私下)(下单|交易|转账|发货|付款|联系)|私聊我", "review", "电子商务法 第十七条 / 平台规则"),
    LexiconRule("OFF-003", "off_platform", r"(微信|qq|vx)(号)?[:是]?\d{5,}|(?<!\d)1[3-9]\d{9}(?!\d)", "block", "电子商务法 第十七条 / 平台规则"),
    LexiconRule("OFF-005", "off_platform", r"((微信|qq|wechat|telegram|whatsapp|小微|小绿)(号)?|(加|添加|联系|\+)v)(是|为)?[:：]? ?(?=[a-z0-9_\-]*\d)[a-z][a-z0-9_\-]{3,}|wxid_[a-z0-9_]{2,}", "block", "电子商务法 第十七条 / 平台规则"),
    LexiconRule("OFF-004", "off_platform", r"(转账|扫码)(付款|给我|支付)|不走平台|线下交易|绕过平台", "block", "电子商务法 第十七条 / 平台规则"),
    # The patterns of real live-room speech (written from the statutes above and the released
    # real rooms of ../shared/data/live_asr; precision per rule on the labelled rooms is in the card).
    # price_fraud: a reference price said aloud (daily / usual / offline / store price with a
    # number), then today's lower price; savings against such an anchor.
    LexiconRule("PRI-010", "price_fraud", r"(日常|平时|平常|日播|往常|原本|原来|以前|之前|专柜|线下|外面|市面上|市场|门店|实体店|挂车)(的)?(1个)?(价格?|售价|都是|都|是|要|卖|1[瓶盒罐支件套袋])?(都是|就是|是|都)?(卖|要|价|售价)?(到|了|至少|起码|得|得要)?(个|是)?\d{2,}", "review", "明码标价和禁止价格欺诈规定 第十九条"),
    LexiconRule("PRI-011", "price_fraud", r"(直降|狂降)\d{2,}|破价|打骨折|骨折价|比(往常|平时|平常|日常|以往)(的)?(1个)?价格?", "review", "明码标价和禁止价格欺诈规定 第十九条"),
    # false_scarcity: the show is ending, stock or places are running out, the price ends today.
    LexiconRule("SCA-010", "false_scarcity", r"(马上|就要|快要?|准备|等(1下|一下|会儿?)|即将|提前|要)(就)?(要)?下播|下播(之前|前|之后|以后|后)|(主播|我们)(就)?(要)?下播了", "review", "明码标价和禁止价格欺诈规定 第二十一条"),
    LexiconRule("SCA-011", "false_scarcity", r"(名额|数量|库存|现货)(有限|不多|只有|仅剩|就这么)|先到先得|限时限量|拍完(就)?(没有?了|不加|结束|下架)|不加单|不返场|补不了|就这么几单|抢完(就)?没|(最后|只剩|还剩|还有)(的)?(1个)?\d{1,3}(单|个名额|分钟)", "review", "明码标价和禁止价格欺诈规定 第二十一条"),
    LexiconRule("SCA-012", "false_scarcity", r"错过(了)?(这波|这1波|此次|今天|这次)?(就|再|真的)?(没有|不再|不会再有|没这个|不是这个|要等)|(只有|仅限)今(天|晚)|明天(就)?(没有|恢复|不是)这?个?价|恢复(日常|原价)|(不可能|不会)(每天|一直)(都)?(做|有)这个?价", "review", "明码标价和禁止价格欺诈规定 第二十一条"),
    # guarantee_claim: a result promised as certain, no side effect or relapse promised.
    LexiconRule("GUA-010", "guarantee_claim", r"(一定|肯定|绝对|保证)(是|会)?(有效果|有效|管用|见效|能看到效果|不会让你失望|不会失望)|不会让你失望|(没有?|无)效果(的话)?(我)?(就)?(不会拿给你|不让你吃|直接?回来找我|不要钱)|(有效果|见效)(就)?留", "review", "广告法 第十六条"),
    LexiconRule("GUA-011", "guarantee_claim", r"(不会|不)(反弹|弹回来)|(没有|无|不会有)(任何)?(副作用|依赖)|(不用|不需要|不必)(去)?担心[^。]{0,8}(副作用|反弹)|随时(想)?(停|断)(随时)?(都)?(能|可以)", "review", "广告法 第十六条"),
    # absolute_claim: lowest price, firsts and onlies said aloud.
    LexiconRule("ABS-010", "absolute_claim", r"(价格)?打到底|地板价|天花板|吊打|遥遥领先|首创|唯1(1)?家|独创|(行业|国内|全国|全球)(领先|标杆|之最)|先河|销量冠军", "review", "广告法 第九条"),
    # fake_endorsement: stars, doctors, the state broadcaster or experts said to use or endorse it.
    LexiconRule("END-010", "fake_endorsement", r"(女|男)?明星[^。，]{0,8}(同款|都在|也在|都有在|在用|在喝|在吃|推荐|自用|爱用)|(网红|达人|大v|博主|医生|专家|教授|白大褂)[^。，]{0,6}(都在用|都有在用|在用|都推荐|推荐过?)|央视(推荐|上榜|选品|认证|合作|报道)|(在|上过?)央视(打过?)?广告|获奖无数|拿奖拿到手软", "review", "广告法 第三十八条"),
    LexiconRule("PRI-012", "price_fraud", r"(平时|平常|日常|正常|之前|以前|原来|往常)[^。？！]{0,10}?((卖到?|售价|价格?是?|要)(是|要|了|到)?\d{2,}|是\d{2,}(块|元|米))|不要\d{2,}(块|元)?只要\d+|(至少|起码)(得|都)?(要|卖|得要|算你)(个|到)?\d{2,}|从来没有?低于过?\d{2,}", "review", "明码标价和禁止价格欺诈规定 第十九条"),
    LexiconRule("SCA-013", "false_scarcity", r"拼(一下|1下)?手速|拼网速|拍空抢完|(直播)?时间(也)?不(是)?(很)?多了|最后1场", "review", "明码标价和禁止价格欺诈规定 第二十一条"),
    LexiconRule("GUA-012", "guarantee_claim", r"(没有|不会有|无)(任何)?(的)?(坏作用|副作用|依赖)|不会(让你)?(拉肚子?|上瘾|依赖|反弹)|周期(没有?|无)(效果)?(的话)?(直接)?回来找我|更快更猛", "review", "广告法 第十六条"),
    # Certainty of effect said as a percentage (Advertising Law art. 16(2)); 有效成分 / 有效期 are
    # ingredients and shelf life, not effect; a question, a denial, a coupon or an invoice is no
    # claim. Review: no real sentence measures it yet.
    LexiconRule("GUA-013", "guarantee_claim", r"(?<!不敢说)(?<!不能说)(?<!不是)(百分之百|百分百|百分之一百|100%)(的)?(有效(?!成分|期|物质|含量|活性)|有效果|管用|见效|能看到效果)(?!吗|呢)|效果(是|绝对|肯定)?(百分之百|百分百|百分之一百|100%)(?!的?(好评|满意|纯|棉)|吗|呢)", "review", "广告法 第十六条",
                unless=r"吗|优惠券|券|发票|红包|不敢(说|保证)|不能保证|不保证|保证不了"),
    # A named disease a non-drug is said to cure (Advertising Law art. 17); 治 alone is not enough
    # (政治, 治理, 三明治): a modal or 专/包 before it and a disease after it; not denied (不能治) or asked.
    LexiconRule("EFF-011", "efficacy_claim", r"(?<![不没别])(能|可以|可|专|包|帮你|帮您|就能|都能)治(好|愈)?了?(糖尿病|高血压|高血脂|三高|失眠|便秘|关节炎|痛风|胃病|胃炎|癌症?|肿瘤|湿疹|脱发|近视|前列腺|妇科病?|风湿|颈椎病?|腰椎病?|鼻炎|咽炎|哮喘|痔疮|皮肤病|牛皮癣|白癜风|脂肪肝|肝病|肾病|心脏病|冠心病|脑梗|中风|骨质疏松)(?!吗|呢)", "block", "广告法 第十七条",
                unless=r"吗|不要相信|别相信|别信|说法|从来不|遵医嘱|不敢说|谣言|骗"),
    # The same said as a result: a blood measure brought down or steadied (降血糖 told as 血糖降下来了);
    # not a question, a condition (等血糖降下来了再吃) or advice to keep the medicine. Review until measured.
    LexiconRule("EFF-012", "efficacy_claim", r"(?<!等)(血糖|血压|血脂|尿酸|胆固醇)(值)?(就|都|也|马上|慢慢)?(降|稳|正常|平稳)(下来|了|住|多了)(?!了?(之前|以前|再|吗|呢|没))", "review", "广告法 第十七条",
                unless=r"吗|不能保证|不保证|不敢保证|保证不了|别停药|不要停药|遵医嘱"),
    # A sensitive word of the category said with a mask inside it (关某节 for 关节, 免某力 for 免疫力,
    # 下某播): a host who masks a word knows it is forbidden. Review: the claim is still to be read.
    LexiconRule("EFF-013", "efficacy_claim", _MASKS, "review", "广告法 第十七条", masked_word=True),
    LexiconRule("GUA-014", "guarantee_claim", _MASKS, "review", "广告法 第十六条", masked_word=True),
    LexiconRule("ABS-012", "absolute_claim", _MASKS, "review", "广告法 第九条", masked_word=True),
    LexiconRule("PRI-013", "price_fraud", _MASKS, "review", "明码标价和禁止价格欺诈规定 第十九条", masked_word=True),
    LexiconRule("SCA-014", "false_scarcity", _MASKS, "review", "明码标价和禁止价格欺诈规定 第二十一条", masked_word=True),
    LexiconRule("CNT-009", "counterfeit", _MASKS, "review", "反不正当竞争法 第六条", masked_word=True),
    LexiconRule("OFF-006", "off_platform", _MASKS, "review", "电子商务法 第十七条 / 平台规则", masked_word=True),
    LexiconRule("END-012", "fake_endorsement", _MASKS, "review", "广告法 第三十八条", masked_word=True),
    LexiconRule("ABS-011", "absolute_claim", r"全年最低|发挥到(顶峰|极致)|第1个提出|(行业|品类)(的)?老大|霸榜|唯独(1)?款|独1款|独家(专利|配方)", "review", "广告法 第九条"),
    LexiconRule("END-011", "fake_endorsement", r"(医院|医生|营养师|专家|专业人士|教授|院士)[^。，？！]{0,8}(合作|推荐|认可|背书|都在用|在用)|(女|男)?明星[^。，]{0,10}(抗糖|都在做|很早|早早)", "review", "广告法 第三十八条"),
    LexiconRule("EFF-010", "efficacy_claim", r"软硬骨同补|补(硬|软)骨|(睡不着|失眠|睡不好)[^。，？！]{0,8}(就|都)?(去)?(吃|拍|带|用)|赶走[^。，？！]{0,4}(黑气|黄气|斑|自由基|暗沉)|(改善|调节|调理|修复)[^。，？！]{0,4}(身体|睡眠|肠道|肤色|血糖|血压|关节|关某节|毛孔|黑头|痘)|对关某?节[^。，？！]{0,8}(好|帮|助)|(淡化|抚平|去除)[^。，？！]{0,3}(皱纹|细纹|纹路|斑)", "review", "广告法 第十七条"),
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
def _compiled() -> tuple[tuple[LexiconRule, re.Pattern[str], re.Pattern[str] | None], ...]:
    """The pattern rules, compiled (the masked-word rules match through ``masked_word_matches``)."""
    return tuple((rule, re.compile(with_first_character_check(rule.pattern)),
                  re.compile(rule.unless) if rule.unless else None) for rule in RULES if not rule.masked_word)


@lru_cache(maxsize=1)
def _category_patterns() -> tuple[re.Pattern[str], ...]:
    """One combined pattern per category, each behind its own first-character check: with 40
    rules one pattern for all let nearly every position through the union of first characters
    (194 us a segment); eight narrower checks cost 44 us."""
    return tuple(re.compile(with_first_character_check("|".join(
        f"(?:{rule.pattern})" for rule in RULES if rule.category == category and not rule.masked_word)))
        for category in MARKETING_CATEGORIES)


def lexicon_may_match(normalized_text: str) -> bool:
    """False only when no rule matches ``normalized_text`` (a cheap search per category, and one
    for the masked-word rules; the text's offset map is then never needed for lexicon spans)."""
    return (any(pattern.search(normalized_text) is not None for pattern in _category_patterns())
            or _MASK_BETWEEN_HAN.search(normalized_text) is not None)


def match_lexicon(text: str | NormalizedText, masked_words: bool = True) -> list[LexiconMatch]:
    """Every rule match in ``text`` (normalized here unless already normalized), with spans
    pointing at the original characters; ``masked_words=False`` leaves the masked-word rules
    out (for a text whose evasions were resolved: they read the text as said)."""
    normalized = text if isinstance(text, NormalizedText) else normalize_text(text)
    matches = []
    for rule, pattern, unless in _compiled():
        if unless is not None and unless.search(normalized.text):
            continue
        for found in pattern.finditer(normalized.text):
            if found.end() == found.start():
                continue
            start, end = normalized.original_span(found.start(), found.end())
            matches.append(LexiconMatch(rule.category, rule.rule_id, rule.severity, start, end,
                                        normalized.original[start:end]))
    if masked_words:
        matches.extend(masked_word_matches(normalized))
    return sorted(matches, key=lambda m: (m.start, m.category))


@lru_cache(maxsize=1)
def _masked_word_rules() -> dict[str, LexiconRule]:
    return {rule.category: rule for rule in RULES if rule.masked_word}


def masked_word_matches(normalized: NormalizedText) -> list[LexiconMatch]:
    """The masked-word rules' matches in ``normalized``: each sensitive word said with a mask
    inside it (``features.evasion.masked_evasions``), under its category's rule."""
    if not _MASK_BETWEEN_HAN.search(normalized.text):
        return []
    matches = []
    for evasion in masked_evasions(normalized.text):
        rule = _masked_word_rules()[word_category(evasion.word)]
        start, end = normalized.original_span(evasion.start, evasion.end)
        matches.append(LexiconMatch(rule.category, rule.rule_id, rule.severity, start, end,
                                    normalized.original[start:end]))
    return matches


# Wording that is evidence on its own in a listing's title or description, whatever the price
# and images: replica jargon and contact handles (the rules of these categories).
LISTING_RULE_CATEGORIES: tuple[str, ...] = ("counterfeit", "off_platform")


@lru_cache(maxsize=1)
def _listing_rules() -> re.Pattern[str]:
    return re.compile(with_first_character_check("|".join(
        f"(?:{rule.pattern})" for rule in RULES if rule.category in LISTING_RULE_CATEGORIES and not rule.masked_word)))


def listing_rule_matches(texts: list[str], normalized: list[str]) -> list[list[LexiconMatch]]:
    """The counterfeit and contact-handle rule matches of each listing text (``normalized``:
    the same texts through ``normalize_many``; only texts a rule may match are matched again
    with offsets)."""
    quick = _listing_rules()
    return [[m for m in match_lexicon(text) if m.category in LISTING_RULE_CATEGORIES]
            if quick.search(plain) or _MASK_BETWEEN_HAN.search(plain) else []
            for text, plain in zip(texts, normalized, strict=True)]


def lexicon_scores(matches: list[LexiconMatch]) -> dict[str, float]:
    """The lexicon baseline's score per category: 1 for a blocking-rule hit, 0.5 for a
    review-rule hit, 0 otherwise."""
    scores = dict.fromkeys(MARKETING_CATEGORIES, 0.0)
    for match in matches:
        scores[match.category] = max(scores[match.category], 1.0 if match.severity == "block" else 0.5)
    return scores
