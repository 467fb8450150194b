"""Text preprocessing: normalization, cleaning, word tokenizers, a vocabulary, and padding.

Example::

    from textft_lib import text
    clean = text.normalize("Ｃａｆé  ﬁnal", lowercase=True)       # 'café final'
    tokens = text.regex_tokenize("Don't split state-of-the-art URLs: https://x.org/a")
    vocab = text.Vocab.build([tokens], min_freq=1)               # [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4 ...
    ids, mask = vocab.encode_batch([tokens, tokens[:3]], max_length=8)
    # ids: LongTensor (2, L), mask: BoolTensor (2, L), True where a real token is

The vocabulary and the batch helpers are the ones later lessons use for their
word-level models: ``Vocab`` maps tokens to ids with special tokens at fixed places,
``pad_batch`` turns lists of ids of different lengths into one rectangular tensor and
an attention mask (``True`` = a real token, the convention of
``textft_lib.attention``'s ``key_padding_mask``).
"""

from __future__ import annotations

import json
import operator
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import regex

from textft_lib.checks import string_list

__all__ = [
    "PAD", "UNK", "CLS", "SEP", "MASK", "SPECIAL_TOKENS",
    "normalize", "strip_wiki_markup", "whitespace_tokenize", "regex_tokenize", "WORD_PATTERN",
    "split_sentences", "remove_stopwords", "count_tokens", "oov_rate", "Vocab", "truncate", "pad_batch",
]

# ----------------------------------------------------------------------------- special tokens

PAD = "[PAD]"    # fills the short sequences of a batch; masked out of attention and loss
UNK = "[UNK]"    # stands for any token the vocabulary does not have
CLS = "[CLS]"    # first token of a sequence; its vector often summarizes the sequence
SEP = "[SEP]"    # ends a sequence (or separates the two sentences of a pair)
MASK = "[MASK]"  # hides a token that a masked language model must predict
#: The special tokens, in the order they get ids 0..4 in a ``Vocab``.
SPECIAL_TOKENS: tuple[str, ...] = (PAD, UNK, CLS, SEP, MASK)


def _check_str(value: Any, what: str) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{what} expects a str, got {type(value).__name__}")


def _as_id(x: Any) -> int:
    """``x`` as an int id: a Python, NumPy or torch integer. A bool, or a float that
    ``int()`` would silently truncate, raises ``TypeError``."""
    if isinstance(x, bool) or str(getattr(x, "dtype", "")) == "torch.bool":
        raise TypeError(f"{x!r} is a bool, not an integer id")
    try:
        return operator.index(x)
    except TypeError:
        raise TypeError(f"{x!r} ({type(x).__name__}) is not an integer id: cast or round the ids first") from None


# ----------------------------------------------------------------------------- normalization

def normalize(text: str, *, form: str = "NFKC", lowercase: bool = False, collapse_spaces: bool = True) -> str:
    """Unicode-normalize ``text``, optionally case-fold it, and collapse runs of spaces.

    * ``form="NFKC"`` folds compatibility characters: full-width ``Ａ`` -> ``A``, the
      ligature ``ﬁ`` -> ``fi``, ``①`` -> ``1``, and joins ``e`` + combining accent into ``é``.
      ``"NFC"`` only composes; ``None`` skips this step.
    * ``lowercase=True`` uses ``str.casefold`` (``"Straße"`` -> ``"strasse"``), which is
      stronger than ``lower()``. It loses information: "US" and "us" become one word.
    * ``collapse_spaces`` turns every run of whitespace into one space and strips the ends.

    Example::

        >>> normalize("Ｔｈｅ ﬁrst  café", lowercase=True)
        'the first café'
    """
    _check_str(text, "normalize")
    if form is not None:
        if form not in {"NFC", "NFD", "NFKC", "NFKD"}:
            raise ValueError(f"unknown Unicode normal form {form!r}: use NFC, NFD, NFKC, NFKD or None")
        text = unicodedata.normalize(form, text)
    if lowercase:
        text = text.casefold()
    if collapse_spaces:
        text = " ".join(text.split())
    return text


