"""The pretraining corpus and its WordPiece tokenizer (lesson 06).

BERT reads text through a WordPiece vocabulary: whole words when they are frequent,
otherwise a first piece and continuation pieces marked ``##`` (``tendon`` ->
``tend ##on``). This module trains such a vocabulary on a corpus of lesson 06 (``corpus.load_corpus``)
with the ``tokenizers`` library and wraps it as a ``transformers`` ``BertTokenizer``, so
``save_pretrained`` writes the standard files (``tokenizer.json``,
``tokenizer_config.json``, ``vocab.txt``) and ``AutoTokenizer.from_pretrained(folder)``
loads it back.

Example::

    from textft_lib import corpus, wordpiece
    train_texts, held_out_texts = corpus.training_split("wiki_sample")
    tok = wordpiece.train_wordpiece(train_texts, vocab_size=8000)
    tok.tokenize("The Achilles tendon")     # ['the', 'achilles', 'tend', '##on']
    wordpiece.save_tokenizer(tok, "my_tokenizer")
    same = wordpiece.load_tokenizer("my_tokenizer")
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterable

from textft_lib import cache, config
from textft_lib.checks import string_list

#: BERT's special tokens, in the order of their ids (0..4).
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")

#: How ``train_wordpiece`` numbers a vocabulary (2: ``canonical_ids``); part of every cache key
#: that stands for a tokenizer trained from settings (``course_tokenizer``, ``bert.course_bert``).
VERSION = 2

_MARKUP = re.compile(r"'{2,}")           # ''italic'' and '''bold''' quotes left by filter_wiki
_HEADING = re.compile(r"^\s*=+\s*(.*?)\s*=+\s*$")
_BULLET = re.compile(r"^\s*[*#:;]+\s*")
_SPACES = re.compile(r"[ \t]+")


def clean_wiki(text: str, *, min_words: int = 4) -> str:
    """Strip the markup that gensim's ``filter_wiki`` leaves behind.

    Removes ``''``/``'''`` emphasis quotes, heading ``==`` signs and list bullets, and
    drops lines with fewer than ``min_words`` words (headings, image captions, table
    debris). Returns the remaining lines joined by newlines.

    Example::

        clean_wiki("== Birth ==\\n'''Achilles''' was the son of Thetis and Peleus.")
        # 'Achilles was the son of Thetis and Peleus.'
    """
    if not isinstance(text, str):
        raise TypeError(f"clean_wiki expects a str, got {type(text).__name__}")
    lines = []
    for line in text.splitlines():
        line = _MARKUP.sub("", line)
        heading = _HEADING.match(line)
        if heading:
            line = heading.group(1)
        line = _SPACES.sub(" ", _BULLET.sub("", line)).strip()
        if len(line.split()) >= min_words:
            lines.append(line)
    return "\n".join(lines)


def train_wordpiece(texts: Iterable[str], vocab_size: int = 8000, *, min_frequency: int = 2,
                    model_max_length: int = 512) -> Any:
    """Train a lower-casing WordPiece vocabulary with ``tokenizers``; return a ``BertTokenizer``.

    The pipeline is BERT's: Unicode clean-up and lower-casing (``BertNormalizer``), a split
    on whitespace and punctuation (``BertPreTokenizer``), then WordPiece with ``##``
    continuation pieces. The special tokens get ids 0..4 (``SPECIAL_TOKENS``), the other
    tokens follow in sorted order (``canonical_ids``), so two trainings give the same ids.
    ``model_max_length`` is what ``truncation=True`` cuts to (the model's
    ``max_position_embeddings``).

    Example::

        tok = train_wordpiece(["a first text", "a second text"], vocab_size=60)
        tok("a text")["input_ids"]     # [2, ..., 3]: [CLS] ... [SEP]
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import BertTokenizer

    texts = [t for t in string_list(texts, "texts") if t.strip()]
    if not texts:
        raise ValueError("train_wordpiece needs at least one non-empty text")
    if vocab_size <= len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size must exceed the {len(SPECIAL_TOKENS)} special tokens, got {vocab_size}")
    raw = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    raw.normalizer = normalizers.BertNormalizer(lowercase=True, clean_text=True, handle_chinese_chars=True)
    raw.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                        special_tokens=list(SPECIAL_TOKENS), show_progress=False)
    raw.train_from_iterator(texts, trainer)
    # BertTokenizer rebuilds the same pipeline (normalizer, pre-tokenizer, WordPiece, the
    # [CLS] ... [SEP] template) around the learned vocabulary, numbered canonically.
    return BertTokenizer(vocab=canonical_ids(raw.get_vocab()), do_lower_case=True,
                         model_max_length=model_max_length)


def canonical_ids(vocab: dict[str, int]) -> dict[str, int]:
    """The same tokens numbered in a fixed order: ``SPECIAL_TOKENS`` at 0..4, then every other
    token in sorted (code point) order.

    ``tokenizers`` learns the same set of tokens from the same texts every time, but numbers
    tokens with tied counts in a different order from one process to the next (its hash maps
    are seeded at random), and a model's weights belong to one numbering. WordPiece encodes by
    longest match on the strings, so the numbering changes no split. Example::

        canonical_ids({"b": 7, "[PAD]": 3, "[UNK]": 0, "[CLS]": 1, "[SEP]": 2, "[MASK]": 4, "##a": 5})
        # {'[PAD]': 0, '[UNK]': 1, '[CLS]': 2, '[SEP]': 3, '[MASK]': 4, '##a': 5, 'b': 6}
    """
    missing = [t for t in SPECIAL_TOKENS if t not in vocab]
    if missing:
        raise ValueError(f"the vocabulary lacks the special tokens {missing}")
    order = list(SPECIAL_TOKENS) + sorted(t for t in vocab if t not in SPECIAL_TOKENS)
    return {token: i for i, token in enumerate(order)}


def save_tokenizer(tokenizer: Any, folder: str | Path) -> Path:
    """Save with ``save_pretrained`` plus the classic ``vocab.txt`` (one token per line, in id order)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(folder)
    vocab = tokenizer.get_vocab()
    by_id = sorted(vocab.items(), key=lambda kv: kv[1])
    if [i for _, i in by_id] != list(range(len(by_id))):
        raise ValueError("the vocabulary's ids are not 0..N-1; cannot write vocab.txt")
    (folder / "vocab.txt").write_text("".join(f"{tok}\n" for tok, _ in by_id), encoding="utf-8")
    return folder


def load_tokenizer(folder: str | Path) -> Any:
    """Load a tokenizer saved by ``save_tokenizer`` (or any BERT tokenizer folder), offline."""
    from transformers import AutoTokenizer

    folder = Path(folder)
    if not (folder / "tokenizer.json").exists() and not (folder / "vocab.txt").exists():
        raise FileNotFoundError(f"{folder} holds no tokenizer.json or vocab.txt")
    return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)


def course_tokenizer(vocab_size: int = 8000, *, corpus: str = "wiki_sample", held_out_fraction: float = 0.1,
                     seed: int = 0, limit: int | None = None, max_words: int | None = None,
                     model_max_length: int = 512) -> Any:
    """The course's WordPiece tokenizer, trained on the training documents of
    ``corpus.training_split(corpus, ...)`` (the held-out ones are never read).

    Cached under ``config.cache_dir("bert")`` by its settings and ``corpus.texts_key``, so the second call loads
    it in a fraction of a second. The ids are ``canonical_ids``: a retrained tokenizer numbers
    its tokens as the cached one did, so a full-size run repeats after the cache is wiped.
    """
    from textft_lib import corpus as corpora

    settings = {"vocab_size": vocab_size, "held_out_fraction": held_out_fraction, "seed": seed,
                "model_max_length": model_max_length, "special": SPECIAL_TOKENS, "version": VERSION}
    for name, value in (("limit", limit), ("max_words", max_words)):
        if value is not None:
            settings[name] = value
    if corpus != "wiki_sample":          # the Wikipedia sample keeps the key it always had
        settings["corpus"] = corpus
    texts = corpora.texts_key(corpus)     # the offline mix: which texts (SST-2 checked or not)
    if texts:
        settings["texts"] = texts
    folder = config.cache_dir("bert") / f"wordpiece-{vocab_size}-{cache.key(settings)}"
    if not (folder / "tokenizer.json").exists():
        train_texts, _ = corpora.training_split(corpus, held_out_fraction=held_out_fraction, seed=seed,
                                                max_words=max_words, limit=limit)
        tok = train_wordpiece(train_texts, vocab_size, model_max_length=model_max_length)
        cache.write_folder(folder, lambda tmp: save_tokenizer(tok, tmp))
    return load_tokenizer(folder)


