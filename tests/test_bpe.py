"""ftlib.cores.bpe: the two pure functions, round trips, special tokens, save/load, and parity with tokenizers."""
import doctest
import json
import random

import pytest

import ftlib.cores.bpe as bpe
from ftlib.cores.bpe import BPETokenizer, bytes_to_unicode, get_stats, merge, train_bpe
from ftlib.engine.pretrain import SPECIAL_TOKENS, train_tokenizer

ENGLISH = """The market opens at seven, and the baker is always the first to arrive.
She sells bread, rolls and small cakes; on Saturdays there's a queue before the doors open.
Her brother repairs bicycles two streets away. He says the trick is patience, not strength.
When it rains, they don't open the stalls outside, and the town feels quieter than it is.
In 2024 the council spent 1,250,000 euros on new roads, and people still argue about it."""
CHINESE = "机器学习是人工智能的一个分支。我们今天去市场买菜，西红柿的价格是每公斤3元。天气很好，大家都很高兴。"
OTHER = "¿Qué tal? Grüße aus München! Emoji: 👋🏽 🚲 — naïve café, x² ≤ 10 % … done."


def corpus(n_docs: int = 300, seed: int = 0) -> list[str]:
    """Small mixed corpus: shuffled English sentences with numbers, ~10% Chinese, a little of the rest."""
    rng = random.Random(seed)
    sentences = ENGLISH.split("\n")
    docs = []
    for i in range(n_docs):
        if i % 10 == 0:
            docs.append(CHINESE[rng.randrange(10):] + f" {rng.randrange(100)}")
        elif i % 25 == 1:
            docs.append(OTHER)
        else:
            docs.append(" ".join(rng.sample(sentences, 3)) + f" Order {rng.randrange(1000)}.\n\n  Total:\t{rng.random():.2f}")
    return docs


SAMPLES = [
    "The baker's brother doesn't sell bread; he'll repair 12 bicycles.",
    CHINESE,
    OTHER,
    "  leading spaces,\ttabs\nnew lines\n\n\nand trailing   ",
    "",
]


@pytest.fixture(scope="module")
def trained():
    texts = corpus()
    return texts, train_bpe(texts, 600, SPECIAL_TOKENS), train_tokenizer(texts, 600)


def test_docstring_examples():
    assert doctest.testmod(bpe).failed == 0


def test_get_stats_and_merge_by_hand():
    # "aaabdaaabac": the textbook example. (a, a) is the most frequent pair (4 times).
    ids = list(b"aaabdaaabac")
    stats = get_stats(ids)
    assert stats[(97, 97)] == 4 and max(stats, key=stats.get) == (97, 97)
    assert merge(ids, (97, 97), 256) == [256, 97, 98, 100, 256, 97, 98, 97, 99]
    assert merge([1, 2], (3, 4), 5) == [1, 2]          # absent pair: unchanged
    assert get_stats([1]) == {} and merge([], (1, 2), 3) == []


def test_training_learns_merges_and_compresses(trained):
    texts, ours, _ = trained
    assert len(ours.merges) == 600 - 256 - len(SPECIAL_TOKENS)  # the texts are rich enough to fill the vocab
    assert ours.vocab_size == 600
    ids = ours.encode(texts[2])                                # an English document
    assert len(ids) < len(texts[2].encode("utf-8")) / 2         # merges actually compress


@pytest.mark.parametrize("text", SAMPLES)
def test_round_trip(trained, text):
    _, ours, _ = trained
    assert ours.decode(ours.encode(text)) == text


def test_special_tokens(trained):
    _, ours, _ = trained
    ids = {s: ours.special_tokens[s] for s in SPECIAL_TOKENS}
    assert sorted(ids.values()) == list(range(600 - 5, 600))   # after the last merge
    text = "<|im_start|>user\nHi there<|im_end|>\n"
    enc = ours.encode(text)
    assert enc[0] == ids["<|im_start|>"] and ids["<|im_end|>"] in enc
    assert ours.decode(enc) == text
    assert ids["<|im_start|>"] not in ours.encode_ordinary(text)   # ordinary: just text
    assert ours.decode(ours.encode_ordinary(text)) == text