# {{...}}, nested; single braces inside (as in "{|}~") are allowed
_TEMPLATE = regex.compile(r"\{\{(?:[^{}]++|\{(?!\{)|\}(?!\})|(?R))*\}\}")
_TABLE = regex.compile(r"\{\|(?:[^{}]|\{(?!\|)|\}(?!\})|(?R))*?\|\}", regex.S)
_REF = regex.compile(r"<ref[^>/]*/>|<ref[^>]*>.*?</ref>", regex.S | regex.I)
_COMMENT = regex.compile(r"<!--.*?-->", regex.S)
# blocks whose content is not prose: formulas, chemistry, galleries, code listings
_BLOCK = regex.compile(r"<(math|chem|ce|gallery|timeline|score|syntaxhighlight|source)\b[^>]*>.*?</\1\s*>",
                       regex.S | regex.I)
_TAG = regex.compile(r"</?[a-zA-Z][^>]*>")
# [[File:...|caption with [[links]] and [brackets]]], brackets balanced to any depth
_FILE_LINK = regex.compile(r"\[\[(?:File|Image|Category):(?:[^\[\]]++|(?<br>\[(?:[^\[\]]++|(?&br))*\]))*\]\]", regex.I)
_INNER_LINK = regex.compile(r"\[\[(?:[^\[\]|]*\|)?([^\[\]]*)\]\]")    # [[target|shown]] -> shown
_EXT_LINK = regex.compile(r"\[https?://[^\s\]]+(?: ([^\]]*))?\]")   # [url label] -> label
_EMPHASIS = regex.compile(r"'{2,}")
_HEADING = regex.compile(r"^=+\s*(.*?)\s*=+\s*$", regex.M)
_ENTITY = {"&nbsp;": " ", "&ndash;": "–", "&mdash;": "—", "&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": '"'}


def strip_wiki_markup(text: str) -> str:
    """Remove the common MediaWiki markup from a raw article, keeping its prose.

    Drops templates ``{{...}}``, tables ``{|...|}``, references ``<ref>...</ref>``,
    formulas (``<math>``) and other non-prose blocks, comments, HTML tags, file and
    category links; keeps the shown text of links
    (``[[Paris|the capital]]`` -> ``the capital``), headings without their ``=`` signs,
    and bold/italic text without the quotes. It is a teaching cleaner built from regular
    expressions, not a full wiki parser: unusual markup can survive. (``data.load("wiki")``
    uses gensim's ``filter_wiki``; lesson 01 compares the two.)

    Example::

        >>> strip_wiki_markup("'''Anarchism''' is a [[political philosophy|philosophy]]<ref>x</ref>.")
        'Anarchism is a philosophy.'
    """
    _check_str(text, "strip_wiki_markup")
    text = _COMMENT.sub("", text)
    text = _BLOCK.sub("", text)
    text = _REF.sub("", text)
    text = _TEMPLATE.sub("", text)
    text = _TABLE.sub("", text)
    text = _FILE_LINK.sub("", text)
    text = _INNER_LINK.sub(r"\1", text)
    text = _EXT_LINK.sub(lambda m: m.group(1) or "", text)
    text = _TAG.sub("", text)
    text = _EMPHASIS.sub("", text)
    text = _HEADING.sub(r"\1", text)
    for entity, char in _ENTITY.items():
        text = text.replace(entity, char)
    lines = [line.strip() for line in text.splitlines()]
    # list bullets and indentation markers at line starts
    lines = [regex.sub(r"^[*#:;]+\s*", "", line) for line in lines]
    return "\n".join(line for line in lines if line)


# ----------------------------------------------------------------------------- tokenizers

def whitespace_tokenize(text: str) -> list[str]:
    """Split on whitespace: ``text.split()``. The baseline that the lesson shows failing:
    punctuation sticks to words ("dog." vs "dog"), and Chinese has no spaces at all."""
    _check_str(text, "whitespace_tokenize")
    return text.split()


