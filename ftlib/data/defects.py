"""The planted defects of the raw corpus: what a cleaning pipeline has to find.

Each function takes an rng (and sometimes a clean document) and returns marked text
(see spans.py). corpus.py decides how many of each to plant and records the labels.

>>> import random
>>> len(too_short(random.Random(0)).split()) < 8
True
>>> near_duplicate_edit(random.Random(0), "The town is small and quiet.", "en") != "The town is small and quiet."
True
"""
import re

from .prose import make_context
from .spans import inside_marker, mark
from .world import MONTHS, PEOPLE, TOWNS

# ---- boilerplate: navigation, cookie banners, newsletters, footers --------------------------
NAV = ["Home | News | Towns | Markets | Weather | Contact", "Home > Towns > {T} > Market news",
       "Menu: Home · About us · Events · Shop · Log in", "Skip to main content", "Search this site"]
COOKIE = ["We use cookies to improve your experience on our site. "
          "By continuing to browse, you agree to our use of cookies.",
          "This website uses cookies. Accept all | Reject all | Manage settings",
          "Cookie settings: we and our partners store and access information on your device."]
NEWSLETTER = ["Subscribe to our newsletter for weekly news from the valley!",
              "Sign up for our newsletter and never miss a market day.",
              "Enter your email address to subscribe. You can unsubscribe at any time."]
FOOTER = ["© 2024 Valley Gazette. All rights reserved.", "Privacy policy | Terms of use | Cookie policy",
          "Share: Post | Message | Email | Print", "Read more »", "Back to top ↑", "Previous article | Next article"]


def boilerplate(rng):
    """A page that is mostly menus and banners around one or two real sentences."""
    ctx = make_context(rng)
    real = rng.sample(["The {T} market opens early on {weekday}.", "Fresh {crop} arrived from the farms this week.",
                       "The {R} is running high after the rain.", "Tickets for the {month} festival are now on sale.",
                       "{P} won the prize for the best {crop} last year."], rng.randint(1, 2))
    lines = rng.sample(NAV, 2) + [rng.choice(COOKIE)] + real + [rng.choice(NEWSLETTER)]
    lines += rng.sample(FOOTER, rng.randint(3, 5))
    lines += [rng.choice(NAV)] * rng.randint(1, 2) + ["Read more »"] * rng.randint(1, 3)
    return "\n".join(lines).format(**ctx)


# ---- junk: symbol soup, keyboard mashing, base64-like blobs, repeated lines -----------------
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def junk(rng):
    """Text no model should learn from. Four flavours, chosen at random."""
    flavour = rng.choice(["symbols", "keyboard", "base64", "repeated"])
    if flavour == "symbols":
        return " ".join("".join(rng.choices("#$%&*@!^~<>{}[]|\\/+=_;:", k=rng.randint(1, 6)))
                        for _ in range(rng.randint(30, 80)))
    if flavour == "keyboard":
        rows = ["qwertyuiop", "asdfghjkl", "zxcvbnm"]
        words = []
        for _ in range(rng.randint(25, 60)):
            row = rng.choice(rows)
            start = rng.randint(0, len(row) - 3)
            words.append(row[start:start + rng.randint(3, 7)] * rng.randint(1, 2))
        return " ".join(words)
    if flavour == "base64":
        blob = "".join(rng.choices(_B64, k=76 * rng.randint(8, 14)))
        lines = [blob[i:i + 76] for i in range(0, len(blob), 76)]
        return "data:image/png;base64,\n" + "\n".join(lines) + "=="
    line = rng.choice(["click here to continue", "loading...", "ERROR 0x0000 retry", "buy now buy now",
                       "lorem lorem lorem", "null null null"])
    return "\n".join([line] * rng.randint(12, 30))


# ---- too short ------------------------------------------------------------------------------
def too_short(rng):
    """Fewer than 8 words: a scrap, not a document."""
    ctx = make_context(rng)
    template = rng.choice(["Closed today.", "Rain again in {T}.", "See you soon, {P}!", "Page {day} of 30",
                           "Thanks for reading, {Q}!", "{T} market: open.", "Lost: one {colour} glove.",
                           "Happy festival, {T}!", "Sold out of {crop}.", "Ferry cancelled on {weekday}.",
                           "Good morning from {T}!", "{P} was here.", "{T} {day} {month}", "More {crop}, please!"])
    return template.format(**ctx)