def test_save_and_load(trained, tmp_path):
    _, ours, _ = trained
    ours.save(tmp_path / "bpe.json")
    again = BPETokenizer.load(tmp_path / "bpe.json")
    for text in SAMPLES:
        assert again.encode(text) == ours.encode(text)
    assert again.vocab == ours.vocab and again.special_tokens == ours.special_tokens
    (tmp_path / "bad.json").write_text('{"format": "something-else"}')
    with pytest.raises(ValueError, match="not an ftlib BPE file"):
        BPETokenizer.load(tmp_path / "bad.json")


def to_tokenizers_id(idx: int, ours: BPETokenizer) -> int:
    """The one difference: id numbering. tokenizers puts the special tokens first (0..4), then the
    256 bytes sorted by their GPT-2 stand-in character (so '!' is 5 and ' ' = 'Ġ' comes after 'ÿ'),
    then the merged tokens in the same order as ours. ftlib.cores.bpe keeps byte b at id b."""
    if idx in ours.inverse_special:
        return SPECIAL_TOKENS.index(ours.inverse_special[idx])
    if idx < 256:
        return len(SPECIAL_TOKENS) + bpe._BYTE_RANK[idx]
    return idx + len(SPECIAL_TOKENS)


def test_parity_with_tokenizers(trained):
    _, ours, hf = trained
    b2u = bytes_to_unicode()

    def token_string(idx):
        return "".join(b2u[b] for b in ours.vocab[idx])

    # 1. The same merges, in the same order (tie-breaking included), as byte-level strings.
    hf_vocab = hf.backend_tokenizer.get_vocab()
    hf_merges = json.loads(hf.backend_tokenizer.to_str())["model"]["merges"]
    hf_merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in hf_merges]
    our_merges = [(token_string(a), token_string(b)) for (a, b), _ in ours.merges]
    assert len(our_merges) > 300
    assert our_merges == hf_merges
    # 2. The same vocabulary, as strings, and the exact id permutation between the two.
    assert len(hf_vocab) == ours.vocab_size
    for idx in range(ours.vocab_size):
        tok = ours.inverse_special.get(idx) or token_string(idx)
        assert hf_vocab[tok] == to_tokenizers_id(idx, ours), tok
    # 3. The same ids for any text, after that permutation: English, Chinese, emoji, specials.
    for text in SAMPLES + ["<|im_start|>user\nWhat does the baker sell?<|im_end|>\n"]:
        theirs = hf.encode(text, add_special_tokens=False)
        mine = ours.encode(text)
        assert [to_tokenizers_id(i, ours) for i in mine] == theirs, text
    # ... and the permutation is not the identity, so the mapping step above does real work
    assert any(to_tokenizers_id(i, ours) != i for i in ours.encode(SAMPLES[0]))


def test_training_is_deterministic_and_vocab_too_small_is_an_error():
    texts = corpus(40, seed=1)
    assert train_bpe(texts, 300).merges == train_bpe(texts, 300).merges
    with pytest.raises(ValueError, match="must leave room"):
        train_bpe(texts, 258, SPECIAL_TOKENS)


def test_parity_with_tokenizers_on_random_small_alphabets():
    """Tiny alphabets make many equal counts and overlapping pairs ("aaa"): the hard cases for
    tie-breaking and merge order. Merges and tokens must still be identical."""
    b2u = bytes_to_unicode()
    for seed in range(30):
        rng = random.Random(seed)
        alphabet = rng.choice(["ab", "aab\n", "ab c", "xyz 1", "ab面"])
        texts = ["".join(rng.choice(alphabet) for _ in range(rng.randrange(5, 60))) for _ in range(rng.randrange(5, 40))]
        vocab_size = rng.randrange(270, 400)
        ours, hf = train_bpe(texts, vocab_size, SPECIAL_TOKENS), train_tokenizer(texts, vocab_size)

        def token_string(idx):
            return "".join(b2u[b] for b in ours.vocab[idx])

        hf_merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m)
                     for m in json.loads(hf.backend_tokenizer.to_str())["model"]["merges"]]
        assert ours.merges, seed
        assert [(token_string(a), token_string(b)) for (a, b), _ in ours.merges] == hf_merges, seed
        assert len(hf) == ours.vocab_size, seed   # both stop early when no pair is left
        for text in texts[:5]:
            assert [to_tokenizers_id(i, ours) for i in ours.encode(text)] == hf.encode(text, add_special_tokens=False)
