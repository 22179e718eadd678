"""Clean Chinese documents about the same invented world (our own transliterated place names).

Same facts as the English prose: 维尔莫拉 (Velmora) is on 卢斯克河 (the Lusk) and grows 大麦 (barley).
`chinese_document(rng)` returns `(genre, text)`; length is counted in characters, since Chinese
has no spaces: 60 to 300 characters.

>>> import random
>>> genre, text = chinese_document(random.Random(0))
>>> 60 <= len(text) <= 300
True
"""
from .prose import vary
from .world import ANIMALS, CROPS, LEXICON, MONTHS, MONTHS_ZH, MOUNTAINS, RIVERS, TOWNS


def make_context_zh(rng):
    """Chinese names and facts for one random town, plus a few free choices."""
    t = rng.choice(list(TOWNS.values()))
    river = RIVERS[t.river]
    return dict(T=t.name, Tz=t.zh, Rz=river.zh, Mz=MOUNTAINS[river.source].zh, cropz=CROPS[t.crop][1],
                dishz=CROPS[t.crop][3], animalz=ANIMALS[t.animal][1], pop=t.population,
                monthz=MONTHS_ZH[MONTHS.index(t.festival_month)], n=rng.randint(3, 20),
                day=rng.randint(1, 28))


def _pick(rng, pool, lo, hi):
    """Between lo and hi sentences from pool, in pool order."""
    idx = sorted(rng.sample(range(len(pool)), rng.randint(lo, hi)))
    return [pool[i] for i in idx]


def _fill(rng, sentences, c):
    """Choose the [a|b] options of each sentence, fill in c and join without spaces."""
    return "".join(vary(rng, s).format(**c) for s in sentences)


def town_zh(rng, c):
    """镇的介绍: river, population, crop, animals, festival month."""
    facts = [rng.choice(pool) for pool in rng.sample([
        ["镇上[大约|差不多]住着{pop}人。", "{Tz}[大约|一共]有{pop}个居民。", "[据说|听说]{Tz}现在有{pop}人。"],
        ["这里的农民[种|都种]{cropz}。", "{Tz}的{cropz}[很有名|远近闻名|是山谷里最好的]。", "镇子周围的田里种满了{cropz}。"],
        ["很多人家[养|都养]{animalz}。", "几乎每家的[院子|后院]里都有{animalz}。", "走在路上，常常能[看到|听到]{animalz}。"],
        ["每年{monthz}，{Tz}都会举行节日。", "{Tz}的节日在{monthz}。",
         "到了{monthz}，全镇的人都会来参加节日，大家一起[唱歌、跳舞|吃饭、聊天|放灯笼]。"],
    ], rng.randint(2, 4))]
    intro = rng.choice(["{Tz}是{Rz}边的一个[小镇|安静的小镇|热闹的小镇]。", "{Tz}位于{Rz}岸边，离{Mz}不远。",
                        "沿着{Rz}往下走，[就能到|不久就会看到]{Tz}。", "{Tz}在{Mz}[下面|脚下]，{Rz}从镇边流过。"])
    extras = _pick(rng, ["镇上的街道[很窄|弯弯曲曲]，路面是[灰色的|古老的]石头。", "河上有一座[古老的|小小的]石桥。",
                         "市场[每天早上|每个星期六]都很热闹。", "冬天的时候，河面有时会结冰。",
                         "镇中心有一座[钟楼|老磨坊]。", "从[广场|桥]上可以看到远处的雪山。",
                         "镇上有一家面包店和[两|三]家小旅馆。"], 1, 3)
    return _fill(rng, [intro] + facts + extras, c)