#: The course's word tokenizer, one alternative per line (tried in this order).
WORD_PATTERN = r"""
    (?:https?://|www\.)[^\s<>"]*[^\s<>".,;:!?)\]'}]   # URLs, without trailing punctuation
  | [\w.+-]+@[\w-]+(?:\.[\w-]+)+                      # e-mail addresses
  | (?:\p{Lu}\.){2,}                                  # abbreviations with dots: U.S., U.K.
  | \p{N}+(?:[.,:]\p{N}+)*                            # numbers: 1,000  3.50  10:30
  | \p{Han}                                           # one Chinese character at a time
  | [\p{L}\p{M}\p{N}_]+(?:[-'’][\p{L}\p{M}\p{N}_]+)*  # words, with inner hyphens and apostrophes
  | [^\s\p{L}\p{M}\p{N}]                              # any other symbol, one at a time
"""
_WORD_RE = regex.compile(WORD_PATTERN, regex.VERBOSE)


def regex_tokenize(text: str, *, lowercase: bool = False, pattern: str | None = None) -> list[str]:
    """Split ``text`` into words with a regular expression (``WORD_PATTERN`` by default).

    Keeps URLs, e-mail addresses, decimal numbers, ``state-of-the-art`` and ``don't`` in
    one piece, separates punctuation, and cuts Chinese into single characters (a crude but
    honest fallback: real Chinese word segmentation needs a dictionary or a model).

    Example::

        >>> regex_tokenize("Don't miss https://x.org/a, it's state-of-the-art! 3.50 USD")
        ["Don't", 'miss', 'https://x.org/a', ',', "it's", 'state-of-the-art', '!', '3.50', 'USD']
    """
    _check_str(text, "regex_tokenize")
    compiled = _WORD_RE if pattern is None else regex.compile(pattern, regex.VERBOSE)
    if compiled.groups:  # findall would return the groups, not the whole matches
        raise ValueError(f"the pattern must not contain capturing groups ({compiled.groups} found): "
                         "write (?:...) instead of (...)")
    tokens = compiled.findall(text)
    return [t.casefold() for t in tokens] if lowercase else tokens


_SENTENCE_END = regex.compile(r"(?<=[.!?。！？])[\"'”’)]*\s+(?=[\"'“‘(]*[\p{Lu}\p{N}])|(?<=[。！？])")


def split_sentences(text: str) -> list[str]:
    """A rule-based sentence splitter: break after ``. ! ?`` (or ``。！？``) when a capital
    letter or a digit follows. It is wrong after abbreviations ("Mr. Smith"), which is what
    a trained splitter such as NLTK's punkt learns to handle.

    Example::

        >>> split_sentences("It rained. We stayed in! Did you?")
        ['It rained.', 'We stayed in!', 'Did you?']
    """
    _check_str(text, "split_sentences")
    parts = _SENTENCE_END.split(text.strip())
    return [p.strip() for p in parts if p.strip()]


def remove_stopwords(tokens: Iterable[str], stopwords: Iterable[str]) -> list[str]:
    """Drop the tokens whose lower-case form is in ``stopwords``.

    Example::

        >>> remove_stopwords(["The", "film", "is", "not", "good"], {"the", "is", "not"})
        ['film', 'good']

    Note the example: "not" is on most stop-word lists, and dropping it flips the meaning
    of a review. Models that read word order (BERT and friends) keep every word.
    """
    tokens = string_list(tokens, "tokens")
    if isinstance(stopwords, (str, bytes)):
        raise TypeError("remove_stopwords expects stopwords as a list (or set) of words, not one string: "
                        "its letters would be read as the words")
    stop = {w.lower() for w in stopwords}
    return [t for t in tokens if t.lower() not in stop]


# ----------------------------------------------------------------------------- counting

def _token_lists(docs: Iterable[Sequence[str]], what: str) -> Iterable[Sequence[str]]:
    for i, doc in enumerate(docs):
        if isinstance(doc, str):
            raise TypeError(f"{what} expects a list of token lists, but item {i} is a str; "
                            f"tokenize it first (or wrap a single token list in [...])")
        yield doc


def count_tokens(docs: Iterable[Sequence[str]]) -> Counter[str]:
    """Token frequencies over many tokenized documents.

    Example::

        >>> count_tokens([["a", "b"], ["a"]])
        Counter({'a': 2, 'b': 1})
    """
    counts: Counter[str] = Counter()
    for doc in _token_lists(docs, "count_tokens"):
        counts.update(doc)
    return counts