# ---- other languages: Spanish-like and German-like, from our own small lexicon ----------------
ES = {"crops": dict(zip(["barley", "wheat", "beans", "cabbages", "onions", "apples", "pears", "plums", "grapes",
                         "potatoes", "carrots", "tea"],
                        ["cebada", "trigo", "judías", "coles", "cebollas", "manzanas", "peras", "ciruelas", "uvas",
                         "patatas", "zanahorias", "té"])),
      "animals": dict(zip(["goats", "sheep", "ducks", "geese", "pigs", "horses", "cows", "hens", "bees", "rabbits"],
                          ["cabras", "ovejas", "patos", "gansos", "cerdos", "caballos", "vacas", "gallinas", "abejas",
                           "conejos"])),
      "months": ["enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre",
                 "octubre", "noviembre", "diciembre"],
      "town": ["El pueblo de {T} está junto al río {R}.", "Allí viven unas {pop} personas.",
               "Los campesinos cultivan {crop} y crían {animals}.",
               "Cada año, en {month}, celebran una fiesta con música y comida.",
               "Las calles son estrechas y las casas tienen tejados rojos.",
               "Hay un puente de piedra cerca de la plaza.", "En invierno el río a veces se congela."],
      "diary": ["Hoy llueve mucho en {T}.", "Hace frío y sopla un viento fuerte.",
                "Me quedo en casa y bebo té caliente.", "Por la tarde leo un libro junto al fuego.",
                "Mañana iré al mercado si hace buen tiempo.", "Mi vecina me trajo pan fresco."]}
DE = {"crops": dict(zip(list(ES["crops"]), ["Gerste", "Weizen", "Bohnen", "Kohl", "Zwiebeln", "Äpfel", "Birnen",
                                            "Pflaumen", "Trauben", "Kartoffeln", "Karotten", "Tee"])),
      "animals": dict(zip(list(ES["animals"]), ["Ziegen", "Schafe", "Enten", "Gänse", "Schweine", "Pferde", "Kühe",
                                                "Hühner", "Bienen", "Kaninchen"])),
      "months": ["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September",
                 "Oktober", "November", "Dezember"],
      "town": ["Das Dorf {T} liegt am Fluss {R}.", "Dort leben etwa {pop} Menschen.",
               "Die Bauern bauen {crop} an und halten {animals}.",
               "Jedes Jahr im {month} feiern sie ein großes Fest mit Musik und Essen.",
               "Die Straßen sind eng und die Häuser haben rote Dächer.",
               "In der Nähe des Marktplatzes gibt es eine alte Steinbrücke.",
               "Im Winter friert der Fluss manchmal zu."],
      "diary": ["Heute regnet es den ganzen Tag in {T}.", "Es ist kalt und der Wind ist stark.",
                "Ich bleibe zu Hause und trinke heißen Tee.", "Am Abend lese ich ein Buch am Feuer.",
                "Morgen gehe ich auf den Markt, wenn das Wetter gut ist.",
                "Meine Nachbarin hat mir frisches Brot gebracht."]}


def other_language(rng, lang):
    """A town description or diary entry in Spanish-like ("es") or German-like ("de") text."""
    lex = {"es": ES, "de": DE}[lang]
    town = rng.choice(list(TOWNS.values()))
    ctx = dict(T=town.name, R=town.river, pop=town.population, crop=lex["crops"][town.crop],
               animals=lex["animals"][town.animal], month=lex["months"][MONTHS.index(town.festival_month)])
    pool = lex[rng.choice(["town", "diary"])]
    first, rest = pool[0], pool[1:]
    return " ".join([first] + sorted(rng.sample(rest, rng.randint(3, len(rest))), key=rest.index)).format(**ctx)


# ---- PII: emails, phone numbers, IPv4 addresses (all from reserved or invented ranges) --------
_DOMAINS = ["valleypost.example", "velmora-mail.example", "kestavin.test", "riverlink.example",
            "mail.marrowgate.example"]
