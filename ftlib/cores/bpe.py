"""Byte-level BPE from scratch: the algorithm that ``tokenizers`` runs for GPT-2, Llama 3, SmolLM2.

Text becomes UTF-8 bytes, so ids 0..255 are the 256 possible bytes and no string is ever unknown.
Training repeats one step: count adjacent pairs of ids, give the most frequent pair a new id, and
replace it everywhere (:func:`get_stats`, :func:`merge`). Encoding replays the learned merges.

What this module adds to those two functions, one idea each:

- **pre-splitting** (:data:`GPT2_PATTERN`): the text is cut into chunks (words with their leading
  space, numbers, punctuation runs, whitespace) and merges never cross a chunk boundary, exactly
  like the ``ByteLevel`` pre-tokenizer of ``tokenizers``;
- **counting per unique chunk**: a corpus has far fewer distinct chunks than chunk occurrences, so
  training counts pairs once per chunk times its frequency, and after a merge only re-counts the
  chunks that contained the merged pair;
- **tie-breaking and reuse like ``tokenizers``**: among pairs with the same count the one whose ids
  come first wins, with bytes ordered as ``tokenizers`` numbers them (see :func:`_tie_rank`); a
  merge whose bytes already are a token reuses that token's id. Both only matter for parity;
- **special tokens** (``<|im_start|>`` ...): whole strings that map to one id, cut out before BPE;
- ``save`` / ``load`` as plain JSON.
"""
from __future__ import annotations

import heapq
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import regex

# GPT-2's pre-tokenizer regex, which ``tokenizers``' ByteLevel pre-tokenizer also uses: common
# English contractions; an optional space + a run of letters; optional space + digits; optional
# space + other symbols; whitespace not followed by a non-space (so " word" keeps its space);
# any other whitespace.
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def get_stats(ids: list[int], counts: dict | None = None, weight: int = 1) -> dict:
    """Count adjacent pairs in ``ids`` (adding ``weight`` per pair into ``counts`` if given).

    >>> get_stats([1, 2, 3, 1, 2])
    {(1, 2): 2, (2, 3): 1, (3, 1): 1}
    >>> get_stats([7, 7, 7], counts={(7, 7): 10})
    {(7, 7): 12}
    """
    counts = {} if counts is None else counts
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + weight
    return counts


def merge(ids: list[int], pair: tuple[int, int], idx: int) -> list[int]:
    """Replace every occurrence of ``pair`` in ``ids`` by ``idx``, scanning left to right.

    >>> merge([1, 2, 3, 1, 2], (1, 2), 4)
    [4, 3, 4]
    >>> merge([5, 5, 5], (5, 5), 6)   # overlapping: the leftmost pair wins
    [6, 5]
    """
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(idx)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's printable stand-in character for each byte (``' '`` -> ``'Ġ'``, ``'\\n'`` -> ``'Ċ'``).

    Printable Latin-1 bytes stand for themselves; the other 68 bytes get the characters 256, 257, ...
    ``tokenizers`` stores byte-level tokens as strings of these characters.

    >>> bytes_to_unicode()[ord("a")], bytes_to_unicode()[ord(" ")]
    ('a', 'Ġ')
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    mapping, extra = {b: chr(b) for b in printable}, 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return dict(sorted(mapping.items()))


# tokenizers numbers the 256 byte tokens in the order of their stand-in characters, and breaks
# ties between equally frequent pairs by the smaller ids. To pick the same pair we rank bytes the
# same way; merged tokens (ids >= 256) rank after all bytes, in creation order, as there.
_BYTE_RANK = {b: r for r, (b, _) in enumerate(sorted(bytes_to_unicode().items(), key=lambda kv: kv[1]))}


def _tie_rank(idx: int) -> int:
    return _BYTE_RANK[idx] if idx < 256 else idx


