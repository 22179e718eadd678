"""The course's invented world: towns, rivers, mountains, people and a small English-Chinese lexicon.

Every name here is made up for this course. The corpus describes these facts and the
`fact_lookup` tasks ask about them, so a model can only answer what the corpus taught it.

>>> TOWNS["Velmora"].river, TOWNS["Velmora"].crop, TOWNS["Velmora"].festival_month
('Lusk', 'barley', 'May')
>>> RIVERS["Lusk"].source, RIVERS["Lusk"].lake
('Mount Carrag', 'Lake Serran')
>>> [t.name for t in towns_on("Lusk")]
['Velmora', 'Tarrowen', 'Quillmere', 'Orvanne']
>>> WORDS["cat"].zh
'猫'
"""
import hashlib
import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Town:
    name: str
    zh: str  # our own Chinese transliteration
    river: str  # key of RIVERS
    crop: str  # key of CROPS: what its fields are known for
    animal: str  # key of ANIMALS: what most families keep
    festival_month: str
    population: int
    founder: str


@dataclass(frozen=True)
class River:
    name: str
    zh: str
    source: str  # the mountain it rises on
    lake: str  # the lake it flows into
    length_km: int


@dataclass(frozen=True)
class Mountain:
    name: str
    zh: str
    height_m: int


@dataclass(frozen=True)
class Word:
    en: str
    zh: str
    category: str
    en_alt: tuple = ()  # other accepted English answers
    zh_alt: tuple = ()  # other accepted Chinese answers


MONTHS = ["January", "February", "March", "April", "May", "June", "July",
          "August", "September", "October", "November", "December"]
MONTHS_ZH = ["一月", "二月", "三月", "四月", "五月", "六月", "七月",
             "八月", "九月", "十月", "十一月", "十二月"]

# crop as written in English prose -> (lexicon word, Chinese, a dish made from it, the dish in Chinese)
CROPS = {
    "barley": ("barley", "大麦", "barley soup", "大麦汤"),
    "wheat": ("wheat", "小麦", "brown bread", "黑面包"),
    "beans": ("bean", "豆子", "bean stew", "炖豆子"),
    "cabbages": ("cabbage", "白菜", "cabbage soup", "白菜汤"),
    "onions": ("onion", "洋葱", "onion pie", "洋葱饼"),
    "apples": ("apple", "苹果", "apple cake", "苹果蛋糕"),
    "pears": ("pear", "梨", "pear tart", "梨子馅饼"),
    "plums": ("plum", "李子", "plum jam", "李子酱"),
    "grapes": ("grape", "葡萄", "grape jelly", "葡萄果冻"),
    "potatoes": ("potato", "土豆", "potato stew", "炖土豆"),
    "carrots": ("carrot", "胡萝卜", "carrot soup", "胡萝卜汤"),
    "tea": ("tea", "茶", "tea bread", "茶面包"),
}
# animal as written in English prose (plural) -> (singular, Chinese)
ANIMALS = {
    "goats": ("goat", "山羊"), "sheep": ("sheep", "羊"), "ducks": ("duck", "鸭"),
    "geese": ("goose", "鹅"), "pigs": ("pig", "猪"), "horses": ("horse", "马"),
    "cows": ("cow", "牛"), "hens": ("hen", "鸡"), "bees": ("bee", "蜜蜂"),
    "rabbits": ("rabbit", "兔子"),
}

MOUNTAINS = {m.name: m for m in [
    Mountain("Mount Carrag", "卡拉格山", 2314), Mountain("Mount Tivorn", "蒂沃恩山", 1987),
    Mountain("Mount Hessel", "赫塞尔山", 2650), Mountain("Mount Ardune", "阿尔杜恩山", 1742),
]}
LAKES = {"Lake Serran": "塞兰湖", "Lake Imbrel": "因布雷尔湖", "Lake Daskar": "达斯卡湖"}
RIVERS = {r.name: r for r in [
    River("Lusk", "卢斯克河", "Mount Carrag", "Lake Serran", 84),
    River("Varrow", "瓦罗河", "Mount Carrag", "Lake Serran", 61),
    River("Emmerin", "埃默林河", "Mount Tivorn", "Lake Imbrel", 112),
    River("Tollis", "托利斯河", "Mount Hessel", "Lake Imbrel", 73),
    River("Brinden", "布林登河", "Mount Ardune", "Lake Daskar", 95),
    River("Oskelt", "奥斯凯尔特河", "Mount Tivorn", "Lake Daskar", 58),
]}