PII_SENTENCES = ["You can write to me at {email}.", "For bookings, email {email} or call {phone}.",
                 "Call {phone} after six in the evening.", "My new number is {phone}.",
                 "The booking form was sent from {ip}.", "If the page does not load, try the town server at {ip}.",
                 "Contact the clerk: {email}.", "Questions? Ring {phone} or write to {email}."]


def pii_values(rng):
    """One fake email, phone number and IPv4 address, each wrapped in a marker."""
    name, surname = rng.choice(PEOPLE)[0].lower(), rng.choice(list(TOWNS)).lower()
    local = rng.choice([name, f"{name}.{surname}", f"{name}{rng.randint(1, 99)}", f"{name}_{surname}"])
    phone = rng.choice([f"(555) 01{rng.randint(0, 9)}-{rng.randint(1000, 9999)}",
                        f"555-01{rng.randint(0, 9)}-{rng.randint(1000, 9999)}",
                        f"+1 555 01{rng.randint(0, 9)} {rng.randint(1000, 9999)}",
                        f"07700 900{rng.randint(100, 999)}", f"+44 7700 900{rng.randint(100, 999)}"])
    ip = rng.choice([f"192.0.2.{rng.randint(1, 254)}", f"198.51.100.{rng.randint(1, 254)}",
                     f"203.0.113.{rng.randint(1, 254)}",
                     f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"])
    return {"email": mark("email", f"{local}@{rng.choice(_DOMAINS)}"), "phone": mark("phone", phone),
            "ip": mark("ip", ip)}


def add_pii(rng, marked):
    """Insert 1-2 sentences with personal data at the end of the main paragraph of `marked`."""
    paragraphs = marked.split("\n\n")
    where = len(paragraphs) - 2 if len(paragraphs) >= 3 else len(paragraphs) - 1
    extra = [s.format(**pii_values(rng)) for s in rng.sample(PII_SENTENCES, rng.randint(1, 2))]
    paragraphs[where] = " ".join([paragraphs[where]] + extra)
    return "\n\n".join(paragraphs)


# ---- near duplicates: a few small edits of an earlier document --------------------------------
SYNONYMS = {"small": "little", "quiet": "peaceful", "old": "ancient", "bought": "got", "best": "finest",
            "walked": "went", "began": "started", "evening": "night", "happy": "glad", "strong": "fierce",
            "narrow": "thin", "About": "Around", "Around": "About", "market": "fair", "morning": "day",
            "kind": "friendly", "fresh": "new", "river": "stream", "large": "big", "clean": "clear"}
ADDITIONS = {"en": ["Thanks for reading.", "More news next week.", "(Updated later the same day.)",
                    "Photos to follow.", "Edited to fix a typo."],
             "zh": ["谢谢阅读。", "下周再见。", "（当天稍后更新。）"]}


def _change_word(rng, marked):
    """Swap one word for a synonym; None if no word in SYNONYMS occurs."""
    hits = [m for m in re.finditer(r"\b[A-Za-z]+\b", marked) if m.group() in SYNONYMS]
    if not hits:
        return None
    m = rng.choice(hits)
    return marked[:m.start()] + SYNONYMS[m.group()] + marked[m.end():]


def _change_whitespace(rng, marked):
    """Double one space (outside any marked value) or add a trailing newline."""
    inside = inside_marker(marked)
    spaces = [i for i, ch in enumerate(marked) if ch == " " and not inside[i]]
    if not spaces or rng.random() < 0.2:
        return marked + "\n"
    i = rng.choice(spaces)
    return marked[:i] + rng.choice(["  ", "\n", " \t"]) + marked[i + 1:]


def near_duplicate_edit(rng, marked, lang):
    """One to three small edits: a changed word, an extra sentence, altered whitespace."""
    edits = rng.sample(["word", "add", "space"], rng.randint(1, 3))
    out = marked
    for edit in edits:
        if edit == "word":
            out = _change_word(rng, out) or out
        elif edit == "add":
            out = out + ("" if lang == "zh" else " ") + rng.choice(ADDITIONS[lang])
        else:
            out = _change_whitespace(rng, out)
    return out if out != marked else out + " " + rng.choice(ADDITIONS[lang])