@dataclass
class BPETokenizer:
    """A trained byte-level BPE tokenizer: ids 0..255 are bytes, then merges, then special tokens."""
    merges: list[tuple[tuple[int, int], int]] = field(default_factory=list)  # ((a, b), new_id), in training order
    special_tokens: dict[str, int] = field(default_factory=dict)             # "<|im_start|>" -> id
    pattern: str = GPT2_PATTERN                                               # pre-splitting regex
    cache_size: int = 100_000                                                 # chunks encode remembers (0: none)

    def __post_init__(self):
        self.vocab = {i: bytes([i]) for i in range(256)}           # id -> bytes
        for (a, b), idx in self.merges:
            self.vocab[idx] = self.vocab[a] + self.vocab[b]
        self.ranks = {pair: r for r, (pair, _) in enumerate(self.merges)}  # encode applies low ranks first
        self.merged = dict(self.merges)                                    # pair -> new id
        self.inverse_special = {i: s for s, i in self.special_tokens.items()}
        self._split = regex.compile(self.pattern)
        self._special_split = (regex.compile("(" + "|".join(regex.escape(s) for s in
                                sorted(self.special_tokens, key=len, reverse=True)) + ")")
                               if self.special_tokens else None)
        self._cache: dict[str, list[int]] = {}

    @property
    def vocab_size(self) -> int:
        return len(self.vocab) + len(self.special_tokens)

    # -- encoding ---------------------------------------------------------------------------------
    def _encode_chunk(self, chunk: str) -> list[int]:
        if chunk in self._cache:
            return self._cache[chunk]
        ids = list(chunk.encode("utf-8"))
        while len(ids) >= 2:
            # the pair that was learned earliest among those present; stop when none was learned
            pair = min(zip(ids, ids[1:]), key=lambda p: self.ranks.get(p, float("inf")))
            if pair not in self.ranks:
                break
            ids = merge(ids, pair, self.merged[pair])
        if len(self._cache) < self.cache_size:
            self._cache[chunk] = ids
        return ids

    def encode_ordinary(self, text: str) -> list[int]:
        """Ids of ``text``, treating special-token strings as ordinary text."""
        return [i for chunk in self._split.findall(text) for i in self._encode_chunk(chunk)]

    def encode(self, text: str) -> list[int]:
        """Ids of ``text``; a special token written in the text (``"<|im_end|>"``) becomes its one id."""
        if self._special_split is None:
            return self.encode_ordinary(text)
        ids = []
        for part in self._special_split.split(text):
            ids.extend([self.special_tokens[part]] if part in self.special_tokens else self.encode_ordinary(part))
        return ids

    def decode(self, ids: list[int]) -> str:
        """Text of ``ids``; a cut through a multi-byte character shows as U+FFFD."""
        data = b"".join(self.inverse_special[i].encode("utf-8") if i in self.inverse_special
                        else self.vocab[i] for i in ids)
        return data.decode("utf-8", errors="replace")

    # -- saving -----------------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the merges, special tokens and pattern as JSON (the vocabulary follows from them)."""
        Path(path).write_text(json.dumps({
            "format": "ftlib-bpe-1", "pattern": self.pattern, "special_tokens": self.special_tokens,
            "merges": [[a, b, idx] for (a, b), idx in self.merges]}, ensure_ascii=False, indent=0))

    @classmethod
    def load(cls, path: str | Path) -> "BPETokenizer":
        data = json.loads(Path(path).read_text())
        if data.get("format") != "ftlib-bpe-1":
            raise ValueError(f"{path}: not an ftlib BPE file (format {data.get('format')!r})")
        return cls(merges=[((a, b), idx) for a, b, idx in data["merges"]],
                   special_tokens=data["special_tokens"], pattern=data["pattern"])


def train_bpe(texts, vocab_size: int, special_tokens: list[str] = (), *, pattern: str = GPT2_PATTERN,
              progress: bool = False) -> BPETokenizer:
    """Learn merges until the vocabulary (256 bytes + merges + ``special_tokens``) has ``vocab_size`` entries.

    ``texts`` is any iterable of strings. Stops early if no pair occurs any more.
    """
    n_target = vocab_size - len(special_tokens)
    if n_target < 256:
        raise ValueError(f"vocab_size {vocab_size} must leave room for the 256 bytes and {len(special_tokens)} special tokens")
    # 1. Pre-split and count unique chunks: merges never cross a chunk boundary.
    split = regex.compile(pattern)
    chunk_counts = Counter(chunk for text in texts for chunk in split.findall(text))
    words = [list(chunk.encode("utf-8")) for chunk in chunk_counts]   # each chunk as a list of ids
    freqs = list(chunk_counts.values())

    # 2. Pair counts over all chunks (weighted by frequency), and which chunks hold each pair.
    counts: dict[tuple[int, int], int] = {}
    where: dict[tuple[int, int], set[int]] = {}
    for w, (ids, freq) in enumerate(zip(words, freqs)):
        get_stats(ids, counts, freq)
        for pair in zip(ids, ids[1:]):
            where.setdefault(pair, set()).add(w)

    # 3. A max-heap of (count, tie rank): entries go stale when counts change; a popped entry is
    # used only if its count is still current, otherwise it goes back in with the right count.
    def key(pair):
        return (-counts[pair], _tie_rank(pair[0]), _tie_rank(pair[1]), pair)
    heap = [key(p) for p in counts]
    heapq.heapify(heap)

    vocab = {i: bytes([i]) for i in range(256)}
    by_bytes = {v: k for k, v in vocab.items()}
    merges = []
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=n_target - 256, desc="BPE merges")
    while len(vocab) < n_target and heap:
        neg_count, _, _, pair = heapq.heappop(heap)
        if -neg_count != counts.get(pair, 0):
            if counts.get(pair, 0) > 0:
                heapq.heappush(heap, key(pair))
            continue
        # 4. The new token; if its bytes already are a token (reached by another merge path),
        # reuse that id, as tokenizers does.
        new_bytes = vocab[pair[0]] + vocab[pair[1]]
        idx = by_bytes.get(new_bytes, len(vocab))
        if idx == len(vocab):
            vocab[idx], by_bytes[new_bytes] = new_bytes, idx
            if bar:
                bar.update(1)
        merges.append((pair, idx))
        # 5. Re-count only the chunks that held the pair: remove their old pairs, merge, add back.
        touched = set()
        for w in where.pop(pair):
            ids, freq = words[w], freqs[w]
            for p in zip(ids, ids[1:]):
                counts[p] -= freq
            words[w] = ids = merge(ids, pair, idx)
            for p in zip(ids, ids[1:]):
                counts[p] = counts.get(p, 0) + freq
                where.setdefault(p, set()).add(w)
                touched.add(p)
        counts.pop(pair, None)
        for p in touched:  # pairs that gained count (new ones) need a fresh heap entry
            if p[0] == idx or p[1] == idx:
                heapq.heappush(heap, key(p))
    if bar:
        bar.close()
    specials = {s: len(vocab) + k for k, s in enumerate(special_tokens)}  # right after the last merge
    return BPETokenizer(merges=merges, special_tokens=specials, pattern=pattern)