def diary_zh(rng, c):
    """第一人称的天气日记."""
    weather = rng.choice([["今天{Tz}下了[一整天|一上午|整整一天]的雨。", "{Rz}的水比昨天高了[很多|不少]。"],
                          ["今天是晴天，阳光[很好|很暖和]。", "天空[很蓝|一片蓝色]，几乎没有风。"],
                          ["夜里下了雪，早上起来，外面全是白色的。", "孩子们在[广场|路边|院子]里堆雪人。"],
                          ["今天风很大，天气[很冷|特别冷]。", "河上的船都没有出去。"],
                          ["早上{Rz}上起了大雾。", "[街对面|河对岸]什么也看不见。"]])
    day = _pick(rng, ["我在家里[喝茶，看书|补衣服|写信]。", "[下午|傍晚]我去河边散步。", "[妈妈|奶奶]做了一锅[汤|面条]。",
                      "我给{animalz}喂了食，又去井边打水。", "晚上我们一家人坐在火炉旁[聊天|讲故事]。",
                      "明天如果天气好，我想去市场买{cropz}。", "邻居送来了[一些面包|一篮{cropz}|几个鸡蛋]。"], 2, 4)
    head = rng.choice(["", "{day}日，", "星期[一|二|三|四|五|六|天]，"])
    return _fill(rng, [head] + weather + day, c)


def market_zh(rng, c):
    """市场见闻."""
    body = _pick(rng, ["{Tz}的市场每个星期开[三|两]天。", "今天市场上有很多新鲜的{cropz}。",
                       "一位[农民|老人|姑娘]卖了{n}篮{cropz}。", "还有人在卖[蜂蜜、鸡蛋和奶酪|面包和牛奶|鱼和盐]。",
                       "价格比上个月[便宜|贵]一点。", "孩子们围着卖糖的小摊。", "有人带着{animalz}来市场上卖。",
                       "[下午|傍晚]市场关门以后，街上又安静了。"], 4, 6)
    return _fill(rng, body, c)


def cooking_zh(rng, c):
    """用本地作物做一道菜."""
    body = [rng.choice(["今天我用{cropz}做了{dishz}。", "在{Tz}，大家都喜欢吃{dishz}。", "[星期天|昨天]我给家人做了{dishz}。"])]
    body += _pick(rng, ["我先去市场买了新鲜的{cropz}。", "回家以后，把{cropz}洗干净，切成[小块|薄片]。",
                        "然后放进锅里，加水和一点盐。", "用小火慢慢[煮|炖]了[一个小时|半个小时]。", "厨房里都是香味。"], 3, 4)
    body.append(rng.choice(["全家人都说很好吃。", "剩下的留到明天再吃。", "[奶奶|爸爸]说这是[她|他]吃过最好吃的{dishz}。"]))
    return _fill(rng, body, c)


def letter_zh(rng, c):
    """给朋友的一封短信."""
    body = _pick(rng, ["我们这里一切都好。", "今年{cropz}的收成[很好|不错|比去年好]。", "{monthz}的节日你会来吗？我们都很想你。",
                       "家里的{animalz}都很健康。", "最近{Tz}[常常|一直]下雨，{Rz}的水很高。", "有空的时候给我写信吧。"],
                 3, 5)
    end = rng.choice(["祝你身体健康！", "祝你一切顺利！", "盼望你的回信。"])
    return "亲爱的朋友：\n\n你好！" + _fill(rng, body, c) + "\n\n" + end + "\n你的朋友"


def lesson_zh(rng, c):
    """一堂英语课: Chinese text naming English words (the other direction of language_lesson)."""
    words = rng.sample([w for w in LEXICON if w.category != "number"], rng.randint(4, 6))
    pairs = [rng.choice(["{zh}的英文是{en}。", "{zh}用英语说是{en}。"]).format(zh=w.zh, en=w.en) for w in words]
    start = rng.choice(["今天在{Tz}的学校上了英语课。", "老师教我们几个英语单词。"]).format(**c)
    return start + "".join(pairs) + rng.choice(["我们明天还要学新的单词。", "老师说每天都要练习。"])


GENRES_ZH = {"town": (town_zh, 30), "diary": (diary_zh, 20), "market": (market_zh, 15),
             "cooking": (cooking_zh, 15), "letter": (letter_zh, 10), "lesson": (lesson_zh, 10)}


def chinese_document(rng, genre=None, min_chars=60, max_chars=300):
    """Returns (genre, text): a Chinese document of min_chars to max_chars characters."""
    names = list(GENRES_ZH)
    for _ in range(100):
        g = genre or rng.choices(names, weights=[GENRES_ZH[n][1] for n in names])[0]
        text = GENRES_ZH[g][0](rng, make_context_zh(rng))
        if min_chars <= len(text) <= max_chars:
            return g, text
    raise RuntimeError(f"genre {genre!r} never produced {min_chars}-{max_chars} characters")