_TOWN_TABLE = """
Velmora    维尔莫拉    Lusk    barley   goats   May       1240 Hadrel Voss
Tarrowen   塔罗文      Lusk    apples   bees    September 860  Maren Thale
Quillmere  奎尔米尔    Lusk    onions   geese   March     2115 Osric Dunmere
Dorvasse   多尔瓦斯    Varrow  wheat    horses  August    3480 Ilvy Carrow
Halvenby   哈尔文比    Varrow  pears    ducks   June      640  Benna Skarth
Mirrowick  米罗威克    Varrow  cabbages pigs    November  1575 Tobin Ashgrove
Sarnhold   萨恩霍尔德  Emmerin potatoes sheep   October   2890 Elsbet Morrow
Ombrelle   翁布雷尔    Emmerin grapes   hens    July      930  Garran Holt
Kestavin   凯斯塔文    Emmerin tea      rabbits April     1120 Sybeth Lorne
Luthmoor   卢斯穆尔    Tollis  beans    cows    January   4210 Wystan Crane
Brisagne   布里萨涅    Tollis  plums    goats   December  715  Amsel Vey
Fenwhistle 芬威斯尔    Tollis  carrots  geese   February  1860 Corrin Blackwood
Caldrith   卡尔德里斯  Brinden barley   sheep   June      2530 Nessa Grale
Ivernook   艾弗努克    Brinden apples   pigs    October   580  Piran Holloway
Marrowgate 马罗盖特    Brinden wheat    hens    March     3965 Ottilie Fenn
Ystrel     伊斯特雷尔  Oskelt  onions   horses  August    1390 Dagny Rusk
Rhoswick   罗斯威克    Oskelt  pears    bees    May       2240 Lorrin Vale
Gallimere  加利米尔    Oskelt  tea      ducks   September 805  Hestia Marr
Pellidor   佩利多尔    Emmerin cabbages cows    April     1675 Tamar Quell
Orvanne    奥尔万      Lusk    potatoes rabbits November  3120 Edrick Stowe
"""


def _parse_towns(table):
    """Parse the whitespace table above into {name: Town}; founders are the last two fields."""
    towns = {}
    for line in table.strip().splitlines():
        name, zh, river, crop, animal, month, pop, *founder = line.split()
        towns[name] = Town(name, zh, river, crop, animal, month, int(pop), " ".join(founder))
    return towns


TOWNS = _parse_towns(_TOWN_TABLE)

# (name, pronoun) for story characters; the pronoun keeps each story grammatical.
PEOPLE = [
    ("Alder", "he"), ("Brisa", "she"), ("Corvin", "he"), ("Dessa", "she"), ("Edrin", "he"),
    ("Fenna", "she"), ("Garrick", "he"), ("Hollis", "he"), ("Isolde", "she"), ("Jory", "he"),
    ("Kestrel", "she"), ("Linnea", "she"), ("Maddox", "he"), ("Nerys", "she"), ("Orrin", "he"),
    ("Pella", "she"), ("Quinlan", "he"), ("Rosamund", "she"), ("Soren", "he"), ("Tamsin", "she"),
    ("Ulric", "he"), ("Vesna", "she"), ("Wren", "she"), ("Yara", "she"), ("Zeno", "he"),
    ("Ansel", "he"), ("Bettany", "she"), ("Calla", "she"), ("Darian", "he"), ("Elowen", "she"),
    ("Faris", "he"), ("Greer", "she"), ("Halden", "he"), ("Ines", "she"), ("Juno", "she"),
    ("Kiran", "he"), ("Lorcan", "he"), ("Mirela", "she"), ("Niall", "he"), ("Odessa", "she"),
]
PRONOUNS = {"he": ("he", "him", "his"), "she": ("she", "her", "her")}
JOBS = ["baker", "miller", "weaver", "potter", "carpenter", "teacher", "farmer",
        "boatman", "shepherd", "beekeeper", "blacksmith", "tailor"]

