"""Byte-level byte-pair encoding (BPE), written from scratch.

BPE starts from the 256 possible byte values as its first 256 tokens, so *any* text
(Chinese, emoji, accents, code) can be encoded: nothing is ever out of vocabulary. Training
then repeatedly finds the most frequent pair of adjacent tokens and gives it a new id,
until the vocabulary has the size asked for. Encoding replays those merges on new text;
decoding concatenates the bytes of the tokens and decodes them as UTF-8.

Example::

    from textft_lib.bpe import BPETokenizer
    tok = BPETokenizer().train(["low lower lowest", "new newer newest"], vocab_size=270)
    ids = tok.encode("lowest newest")        # list[int], every id < 270
    assert tok.decode(ids) == "lowest newest"
    tok.save("bpe.json"); tok2 = BPETokenizer.load("bpe.json")

How the training stays fast (roughly linear in the corpus):

1. **Pre-tokenize once.** A regular expression (``SPLIT_PATTERN``) cuts the text into
   "words" (letters with their leading space, digit groups, punctuation runs, whitespace).
   Merges never cross these boundaries. Identical words are counted once with a
   frequency, so the ~620k chunks of Wikipedia's ~480k words shrink to ~48k distinct ones.
2. **Count pairs once.** ``pair_counts[(a, b)]`` is the number of times the pair occurs,
   weighted by word frequency; ``where[(a, b)]`` is the set of words that contain it.
3. **Update incrementally.** A merge only visits the words in ``where[(a, b)]`` and only
   changes the counts of pairs inside those words. A heap with lazy deletion finds the
   most frequent pair without scanning all pairs.

Tie-breaking (documented, deterministic, and used by the naive reference in the tests
and the lesson): among the pairs with the highest count, merge the one with the smallest
first token id, then the smallest second token id. In Python terms the chosen pair is
``min(counts, key=lambda p: (-counts[p], p))``.
"""

from __future__ import annotations

import heapq
import json
import numbers
import warnings
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import regex
from tqdm.auto import tqdm

__all__ = ["SPLIT_PATTERN", "BPETokenizer", "pretokenize", "merge_pair", "most_frequent_pair"]

#: The pre-tokenizer: every character of the text belongs to exactly one match, so
#: ``"".join(pretokenize(t)) == t`` for every string. Read it one line at a time:
SPLIT_PATTERN = r"""
    '(?i:[sdmt]|ll|ve|re)            # English contractions: 's 't 'm 'd 'll 've 're (any case)
  | \ ?\p{L}[\p{L}\p{M}]*            # a word: letters (and combining marks), with one leading space
  | \ ?\p{N}{1,3}                    # numbers in groups of at most three digits: 2026 -> 202 6
  | \ ?[^\s\p{L}\p{N}]+              # a run of punctuation or symbols, with one leading space
  | \s+(?!\S)                        # whitespace, leaving the last space to the next word
  | \s+                              # any remaining whitespace
"""
_SPLIT_RE = regex.compile(SPLIT_PATTERN, regex.VERBOSE)

_FORMAT = "textft-bpe"
_FORMAT_VERSION = 1


def pretokenize(text: str) -> list[str]:
    """Cut ``text`` into the chunks that BPE merges never cross.

    Example::

        >>> pretokenize("Don't panic, it's 2026!")
        ['Don', "'t", ' panic', ',', ' it', "'s", ' 202', '6', '!']
    """
    if not isinstance(text, str):
        raise TypeError(f"pretokenize expects a str, got {type(text).__name__}")
    return _SPLIT_RE.findall(text)


