"""Clean English documents about the invented world, built from sentence pools.

Templates use `{name}` for facts from world.py and `[a|b|c]` for free wording choices, so two
documents built from the same sentences still differ in most phrases (a near-duplicate
detector should find the planted near-duplicates, not every pair of diary entries).
Each genre is a function `(rng, ctx) -> list of paragraphs`. Tricky values (dates, times,
prices, ids, versions) are wrapped with spans.mark so their offsets are known.

>>> import random
>>> vary(random.Random(0), "It [rained|snowed] in {T}.")
'It snowed in {T}.'
>>> genre, text = english_document(random.Random(0))
>>> 40 <= len(unmark(text)[0].split()) <= 200
True
"""
import re

from .spans import mark, tricky_value, unmark
from .world import CROPS, LEXICON, MOUNTAINS, PEOPLE, PRONOUNS, RIVERS, TOWNS, towns_on

COLOURS = [w.en for w in LEXICON if w.category == "colour"]
NUMBER_WORDS = [w.en for w in LEXICON if w.category == "number"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
RELATIVES = ["mother", "father", "grandmother", "grandfather", "sister", "brother", "aunt", "uncle", "cousin"]
_CHOICE = re.compile(r"\[([^\[\]]*)\]")


def vary(rng, template):
    """Replace every `[a|b|c]` in template with one of its options."""
    return _CHOICE.sub(lambda m: rng.choice(m.group(1).split("|")), template)


def fill(rng, templates, ctx):
    """vary() each template, fill in ctx, join with spaces, capitalise each sentence start."""
    out = []
    for t in templates:
        s = vary(rng, t).format(**ctx)
        out.append(s[0].upper() + s[1:])
    return " ".join(out)


def and_list(items):
    """and_list(["a", "b", "c"]) -> 'a, b and c'."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def pick(rng, pool, lo, hi):
    """Between lo and hi different items of pool, kept in pool order (stories keep time order)."""
    chosen = sorted(rng.sample(range(len(pool)), rng.randint(lo, hi)))
    return [pool[i] for i in chosen]


def make_context(rng):
    """Everything a template may name: two different towns, two people, a colour, a number..."""
    t, t2 = rng.sample(list(TOWNS.values()), 2)
    (p, pron), (q, _) = rng.sample(PEOPLE, 2)
    he, him, his = PRONOUNS[pron]
    ctx = dict(P=p, Q=q, he=he, him=him, his=his, colour=rng.choice(COLOURS), n=rng.choice(NUMBER_WORDS[2:]),
               relative=rng.choice(RELATIVES), weekday=rng.choice(WEEKDAYS), day=rng.randint(1, 28),
               k=rng.randint(2, 12))
    for suffix, town in (("", t), ("2", t2)):
        river = RIVERS[town.river]
        ctx.update({"T" + suffix: town.name, "R" + suffix: town.river, "crop" + suffix: town.crop,
                    "animals" + suffix: town.animal, "month" + suffix: town.festival_month,
                    "pop" + suffix: f"{town.population:,}", "founder" + suffix: town.founder,
                    "dish" + suffix: CROPS[town.crop][2], "crop_word" + suffix: CROPS[town.crop][0],
                    "M" + suffix: river.source, "lake" + suffix: river.lake})
    return ctx


TOWN_INTRO = [
    "{T} is a [small|quiet|modest|busy little] [town|market town|river town] on the {R}.",
    "The town of {T} [lies|stands|sits] on the {R}, [below|beneath|in the shadow of] {M}.",
    "On the [banks of the {R}|{R}], [within sight of|not far from|a day's walk from] {M}, "
    "[stands|lies] the town of {T}.",
    "{T} [sits|grew up] where the [old road|road from the hills|cart track from the hills] meets the {R}.",
    "If you follow the {R} [down|downstream] from {M}, you will [come to|reach|soon find] {T}.",
    "[Few travellers|Not many people|Few people] outside the valley have heard of {T}, "
    "a [small|quiet] town on the {R}.",
    "{T} is [one of the towns|a town] on the {R}, [between|somewhere between] {M} and {lake}.",
]
TOWN_FACTS = [
    ["[About|Around|Roughly] {pop} people live in {T}"
     "[.|, most of them in stone houses near the water.|, and most of them know each other by name.]",
     "The town is home to [about|around|roughly] {pop} people.",
     "{T} has a population of [about|around] {pop}[.|, more in summer when the traders come.]",
     "[At the last count|According to the town clerk], {T} had about {pop} people."],
    ["The fields around {T} are [known|famous|well known] for {crop}.",
     "[Most|Many|Nearly all] farms near {T} grow {crop}[.|, which farmers sell at markets all along the valley.]",
     "{T} is [best|mostly|chiefly] known for its {crop}.",
     "Farmers [there|in {T}] grow {crop} on the [slopes|hillsides|flat land] [above|beside|near] the river."],
    ["[Many|Most|Plenty of] families in {T} keep {animals}.",
     "Nearly every [yard|garden|farm] in {T} has a few {animals}.",
     "The people of {T} keep {animals}, and you can [hear|see] them from the road.",
     "In {T}, most households keep {animals}[.| in small pens behind the house.]"],
    ["The town was founded by {founder}[.| long ago.| many years ago.]",
     "{T} was founded by {founder}, whose name is still carved above the "
     "[door of the old mill|town hall door|market gate].",
     "[According to the town records|The old records say|Local people say], {T} was founded by {founder}.",
     "Children in {T} learn [at school|from their grandparents] that {founder} founded the town.",
     "A [stone|wooden] statue of {founder}, who founded {T}, stands in the [square|market square|churchyard]."],
    ["Every year in {month}, {T} holds its festival.",
     "The {T} festival [takes place|is held] [in|every] {month}.",
     "In {month} the whole town gathers for its festival, with [music|singing], lanterns and long tables of food.",
     "{T} celebrates its festival every {month}[.|, and visitors come from all over the valley.]"],
]
TOWN_EXTRAS = [
    "The streets are [narrow|steep|crooked] and paved with [grey|old|smooth] stone.",
    "A [stone|wooden|narrow] bridge crosses the {R} near the [market square|mill|church].",
    "Travellers often stop at the inn [beside the bridge|by the mill|on the main street] "
    "for [a meal|the night|a cup of tea].",
    "In [winter|a hard winter|the coldest weeks] the {R} sometimes freezes "
    "[near the mill|by the bridge|along the banks].",
    "The market square fills with [carts|stalls|people] on [most mornings|market days|Saturdays].",
    "An old clock tower stands at the [centre|top] of the town[.|, and its bell can be heard across the fields.]",
    "On clear days you can see [snow|the snow] on {M} from the [square|bridge|top of the hill].",
    "Boats carry [goods|grain|timber] down the {R} [towards|to] {lake}.",
    "Most houses have [red|brown|grey] roofs and [small|neat|untidy] gardens.",
    "The town has a bakery, a smithy and [two|three] small inns.",
    "A footpath runs along the river from the mill to the [meadows|orchards|old ferry].",
    "In spring the meadows beside the {R} are full of [yellow|white|purple] flowers.",
    "The town hall keeps a [large|painted|very old] map of the whole valley.",
    "The old well in the square still gives [clean|cold|sweet] water.",
    "A ferry crosses the {R} [twice a day|every morning|on market days] in summer.",
    "At night the only sound is the water [running|rushing] under the bridge.",
    "Most children in {T} learn to swim in the {R}[.| before they can read.]",
    "The school has one [large|long] room and a garden [behind it|full of beans]."
]
TOWN_CLOSING = ["It is a good place to stop for a night.", "Many visitors come back year after year.",
                "Life in {T} is slow, and the people like it that way.", "People in {T} are proud of their town."]


def town_description(rng, ctx):
    """A gazetteer entry: intro, 3-5 facts in random order, a few details, maybe a closing line."""
    facts = [rng.choice(pool) for pool in rng.sample(TOWN_FACTS, rng.randint(3, 5))]
    body = [rng.choice(TOWN_INTRO)] + facts + rng.sample(TOWN_EXTRAS, rng.randint(1, 3))
    if rng.random() < 0.5:
        body.append(rng.choice(TOWN_CLOSING))
    return [fill(rng, body, ctx)]


def river_description(rng, ctx):
    """The river of ctx's town: where it rises, where it ends, which towns it passes."""
    river = RIVERS[ctx["R"]]
    c = dict(R=river.name, M=river.source, lake=river.lake, km=river.length_km,
             towns=and_list([t.name for t in towns_on(river.name)]))
    lines = [rng.choice(["The {R} rises on the [slopes|eastern slopes|high slopes] of {M}.",
                         "The {R} begins as a [small|thin|cold] stream high on {M}.",
                         "High on {M}, a spring feeds the river that people call the {R}."]),
             rng.choice(["It flows into {lake}.", "After about {km} kilometres it [ends in|reaches] {lake}.",
                         "It runs for about {km} kilometres before it [reaches|empties into] {lake}."]),
             rng.choice(["Along the way it passes {towns}.", "The towns on its banks are {towns}.",
                         "It flows past {towns}."])]
    lines += rng.sample(["In spring, melting snow makes the water [fast|fast and cold|high and brown].",
                         "Herons stand in the shallows [in the early morning|at dawn].",
                         "Children float [small|little] wooden boats on it in summer.",
                         "Old stone bridges cross it in [several|many|a few] places.",
                         "In dry summers you can wade across it at the [fords|shallow places].",
                         "Fishermen say the best spot is below the [mill|old bridge|weir].",
                         "Willow trees lean over the water along much of its length."], rng.randint(1, 3))
    return [fill(rng, lines, c)]


def mountain_description(rng, ctx):
    """A mountain: its height, the rivers that rise on it, shepherds and snow."""
    name = rng.choice(list(MOUNTAINS))
    rivers = [r.name for r in RIVERS.values() if r.source == name]
    c = dict(M=name, h=f"{MOUNTAINS[name].height_m:,}", rivers=and_list(["the " + r for r in rivers]), T=ctx["T"])
    source = "Both {rivers} rise on its slopes." if len(rivers) > 1 else "{rivers} rises on its slopes."
    lines = [rng.choice(["{M} is {h} metres high.", "{M} rises {h} metres above the sea.",
                         "At {h} metres, {M} is one of the highest peaks in the valley."]),
             rng.choice([source, "Its snow feeds {rivers}."])]
    lines += rng.sample(["Shepherds from {T} take their flocks up its lower slopes in [summer|June|the warm months].",
                         "Snow lies on the summit until [late spring|early summer].",
                         "A [narrow|rocky|steep] path climbs to a stone hut near the top.",
                         "On a clear day, walkers at the top can see [the lakes|the whole valley] far below.",
                         "The climb takes most of a day, and the last part is [steep|hard going|slippery]."],
                        rng.randint(2, 3))
    return [fill(rng, lines, c)]


TRAVEL = [
    "the road followed the {R} for [most of the morning|a long way|the first few miles].",
    "along the way {he} passed fields of {crop} and [a farmer with a cart|a boy driving {animals}|an empty mill].",
    "at noon {he} sat [under a tree|on a wall|by the water] and ate "
    "[bread and cheese|an apple|the last of {his} bread].",
    "it began to rain, so {he} [waited under a bridge|sheltered in a barn] until the clouds passed.",
    "a boatman offered to carry {him} part of the way, and {he} [gladly accepted|said yes at once].",
    "{he} met an old [woman|man|shepherd] who told {him} stories about {founder2}, the founder of {T2}.",
    "the path climbed slowly, and when {he} looked back {he} could see {M} [behind {him}|in the distance].",
    "by the afternoon {his} feet were sore, but {he} kept [walking|going].",
    "{he} stopped at [an inn|a farmhouse] and asked the way to {T2}.",
]
ARRIVAL = [
    "in the market {he} bought some {crop2}, which {T2} is known for.",
    "the people of {T2} were kind and gave {him} [a bed|a warm room|supper and a bed] for the night.",
    "everyone in {T2} was already talking about the festival in {month2}.",
    "{he} watched the {animals2} in the [yards|gardens|lanes] and thought of home.",
    "the next day {he} walked back to {T}, [tired but happy|with a full basket|humming all the way].",
]


def travel_story(rng, ctx):
    """Someone walks from town T to town T2; what they see on the way and on arrival."""
    start = rng.choice([
        "{P} left {T} [early one morning|at dawn|one grey morning] with a basket of {crop} on {his} back.",
        "one [morning|spring morning|autumn morning], {P} set out from {T} to visit {his} {relative} in {T2}.",
        "{P} had never been to {T2}, so one morning {he} packed some bread and left {T}.",
        "early in the [spring|summer|autumn], {P} walked out of {T} on the road to {T2}.",
    ])
    arrive = rng.choice(["when {he} reached {T2}, the market was still open.", "{he} reached {T2} just before dark.",
                         "it was evening when {he} finally saw the roofs of {T2} beside the {R2}."])
    body = [start] + pick(rng, TRAVEL, 2, 4) + [arrive] + pick(rng, ARRIVAL, 1, 3)
    return [fill(rng, body, ctx)]


COOKING = [
    "{he} went to the market in {T} and bought [fresh|good] {crop} and a jar of [honey|salt|butter].",
    "first {he} washed everything and cut it into [small|thin|even] pieces.",
    "then {he} put a [pot|pan] of water on the fire and added a pinch of salt.",
    "while it cooked, {he} [swept the kitchen|fed the {animals}|sang to {him}self] "
    "and set the table with {colour} cups.",
    "the kitchen soon smelled of {dish}.",
    "{his} {relative} came in from the [garden|fields|market] and asked what was for [dinner|supper].",
]
COOKING_END = [
    "everyone at the table asked for more.", "there was enough left over for the next day.",
    "{P} wrote the recipe on a card so that {he} would not forget it.",
    "the secret, {he} said, was to cook it [slowly|with patience|on a low fire].",
    "it was the best {dish} {he} had made all year.",
]


def cooking_story(rng, ctx):
    """Someone cooks the dish of their town's crop."""
    start = rng.choice(["{P} wanted to make {dish} for {his} {relative}.", "on {weekday}, {P} decided to make {dish}.",
                        "in {T}, {dish} is a favourite dish, and {P} makes it every [week|Sunday|market day]."])
    body = [start] + pick(rng, COOKING, 3, 5) + pick(rng, COOKING_END, 1, 2)
    return [fill(rng, body, ctx)]


def trading_story(rng, ctx):
    """Two people trade at a market: baskets, coins, a handshake."""
    start = rng.choice(["{P} sold {n} baskets of {crop} to {Q} at the {T} market.",
                        "at the market in {T}, {P} traded {n} baskets of {crop} with {Q}.",
                        "{Q} came to the {T} market looking for {crop}, and {P} had {n} baskets to sell."])
    body = [start] + pick(rng, [
        "{Q} wanted more, but {P} had only {n}.", "they agreed on a price of {k} coins a basket.",
        "in return, {Q} gave {P} a {colour} [blanket|scarf|shawl] and two jars of honey.",
        "the deal was sealed with a handshake and a cup of [tea|cider].",
        "on the way home, {P} counted the coins [twice|three times].",
        "next [week|month], {P} plans to take more {crop} to {T2}, where people pay well.",
    ], 3, 5)
    return [fill(rng, body, ctx)]


WEATHER = {
    "rain": ["it [rained|poured] [all morning|all day|from dawn until noon] in {T}.",
             "the rain did not stop until [after dinner|late in the evening|the church bell rang six].",
             "the {R} is higher than I have seen it [all year|since spring|in a long time].",
             "water ran down the street in little streams."],
    "sun": ["the sun was warm from [early morning|the moment I woke].", "it was a bright, clear day in {T}.",
            "the sky was [blue|pale blue|cloudless] and there was hardly any wind.",
            "we hung the washing out and it was dry by [noon|midday|lunchtime]."],
    "snow": ["snow fell [quietly|softly|steadily] through the night.", "in the morning the whole of {T} was white.",
             "the children made a snowman in the [square|lane|yard].",
             "I could see fresh snow on {M} from my window."],
    "wind": ["a strong wind blew down the valley [all day|since morning].",
             "the wind took [two|three|a few] tiles off the roof of the barn.",
             "the boats stayed tied up on the {R}.", "the {animals} huddled together by the [wall|hedge|barn]."],
    "fog": ["thick fog lay over the {R} until [late morning|noon].",
            "I could not see the other side of the [street|river|square].",
            "the bells of the boats sounded strange in the fog."],
}
DIARY_DAY = [
    "I stayed in and mended my [coat|boots|old blanket].", "I fed the {animals} and fetched water from the well.",
    "in the evening I read by the fire.", "my neighbour brought me [a loaf of bread|some soup|a basket of {crop}].",
    "I made a pot of tea and listened to the [weather|wind|rain on the roof].",
    "the cat slept by the stove all day.", "tomorrow I will go to the market if the weather allows.",
]


def weather_diary(rng, ctx):
    """A first-person diary entry, sometimes headed with an ISO date (a tricky value)."""
    header = rng.choice(["Diary, {day} {month}.", "{weekday}, {day} {month}.", "{weekday}."]).format(**ctx)
    if rng.random() < 0.25:
        header = "Diary, " + mark("date", tricky_value("date", rng)) + "."
    body = pick(rng, WEATHER[rng.choice(sorted(WEATHER))], 2, 3) + pick(rng, DIARY_DAY, 2, 4)
    if rng.random() < 0.2:
        body.insert(1, "at " + mark("time", tricky_value("time", rng)) + " the bell rang for the ferry.")
    return [header, fill(rng, body, ctx)]


def market_notice(rng, ctx):
    """A notice with times, dates, prices, stall ids and software versions: hard negatives for PII."""
    tv = {k: mark(k, tricky_value(k, rng)) for k in ("time", "date", "price", "id", "version")}
    head = rng.choice(["Notice from the {T} market.", "MARKET NOTICE: {T}.", "To all stall holders in {T}:"])
    body = pick(rng, [
        "the market will open at {time} on {date}.", "[fresh|new season] {crop} from local farms will be on sale.",
        "stalls cost {price} crowns per day, paid at the gate.", "please bring your stall ticket ({id}) to the gate.",
        "traders with {animals} must keep them in pens at the [east|west] end.",
        "the weighing scales were checked by the town clerk last week.",
        "the town hall ledger program has been updated to version {version}.",
        "lost: a {colour} scarf near the fish stalls. Please return it to the gate.",
        "during the {month} festival the market will stay open until late.",
    ], 4, 6) + [rng.choice(["thank you, and see you at the market.", "by order of the market warden.",
                            "questions may be left with the warden at the gate."])]
    return [head.format(**ctx), fill(rng, body, dict(ctx, **tv))]


def letter(rng, ctx):
    """A letter from P to Q with greeting and sign-off, sometimes naming a date and a price."""
    tv = {k: mark(k, tricky_value(k, rng)) for k in ("time", "date", "price")}
    body = pick(rng, [
        "I hope this letter finds you [well|in good health].", "things are [quiet|busy] here in {T}.",
        "the {crop_word} harvest was [good this year, and we have more than we can eat|better than last year|"
        "poor this year, but we will manage].",
        "our {animals} are healthy, though one of them keeps escaping into the neighbour's garden.",
        "are you coming to the festival in {month}? It would be lovely to see you.",
        "my {relative} sends love and a jar of honey.", "I have enclosed a drawing of the bridge over the {R}.",
        "I will arrive on {date} at {time}, if the ferry is running.",
        "the book you asked about costs {price} crowns at the shop by the square.",
        "write back soon and tell me all your news.",
    ], 4, 6)
    sign = rng.choice(["Yours,", "With love,", "Your friend,", "Warm wishes,"])
    return [f"Dear {ctx['Q']},", fill(rng, body, dict(ctx, **tv)), f"{sign}\n{ctx['P']}"]


def festival_description(rng, ctx):
    """The town's festival: month, lanterns, crop prizes, songs about the founder."""
    start = rng.choice(["the {month} festival in {T} is the [biggest|happiest|busiest|loudest] day of the year.",
                        "every {month}, {T} holds a festival that lasts [two|three|four] days.",
                        "nobody in {T} works on the first day of the {month} festival.",
                        "[in|every] {month}, [people in {T}|the people of {T}] "
                        "[stop work|close their shops] for the festival.",
                        "[my|our] favourite time in {T} is the festival in {month}."])
    body = [start] + pick(rng, [
        "[people|families|shopkeepers] hang {colour} [lanterns|ribbons|flags] from their [windows|doors|balconies].",
        "farmers bring their best {crop} to the square, and [a prize goes to|the mayor praises] the finest basket.",
        "the children dress up as {animals} and [parade through the streets|march round the square].",
        "[a band plays|fiddlers play|drums beat] [all afternoon|until dark|from noon].",
        "in the evening there is dancing [on the banks of the {R}|by the {R}|in the square].",
        "old songs about {founder}, who founded the town, are sung [late into the night|by the fire|around the well].",
        "visitors come from {T2} and [beyond|further away|the farms around] to join in.",
        "[the oldest woman in town|the miller|the mayor] lights the first lantern at [dusk|sunset].",
        "the festival ends with a shared meal of {dish}[.|, eaten at long tables in the street.]",
    ], 3, 5)
    return [fill(rng, body, ctx)]


def language_lesson(rng, ctx):
    """A Chinese lesson in an English text: the corpus is where translation tasks get their words."""
    category = rng.choice(sorted({w.category for w in LEXICON}))
    words = rng.sample([w for w in LEXICON if w.category == category], rng.randint(4, 6))
    start = rng.choice(["At the school in {T}, the children are learning Chinese.",
                        "{P} is learning Chinese words from a teacher in {T}.",
                        "Today's Chinese lesson in {T} was about words for everyday things."])
    pairs = [rng.choice(["The Chinese word for {en} is {zh}.", "In Chinese, {en} is {zh}.", "{zh} means {en}.",
                         "To say {en} in Chinese, you write {zh}."]).format(en=w.en, zh=w.zh) for w in words]
    end = rng.choice(["The teacher says to practise every day.", "Tomorrow the class will learn more words.",
                      "{P} wrote each word ten times in a notebook."])
    return [fill(rng, [start] + pairs + [end], ctx)]


GENRES = {  # genre -> (function, weight)
    "town": (town_description, 20), "river": (river_description, 2), "mountain": (mountain_description, 1),
    "travel": (travel_story, 14), "cooking": (cooking_story, 10), "trading": (trading_story, 9),
    "diary": (weather_diary, 14), "notice": (market_notice, 6), "letter": (letter, 10),
    "festival": (festival_description, 8), "lesson": (language_lesson, 8),
}


def english_document(rng, genre=None, min_words=40, max_words=200):
    """Returns (genre, marked text) with between min_words and max_words words."""
    names = list(GENRES)
    for _ in range(100):
        g = genre or rng.choices(names, weights=[GENRES[n][1] for n in names])[0]
        text = "\n\n".join(GENRES[g][0](rng, make_context(rng)))
        if min_words <= len(unmark(text)[0].split()) <= max_words:
            return g, text
    raise RuntimeError(f"genre {genre!r} never produced {min_words}-{max_words} words")