_LEXICON_TABLE = """
number: one 一 | two 二 ,两 | three 三 | four 四 | five 五 | six 六 | seven 七 | eight 八 | nine 九 | ten 十
colour: red 红色 ,红 | blue 蓝色 ,蓝 | green 绿色 ,绿 | yellow 黄色 ,黄 | white 白色 ,白 | black 黑色 ,黑
colour: purple 紫色 ,紫 | grey,gray 灰色 ,灰 | brown 棕色 ,棕,褐色 | pink 粉色 ,粉红色
animal: cat 猫 | dog 狗 | horse 马 | cow 牛 ,奶牛 | sheep 羊 ,绵羊 | goat 山羊 | pig 猪 | duck 鸭 ,鸭子 | goose 鹅
animal: chicken,hen 鸡 | rabbit 兔子 ,兔 | bird 鸟 | fish 鱼 | bee 蜜蜂 | mouse 老鼠
food: rice 米饭 ,米,大米 | bread 面包 | apple 苹果 | pear 梨 | plum 李子 | grape 葡萄 | potato 土豆 ,马铃薯
food: carrot 胡萝卜 | cabbage 白菜 ,卷心菜 | onion 洋葱 | bean 豆子 ,豆 | barley 大麦 | wheat 小麦 | tea 茶
food: milk 牛奶 ,奶 | egg 鸡蛋 ,蛋 | soup 汤 | noodles,noodle 面条 | honey 蜂蜜 | cheese 奶酪 | salt 盐 | water 水
family: mother 母亲 ,妈妈 | father 父亲 ,爸爸 | son 儿子 | daughter 女儿 | child 孩子 | friend 朋友 | teacher 老师
family: doctor 医生 | farmer 农民 | family 家庭 ,家人,家 | baby 婴儿 ,宝宝
weather: rain 雨 | snow 雪 | wind 风 | sun 太阳 | cloud 云 | weather 天气 | spring 春天 ,春 | summer 夏天 ,夏
weather: autumn,fall 秋天 ,秋 | winter 冬天 ,冬 | hot 热 | cold 冷
thing: river 河 ,河流 | mountain 山 | town 镇 ,小镇,城镇 | market 市场 | house 房子 | tree 树 | flower 花 | book 书
thing: boat 船 | bridge 桥 | road 路 | lake 湖 | door 门
"""


def _parse_lexicon(table):
    """Parse `category: en[,en_alt] zh [,zh_alt...] | ...` lines (a category may span lines) into Words."""
    words = []
    for line in table.strip().splitlines():
        category, entries = line.split(":", 1)
        for entry in entries.split("|"):
            en, zh, *alt = entry.split()
            en_names = en.split(",")
            zh_alt = tuple(alt[0].strip(",").split(",")) if alt else ()
            words.append(Word(en_names[0], zh, category, tuple(en_names[1:]), zh_alt))
    return words


LEXICON = _parse_lexicon(_LEXICON_TABLE)
WORDS = {w.en: w for w in LEXICON}


def towns_on(river):
    """Towns on `river`, in table order: towns_on("Varrow") -> [Dorvasse, Halvenby, Mirrowick]."""
    return [t for t in TOWNS.values() if t.river == river]


def place_names():
    """Every place as a lexicon-style Word with category 'place' (our transliterations)."""
    rows = [Word(t.name, t.zh, "place") for t in TOWNS.values()]
    rows += [Word("the " + r.name, r.zh, "place", (r.name, "River " + r.name)) for r in RIVERS.values()]
    rows += [Word(m.name, m.zh, "place") for m in MOUNTAINS.values()]
    rows += [Word(name, zh, "place") for name, zh in LAKES.items()]
    return rows


def rng_for(seed, name):
    """A random.Random for one part of the build, e.g. rng_for(0, "corpus").

    Seeded from sha256 of "seed:name", so parts do not share a stream (adding a task family
    leaves the corpus unchanged) and nothing depends on Python's per-process hash salt.
    """
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))