def merge_pair(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace every occurrence of ``pair`` in ``ids`` by ``new_id``, scanning left to right.

    Overlapping occurrences are merged greedily from the left: merging ``(a, a)`` in
    ``[a, a, a]`` gives ``[aa, a]``.

    Example::

        >>> merge_pair([1, 2, 3, 1, 2], (1, 2), 99)
        [99, 3, 99]
    """
    a, b = pair
    out: list[int] = []
    i, n = 0, len(ids)
    while i < n:
        if i < n - 1 and ids[i] == a and ids[i + 1] == b:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def most_frequent_pair(counts: dict[tuple[int, int], int]) -> tuple[int, int]:
    """The pair BPE merges next: the highest count, ties broken by the smaller ids.

    This is the course's tie-breaking rule, shared by the fast trainer and every
    reference implementation. Example::

        >>> most_frequent_pair({(5, 9): 3, (4, 7): 3, (1, 1): 2})
        (4, 7)
    """
    if not counts:
        raise ValueError("no pairs to choose from: every word is a single token")
    return min(counts, key=lambda p: (-counts[p], p))


class BPETokenizer:
    """A byte-level BPE tokenizer: ``train``, ``encode``, ``decode``, ``save``, ``load``.

    Token ids ``0..255`` are the raw bytes; id ``256 + k`` is the ``k``-th merge.
    ``vocab_size = 256 + number of merges``.

    ``pattern`` is the pre-tokenizer, written in the ``regex`` module's VERBOSE syntax
    (whitespace and ``#`` comments are ignored, so a literal space is written ``\\ ``).
    For exact round trips its matches must cover every character, as ``SPLIT_PATTERN``'s do.
    """

    def __init__(self, pattern: str = SPLIT_PATTERN) -> None:
        self.pattern = pattern
        self._split = regex.compile(pattern, regex.VERBOSE)
        if self._split.groups:  # findall would return the groups, not the whole chunks
            raise ValueError(f"the pattern must not contain capturing groups ({self._split.groups} found): "
                             "write (?:...) instead of (...)")
        self.merges: dict[tuple[int, int], int] = {}  # (a, b) -> new id, in training order
        self.vocab: dict[int, bytes] = {i: bytes([i]) for i in range(256)}  # id -> its bytes
        self._trained = False
        self._cache: dict[str, tuple[int, ...]] = {}  # chunk -> ids (encodings of repeated words)
        self.cache_size = 100_000  # at most this many chunks are remembered

    # ------------------------------------------------------------------ properties
    @property
    def vocab_size(self) -> int:
        """``256`` byte tokens plus one token per merge."""
        return 256 + len(self.merges)

    def __repr__(self) -> str:
        state = f"vocab_size={self.vocab_size}" if self._trained else "untrained"
        return f"BPETokenizer({state})"

    # ------------------------------------------------------------------ training
    def _count_words(self, texts: str | Iterable[str]) -> Counter[str]:
        """Pre-tokenize every text and count the distinct chunks."""
        if isinstance(texts, str):
            texts = [texts]
        elif isinstance(texts, (bytes, bytearray)):
            raise TypeError("train expects str (or an iterable of str), got bytes: decode it first")
        counts: Counter[str] = Counter()
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"train expects str texts, but item {i} is a {type(text).__name__}")
            counts.update(self._split.findall(text))
        return counts

    def train(self, texts: str | Iterable[str], vocab_size: int, *, progress: bool = False) -> "BPETokenizer":
        """Learn ``vocab_size - 256`` merges from ``texts`` (one string or many documents).

        Documents are pre-tokenized separately, so no chunk spans two documents. Training
        stops early, with a warning, when no adjacent pair is left to merge (a tiny corpus).
        Returns ``self`` so that ``BPETokenizer().train(...)`` can be chained;
        ``progress=True`` shows a progress bar over the merges.

        Example::

            tok = BPETokenizer().train("aaabdaaabac", vocab_size=259)
            tok.merges   # {(97, 97): 256, (97, 98): 257, (256, 257): 258}
        """
        if not isinstance(vocab_size, numbers.Integral) or isinstance(vocab_size, bool):
            raise TypeError(f"vocab_size must be an int, got {type(vocab_size).__name__}")
        vocab_size = int(vocab_size)
        if vocab_size < 256:
            raise ValueError(f"vocab_size must be at least 256 (one token per byte value), got {vocab_size}")
        num_merges = vocab_size - 256
        # One method on purpose: lesson 01 reads the algorithm in its four numbered steps,
        # with the heap's lazy deletion in place; splitting it would scatter the invariants.

        # 1. distinct words and their frequencies, each word as a list of byte ids
        word_counts = self._count_words(texts)
        words: list[list[int]] = [list(w.encode("utf-8")) for w in word_counts]
        freqs: list[int] = list(word_counts.values())

        # 2. pair counts (weighted by word frequency) and which words contain each pair
        pair_counts: dict[tuple[int, int], int] = {}
        where: dict[tuple[int, int], set[int]] = {}
        for wi, (word, f) in enumerate(zip(words, freqs)):
            for pair in zip(word, word[1:]):
                pair_counts[pair] = pair_counts.get(pair, 0) + f
                where.setdefault(pair, set()).add(wi)

        # A max-heap of (-count, a, b): the smallest entry is the highest count, and
        # among equal counts the smallest (a, b) -- exactly the tie-breaking rule.
        # Entries go stale when a count changes; a popped entry is used only if its
        # count still equals the current one ("lazy deletion").
        heap = [(-c, a, b) for (a, b), c in pair_counts.items()]
        heapq.heapify(heap)

        merges: dict[tuple[int, int], int] = {}
        vocab = {i: bytes([i]) for i in range(256)}
        bar = None
        if progress:
            bar = tqdm(total=num_merges, desc="BPE merges", unit="merge")
        while len(merges) < num_merges:
            # 3. the most frequent pair that is still current
            pair = None
            while heap:
                neg, a, b = heapq.heappop(heap)
                if pair_counts.get((a, b), 0) == -neg:
                    pair = (a, b)
                    break
            if pair is None:
                warnings.warn(f"BPE training stopped after {len(merges)} merges: no adjacent pairs are "
                              f"left (asked for {num_merges}); vocab_size is {256 + len(merges)}",
                              stacklevel=2)
                break
            new_id = 256 + len(merges)
            merges[pair] = new_id
            vocab[new_id] = vocab[pair[0]] + vocab[pair[1]]
            if bar is not None:
                bar.update(1)

            # 4. rewrite only the words that contain the pair, and fix their pair counts
            touched: set[tuple[int, int]] = set()
            for wi in where.pop(pair):
                word = words[wi]
                new_word = merge_pair(word, pair, new_id)
                if len(new_word) == len(word):
                    continue  # a stale entry in `where`: the pair left this word earlier
                f = freqs[wi]
                for p in zip(word, word[1:]):
                    pair_counts[p] -= f
                    touched.add(p)
                for p in zip(new_word, new_word[1:]):
                    pair_counts[p] = pair_counts.get(p, 0) + f
                    touched.add(p)
                    s = where.get(p)
                    if s is None:
                        where[p] = {wi}
                    else:
                        s.add(wi)
                words[wi] = new_word
            for p in touched:
                c = pair_counts[p]
                if c > 0:
                    heapq.heappush(heap, (-c, p[0], p[1]))
                else:
                    del pair_counts[p]
                    where.pop(p, None)

        if bar is not None:
            bar.close()
        self.merges, self.vocab = merges, vocab
        self._cache.clear()
        self._trained = True
        return self

    def subset(self, num_merges: int) -> "BPETokenizer":
        """A new tokenizer that knows only the first ``num_merges`` merges.

        Training is greedy, so this is exactly the tokenizer that training with
        ``vocab_size = 256 + num_merges`` would have produced on the same text: one
        training run gives every smaller vocabulary. Example::

            small = tok.subset(1000)    # small.vocab_size == 1256
        """
        self._require_trained()
        if not 0 <= num_merges <= len(self.merges):
            raise ValueError(f"num_merges must be between 0 and {len(self.merges)}, got {num_merges}")
        out = BPETokenizer(pattern=self.pattern)
        for pair, new_id in self.merges.items():
            if new_id >= 256 + num_merges:
                break
            out.merges[pair] = new_id
            out.vocab[new_id] = self.vocab[new_id]
        out._trained = True
        return out

    # ------------------------------------------------------------------ encoding
    def _require_trained(self) -> None:
        if not self._trained:
            raise RuntimeError("this BPETokenizer is not trained: call train(...) or BPETokenizer.load(path) first")

    def _encode_chunk(self, chunk: str) -> tuple[int, ...]:
        """Apply the merges to one pre-tokenized chunk, lowest merge id first."""
        ids = list(chunk.encode("utf-8"))
        merges = self.merges
        while len(ids) >= 2:
            # the pair that was learned earliest; pairs never learned rank last
            best = min(zip(ids, ids[1:]), key=lambda p: merges.get(p, 1 << 62))
            new_id = merges.get(best)
            if new_id is None:
                break
            ids = merge_pair(ids, best, new_id)
        return tuple(ids)

    def encode(self, text: str) -> list[int]:
        """Encode ``text`` into token ids (each in ``range(vocab_size)``).

        The encodings of repeated chunks are cached, so common words cost one dict lookup.

        Example::

            ids = tok.encode("héllo 世界 🙂")   # any Unicode text works: byte-level
        """
        if not isinstance(text, str):
            raise TypeError(f"encode expects a str, got {type(text).__name__}")
        self._require_trained()
        cache, out, covered = self._cache, [], 0
        for chunk in self._split.findall(text):
            covered += len(chunk)
            ids = cache.get(chunk)
            if ids is None:
                ids = self._encode_chunk(chunk)
                if len(cache) < self.cache_size:
                    cache[chunk] = ids
            out.extend(ids)
        if covered != len(text):               # a custom pattern that misses characters drops them
            raise ValueError(f"the pre-tokenizer pattern matched {covered} of the text's {len(text)} characters, "
                             "so decode(encode(text)) would lose the rest: the pattern must match every "
                             "character (end it with an alternative such as \\s+ | .)")
        return out

    def encode_batch(self, texts: Iterable[str]) -> list[list[int]]:
        """``[encode(t) for t in texts]``."""
        if isinstance(texts, (str, bytes)):
            raise TypeError("encode_batch expects a list of texts, not one string: use encode(text), or [text]")
        return [self.encode(t) for t in texts]

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """The raw bytes of ``ids`` (a slice of an encoding can end inside a UTF-8 character)."""
        self._require_trained()
        vocab = self.vocab
        if hasattr(ids, "tolist"):                # a tensor or array: plain ints (tensors hash by identity)
            ids = ids.tolist()
        ids = list(ids)
        for i in ids:
            if isinstance(i, bool) or not isinstance(i, numbers.Integral):
                raise TypeError(f"token ids must be integers, got {type(i).__name__} {i!r}")
        try:
            return b"".join(vocab[i] for i in ids)
        except KeyError as err:
            raise ValueError(f"token id {err.args[0]!r} is not in the vocabulary (0..{self.vocab_size - 1})") from None

    def decode(self, ids: Iterable[int]) -> str:
        """Token ids back to text. Bytes that are not valid UTF-8 (e.g. half a character
        from a truncated sequence) become U+FFFD instead of raising."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def pieces(self, text: str) -> list[str]:
        """The tokens of ``text`` as readable strings, e.g. ``['The', ' quick', ' br', 'own']``.
        A token that is only part of a UTF-8 character is shown as its bytes, like ``<e4>``."""
        out = []
        for i in self.encode(text):
            raw = self.vocab[i]
            try:
                out.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                out.append("".join(f"<{x:02x}>" for x in raw))
        return out

    # ------------------------------------------------------------------ saving
    def save(self, path: str | Path) -> Path:
        """Write the tokenizer as JSON: the pre-tokenizer pattern and the ordered merges.

        The vocabulary is not stored: it follows from the merges. Example::

            tok.save("bpe.json")
            assert BPETokenizer.load("bpe.json").encode(s) == tok.encode(s)
        """
        self._require_trained()
        path = Path(path)
        ordered = sorted(self.merges.items(), key=lambda kv: kv[1])
        payload = {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "pattern": self.pattern,
            "merges": [[a, b] for (a, b), _ in ordered],
        }
        path.write_text(json.dumps(payload, indent=0), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> "BPETokenizer":
        """Read a tokenizer written by ``save``; checks that the merges are consistent."""
        path = Path(path)
        payload = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
            raise ValueError(f"{path} is not a textft BPE file (expected \"format\": \"{_FORMAT}\")")
        if payload.get("version") != _FORMAT_VERSION:
            raise ValueError(f"{path} has format version {payload.get('version')!r}; this code reads {_FORMAT_VERSION}")
        tok = cls(pattern=payload["pattern"])
        for k, pair in enumerate(payload["merges"]):
            new_id = 256 + k
            if (not isinstance(pair, list) or len(pair) != 2
                    or not all(isinstance(x, int) and 0 <= x < new_id for x in pair)):
                raise ValueError(f"{path}: merge {k} is {pair!r}; expected two ids below {new_id}")
            a, b = pair
            if (a, b) in tok.merges:
                raise ValueError(f"{path}: merge {k} repeats the pair {pair!r}")
            tok.merges[(a, b)] = new_id
            tok.vocab[new_id] = tok.vocab[a] + tok.vocab[b]
        tok._trained = True
        return tok