def oov_rate(tokens: Iterable[str], vocab: "Vocab | Iterable[str]") -> float:
    """The fraction of ``tokens`` (running text, not distinct words) missing from ``vocab``.

    Special tokens do not count as known words. Example::

        >>> oov_rate(["a", "b", "c", "a"], {"a"})
        0.5
    """
    if isinstance(tokens, str):
        raise TypeError("oov_rate expects a list of tokens, got a str: tokenize it first")
    if isinstance(vocab, (str, bytes)):
        raise TypeError("oov_rate expects vocab as a Vocab or a collection of words, not one string")
    known = vocab.tokens_set() if isinstance(vocab, Vocab) else set(vocab)
    total = missing = 0
    for t in string_list(tokens, "tokens"):                 # words, not ids
        total += 1
        missing += t not in known
    if total == 0:
        raise ValueError("oov_rate of an empty token sequence is undefined")
    return missing / total


# ----------------------------------------------------------------------------- vocabulary

class Vocab:
    """A token <-> id mapping with special tokens at fixed ids.

    Ids ``0..len(specials)-1`` are the special tokens (by default ``[PAD]=0, [UNK]=1,
    [CLS]=2, [SEP]=3, [MASK]=4``), then the ordinary tokens. Tokens that are not in the
    vocabulary encode to ``[UNK]``.

    Example::

        vocab = Vocab.build([["the", "cat"], ["the", "dog"]], min_freq=1)
        vocab.encode(["the", "cow"])                       # [5, 1]   ("cow" -> [UNK])
        vocab.encode(["the", "cat"], add_special=True)     # [2, 5, 6, 3]
        vocab.decode([2, 5, 6, 3])                         # ['the', 'cat']
    """

    def __init__(self, tokens: Iterable[str], *, specials: Sequence[str] = SPECIAL_TOKENS) -> None:
        for value, name in ((tokens, "tokens"), (specials, "specials")):
            if isinstance(value, (str, bytes)):
                raise TypeError(f"Vocab expects {name} as a list of strings, not one string "
                                f"({value[:30]!r}): its letters would become the entries")
        self.specials: tuple[str, ...] = tuple(specials)
        self.itos: list[str] = []
        self.stoi: dict[str, int] = {}
        for t in (*self.specials, *tokens):
            if not isinstance(t, str) or not t:
                raise ValueError(f"vocabulary entries must be non-empty strings, got {t!r}")
            if t in self.stoi:
                raise ValueError(f"token {t!r} appears twice in the vocabulary")
            self.stoi[t] = len(self.itos)
            self.itos.append(t)

    @classmethod
    def build(cls, source: Mapping[str, int] | Iterable[Sequence[str]], *, min_freq: int = 1,
              max_size: int | None = None, specials: Sequence[str] = SPECIAL_TOKENS) -> "Vocab":
        """Build a vocabulary from token counts or from tokenized documents.

        Keeps the tokens seen at least ``min_freq`` times, most frequent first (ties in
        alphabetical order, so the result does not depend on the input order), and at
        most ``max_size`` entries in all, special tokens included.
        """
        if isinstance(min_freq, bool) or not isinstance(min_freq, int) or min_freq < 1:
            raise ValueError(f"min_freq must be an int >= 1, got {min_freq!r}")
        if max_size is not None and max_size < len(specials):
            raise ValueError(f"max_size={max_size} leaves no room for the {len(specials)} special tokens")
        counts = Counter(source) if isinstance(source, Mapping) else count_tokens(source)
        special_set = set(specials)
        ranked = sorted((t for t, c in counts.items() if c >= min_freq and t not in special_set),
                        key=lambda t: (-counts[t], t))
        if max_size is not None:
            ranked = ranked[: max_size - len(specials)]
        return cls(ranked, specials=specials)

    # --- lookups
    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: object) -> bool:
        return token in self.stoi

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)}, specials={list(self.specials)})"

    def tokens_set(self) -> set[str]:
        """The ordinary (non-special) tokens."""
        return set(self.itos[len(self.specials):])

    def _special_id(self, token: str) -> int:
        if token not in self.stoi:
            raise KeyError(f"this vocabulary has no {token} token (its specials are {list(self.specials)})")
        return self.stoi[token]

    @property
    def pad_id(self) -> int:
        return self._special_id(PAD)

    @property
    def unk_id(self) -> int:
        return self._special_id(UNK)

    @property
    def cls_id(self) -> int:
        return self._special_id(CLS)

    @property
    def sep_id(self) -> int:
        return self._special_id(SEP)

    @property
    def mask_id(self) -> int:
        return self._special_id(MASK)

    def token_to_id(self, token: str) -> int:
        """The id of ``token``, or the ``[UNK]`` id when it is unknown."""
        i = self.stoi.get(token)
        return i if i is not None else self.unk_id

    def id_to_token(self, i: int) -> str:
        if not 0 <= i < len(self.itos):
            raise IndexError(f"id {i} is outside the vocabulary (0..{len(self.itos) - 1})")
        return self.itos[i]

    # --- encoding
    def encode(self, tokens: Sequence[str], *, add_special: bool = False, max_length: int | None = None) -> list[int]:
        """Token list -> ids. ``add_special`` wraps it as ``[CLS] ... [SEP]``.

        ``max_length`` truncates the *content* first, so that ``[SEP]`` survives: the
        result has at most ``max_length`` ids. Example::

            vocab.encode(["a", "b", "c"], add_special=True, max_length=4)   # [CLS] a b [SEP]
        """
        if isinstance(tokens, str):
            raise TypeError("Vocab.encode expects a list of tokens, got a str: tokenize it first")
        ids = [self.token_to_id(t) for t in string_list(tokens, "tokens")]   # ids are decoded, not encoded
        if max_length is not None:
            room = max_length - (2 if add_special else 0)
            if room < (1 if add_special else 0):
                raise ValueError(f"max_length={max_length} is too small"
                                 f"{' to hold [CLS], one token and [SEP]' if add_special else ''}")
            ids = truncate(ids, room)
        if add_special:
            ids = [self.cls_id, *ids, self.sep_id]
        return ids

    def decode(self, ids: Iterable[int], *, skip_special: bool = True) -> list[str]:
        """Ids -> tokens; special tokens (padding included) are dropped unless asked for."""
        n_special = len(self.specials)
        out = []
        for i in ids:
            try:
                i = _as_id(i)
            except TypeError as e:
                raise TypeError(f"Vocab.decode expects integer ids: {e}") from None
            if skip_special and 0 <= i < n_special:
                continue
            out.append(self.id_to_token(i))
        return out

    def encode_batch(self, docs: Sequence[Sequence[str]], *, add_special: bool = True,
                     max_length: int | None = None, padding: str = "longest", return_tensors: str | None = "pt"):
        """Encode tokenized documents into one padded batch and its attention mask.

        Returns ``(ids, mask)``: ``ids`` is ``(batch, length)`` (a LongTensor, or lists
        with ``return_tensors=None``), ``mask`` is ``(batch, length)``, True where a real
        token is. See ``pad_batch`` for ``padding``. Example::

            ids, mask = vocab.encode_batch([["a", "b"], ["a"]])
            # ids  = [[2, a, b, 3], [2, a, 3, 0]];  mask = [[T, T, T, T], [T, T, T, F]]
        """
        seqs = [self.encode(d, add_special=add_special, max_length=max_length)
                for d in _token_lists(docs, "encode_batch")]
        return pad_batch(seqs, pad_id=self.pad_id, max_length=max_length, padding=padding,
                         return_tensors=return_tensors)

    # --- saving
    def save(self, path: str | Path) -> Path:
        """Write the vocabulary as JSON (the special tokens and the ordered tokens)."""
        path = Path(path)
        payload = {"format": "textft-vocab", "version": 1, "specials": list(self.specials),
                   "tokens": self.itos[len(self.specials):]}
        path.write_text(json.dumps(payload, ensure_ascii=False, indent=0), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Vocab":
        """Read a vocabulary written by ``save``."""
        path = Path(path)
        payload = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(payload, dict) or payload.get("format") != "textft-vocab":
            raise ValueError(f"{path} is not a textft vocabulary file (expected \"format\": \"textft-vocab\")")
        return cls(payload["tokens"], specials=payload["specials"])


# ----------------------------------------------------------------------------- batching

def truncate(ids: Sequence[int], max_length: int) -> list[int]:
    """Keep the first ``max_length`` ids. Example: ``truncate([1, 2, 3], 2) == [1, 2]``."""
    if max_length < 0:
        raise ValueError(f"max_length must be >= 0, got {max_length}")
    return list(ids[:max_length])


def pad_batch(sequences: Sequence[Sequence[int]], *, pad_id: int = 0, max_length: int | None = None,
              padding: str = "longest", truncation: bool = True, return_tensors: str | None = "pt"):
    """Pad id sequences of different lengths into a rectangle, with an attention mask.

    * ``padding="longest"``: pad to the longest sequence of the batch (after truncation);
      ``padding="max_length"``: pad every batch to exactly ``max_length``.
    * ``max_length``: sequences longer than this are cut (``truncation=True``) or rejected
      with a ``ValueError`` (``truncation=False``).
    * Returns ``(ids, mask)``, both ``(batch, length)``: with ``return_tensors="pt"`` a
      ``torch.long`` tensor and a ``torch.bool`` tensor (True = a real token, the
      ``key_padding_mask`` convention of ``textft_lib.attention``; ``mask.long()`` gives
      Hugging Face's 1/0 ``attention_mask``); with ``None``, nested lists (mask of 0/1).

    Example::

        >>> ids, mask = pad_batch([[5, 6, 7], [8]], pad_id=0, return_tensors=None)
        >>> ids, mask
        ([[5, 6, 7], [8, 0, 0]], [[1, 1, 1], [1, 0, 0]])
    """
    if isinstance(sequences, (str, bytes)) or not isinstance(sequences, Sequence):
        raise TypeError(f"pad_batch expects a list of id lists, got {type(sequences).__name__}")
    if len(sequences) == 0:
        raise ValueError("pad_batch got an empty batch")
    try:
        pad_id = _as_id(pad_id)
    except TypeError as e:
        raise TypeError(f"pad_id must be an integer id: {e}") from None
    if pad_id < 0:
        raise ValueError(f"pad_id must be a non-negative id, got {pad_id}")
    if not isinstance(truncation, bool):
        raise TypeError(f"truncation must be True or False, got {truncation!r}")
    if padding not in {"longest", "max_length"}:
        raise ValueError(f"padding must be 'longest' or 'max_length', got {padding!r}")
    if padding == "max_length" and max_length is None:
        raise ValueError("padding='max_length' needs max_length")
    if max_length is not None and max_length < 1:
        raise ValueError(f"max_length must be >= 1, got {max_length}")
    seqs = []
    for i, s in enumerate(sequences):
        if isinstance(s, (str, bytes)):
            raise TypeError(f"sequence {i} is a string, not a list of integer ids: {s[:60]!r}")
        try:
            s = [_as_id(x) for x in s]
        except TypeError as e:
            raise TypeError(f"sequence {i} is not a list of integer ids ({e}): {str(s)[:60]}") from None
        if max_length is not None and len(s) > max_length:
            if not truncation:
                raise ValueError(f"sequence {i} has {len(s)} ids, more than max_length={max_length} "
                                 f"(pass truncation=True to cut it)")
            s = s[:max_length]
        seqs.append(s)
    length = max_length if padding == "max_length" else max(len(s) for s in seqs)
    if length == 0:
        raise ValueError("every sequence of the batch is empty: there is nothing to pad")
    ids = [s + [pad_id] * (length - len(s)) for s in seqs]
    mask = [[1] * len(s) + [0] * (length - len(s)) for s in seqs]
    if return_tensors is None:
        return ids, mask
    if return_tensors != "pt":
        raise ValueError(f"return_tensors must be 'pt' or None, got {return_tensors!r}")
    import torch

    return torch.tensor(ids, dtype=torch.long), torch.tensor(mask, dtype=torch.bool)
