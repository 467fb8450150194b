"""Every corpus and dataset of the course, behind one entry point.

The course runs offline on real text that ``gensim`` ships in ``gensim/test/test_data``;
bigger standard datasets come from ``TEXTFT_DATA_DIR`` (local copies in their standard
layout) or, when the network is there and ``TEXTFT_OFFLINE`` is not set, from the web.

Example::

    from textft_lib import data
    data.show_catalog()                       # what exists, and what works right now
    wiki = data.load("wiki")                  # list[Article]: 106 real Wikipedia articles
    reviews = data.load("movie_reviews")      # TextDataset with train/validation/test splits
    reviews.train.texts[0], reviews.train.labels[0], reviews.label_names
    sst2 = data.load_dataset("sst2", max_train=4000)   # a labelled dataset, training split subsampled
    mine = data.load_labelled("spam.tsv")              # your own labelled file: a TextDataset too

Return types:

* ``wiki``: ``list[Article]`` (title, text), ``lee``: ``list[str]``
* ``movie_reviews``, ``sst2``, ``ag_news``: ``TextDataset`` (train / validation / test
  ``Split``s of texts and integer labels, plus label names); splits are deterministic
* ``wordsim353``, ``simlex999``: ``list[tuple[str, str, float]]``
* ``questions_words``: ``dict[str, list[tuple[str, str, str, str]]]`` (section -> questions)
* ``glove_sample``: ``Path`` of a file in GloVe's text format
* ``glove-wiki-gigaword-100``: ``Path`` of the downloaded GloVe text file
* ``load_labelled(source)`` (not in the catalogue: your own CSV/TSV file, DataFrame or
  ``(texts, labels)``): ``TextDataset`` with word labels mapped to ids, stratified splits and
  a ``report`` (class balance, duplicates across splits)
"""

from __future__ import annotations

import bz2
import collections
import csv
import gzip
import hashlib
import io
import os
import random
import sys
import tempfile
import urllib.request
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Sequence

from textft_lib import config
from textft_lib.cache import atomic_write_bytes
from textft_lib.checks import as_label_names, check_int, check_number, string_list

#: Seconds a single network request may take before it is abandoned.
DOWNLOAD_TIMEOUT = 30.0


class OfflineError(RuntimeError):
    """A source needs the network, and the network is off (or unreachable)."""


class DataFormatError(ValueError):
    """A local data file does not have the expected format; the message names the line."""


@dataclass(frozen=True)
class Article:
    """One Wikipedia article: its title and its text with the wiki markup filtered out."""

    title: str
    text: str


@dataclass
class Split:
    """One split of a labelled text dataset: ``texts[i]`` has label ``labels[i]``.

    Checked when built: ``texts`` a list of strings, ``labels`` as many whole class ids
    >= 0 (ints; numpy ints and whole floats such as ``1.0`` become ints). Word labels
    (``"spam"``) are refused: ``load_labelled`` maps them to ids and keeps the names. Blank
    texts are allowed here (a classifier's ``predict`` refuses them); an empty split too.

    Example::

        Split(["a fine film", "dull"], [1, 0])        # Split(texts=[...], labels=[1, 0])
        Split(["a fine film"], ["pos"])               # TypeError: ... use data.load_labelled
    """

    texts: list[str]
    labels: list[int]

    def __post_init__(self) -> None:
        self.texts = string_list(self.texts, "texts")
        self.labels = check_split_labels(self.labels)
        if len(self.texts) != len(self.labels):
            raise ValueError(f"{len(self.texts)} texts but {len(self.labels)} labels: a Split needs one label per text")

    def __len__(self) -> int:
        return len(self.texts)


def check_split_labels(labels: Any) -> list[int]:
    """``labels`` as a list of Python ints >= 0: whole numbers (``np.int64(1)``, ``1.0``) pass,
    booleans, fractions, strings and negative ids raise, naming the first bad item.

    Example: ``check_split_labels([1.0, 0])`` is ``[1, 0]``; ``check_split_labels(["spam"])`` raises
    ``TypeError`` pointing to ``load_labelled``.
    """
    import numbers

    if isinstance(labels, (str, bytes)):
        raise TypeError("labels must be a list of class ids, not one string")
    if hasattr(labels, "detach"):        # a tensor
        labels = labels.detach().cpu().tolist()
    if isinstance(labels, (dict, set, frozenset)) or not hasattr(labels, "__iter__"):
        raise TypeError(f"labels must be a list of class ids, got {type(labels).__name__}")
    out = []
    for i, y in enumerate(labels):
        if isinstance(y, str):
            raise TypeError(f"labels must be integer class ids; item {i} is the string {y!r:.40}. Word labels "
                            "need ids: data.load_labelled(source) maps them (ids in sorted order, or the "
                            "order of label_names) and keeps the names")
        if isinstance(y, bool) or not isinstance(y, numbers.Real):      # numpy's bool is no Real either
            raise TypeError(f"labels must be integer class ids; item {i} is {type(y).__name__} {y!r:.40}")
        if not isinstance(y, numbers.Integral):
            if not (y == y and abs(y) != float("inf") and float(y).is_integer()):
                raise TypeError(f"labels must be integer class ids; item {i} is {y!r} (not a whole number)")
        y = int(y)
        if y < 0:
            raise ValueError(f"labels must be class ids >= 0; item {i} is {y}")
        out.append(y)
    return out


@dataclass
class TextDataset:
    """A labelled text dataset with deterministic train / validation / test splits.

    ``label_names[i]`` names class ``i``. ``report`` is a dict that ``load_labelled`` fills
    (class balance per split, duplicate texts across splits, how labels were mapped, notes);
    it is empty for the catalogue's datasets. Nothing is printed.
    """

    name: str
    train: Split
    validation: Split
    test: Split
    label_names: list[str]
    source: str = ""
    report: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.label_names = as_label_names(self.label_names)
        for split_name, split in self.splits().items():
            if not isinstance(split, Split):
                raise TypeError(f"{split_name} must be a data.Split, got {type(split).__name__}")
            if split.labels and max(split.labels) >= len(self.label_names):
                raise ValueError(f"the {split_name} labels go up to {max(split.labels)}, but there are "
                                 f"{len(self.label_names)} label_names ({self.label_names[:10]})")

    def splits(self) -> dict[str, Split]:
        return {"train": self.train, "validation": self.validation, "test": self.test}

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={len(v)}" for k, v in self.splits().items())
        return f"TextDataset({self.name!r}, {sizes}, labels={self.label_names}, source={self.source!r})"


@dataclass(frozen=True)
class Source:
    """An entry of the catalogue."""

    name: str
    kind: str  # "corpus", "classification", "similarity", "analogy", "vectors"
    description: str
    offline: bool  # ships with an installed package
    loader: Callable[..., Any] = field(repr=False, compare=False)
    local_layout: str = ""  # what to put under TEXTFT_DATA_DIR, if anything


# --------------------------------------------------------------------------- helpers


def gensim_file(filename: str) -> Path:
    """Path of a file in ``gensim/test/test_data`` (raises if gensim lacks it)."""
    from gensim.test.utils import datapath

    path = Path(datapath(filename))
    if not path.exists():
        raise FileNotFoundError(f"{filename} is not in this gensim installation ({path.parent})")
    return path


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes (``"sha256"``, ``"md5"``, ...), read in 1 MiB chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_of(path: str | Path) -> str:
    """The sha256 of a file's bytes (``file_digest(path, "sha256")``)."""
    return file_digest(Path(path), "sha256")


def require_online(what: str, offline_hint: str) -> None:
    """Raise ``OfflineError`` when ``TEXTFT_OFFLINE`` is set."""
    if config.is_offline():
        raise OfflineError(f"{what} needs the network, and TEXTFT_OFFLINE is set. {offline_hint}")


def download(url: str, dest: Path, *, sha256: str | None = None, md5: str | None = None,
             timeout: float = DOWNLOAD_TIMEOUT, offline_hint: str = "") -> Path:
    """Download ``url`` to ``dest`` (atomically), verifying a checksum when one is given.

    A file already in place with the right checksum is not fetched again. The download
    streams into a temporary file next to ``dest`` and is renamed only after the checksum
    matched, so the cache never holds a partial or corrupt file.
    """
    def matches(path: Path) -> bool:
        if sha256:
            return file_digest(path, "sha256") == sha256
        if md5:
            return file_digest(path, "md5") == md5
        return True

    if dest.exists() and matches(dest):
        return dest
    require_online(f"downloading {url}", offline_hint)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                out.write(chunk)
        if not matches(Path(tmp)):
            raise OSError(f"checksum mismatch for {url}: the download is corrupt and was discarded")
        os.replace(tmp, dest)
    except OSError as err:  # URLError and socket timeouts are OSErrors
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OfflineError):
            raise
        raise OfflineError(f"could not download {url}: {err}. {offline_hint}") from err
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest


def _split(texts: list[str], labels: list[int], fractions: tuple[float, float], seed: int
           ) -> tuple[Split, Split, Split]:
    """Shuffle with a fixed seed and cut into train / validation / test."""
    order = list(range(len(texts)))
    random.Random(seed).shuffle(order)
    n_val = round(len(order) * fractions[0])
    n_test = round(len(order) * fractions[1])
    test_idx, val_idx, train_idx = order[:n_test], order[n_test:n_test + n_val], order[n_test + n_val:]

    def take(idx: list[int]) -> Split:
        return Split([texts[i] for i in idx], [labels[i] for i in idx])

    return take(train_idx), take(val_idx), take(test_idx)


# --------------------------------------------------------------------------- offline sources

WIKI_FILE = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"


@lru_cache(maxsize=4)
def _wiki(raw: bool) -> tuple[Article, ...]:
    from gensim.corpora.wikicorpus import extract_pages, filter_wiki

    articles = []
    with bz2.open(gensim_file(WIKI_FILE)) as fh:
        for title, text, _page_id in extract_pages(fh):
            if not text or text.lstrip().lower().startswith("#redirect"):
                continue  # redirects carry no article text
            body = text if raw else filter_wiki(text)
            articles.append(Article(title=title, text=body))
    return tuple(articles)


def load_wiki(*, raw: bool = False, limit: int | None = None) -> list[Article]:
    """The Wikipedia dump shipped by gensim: ~106 articles (redirect pages dropped).

    ``raw=True`` keeps the wiki markup (to show what cleaning removes); otherwise
    gensim's ``filter_wiki`` has stripped most of it. ``limit`` keeps the first articles.
    """
    articles = list(_wiki(raw))
    if limit is not None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        articles = articles[:limit]
    return articles


def load_lee() -> list[str]:
    """The Lee background corpus: 300 short news articles (one per line)."""
    lines = gensim_file("lee_background.cor").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip()]


def load_movie_reviews(*, seed: int = 0) -> TextDataset:
    """200 labelled movie-review sentences (Pang & Lee), split 140 / 30 / 30 with a fixed seed."""
    path = gensim_file("pang_lee_polarity.cor")
    texts, labels = [], []
    names = ["neg", "pos"]
    # The file is in Windows-1252 (its dashes are byte 0x97), not UTF-8.
    for lineno, line in enumerate(path.read_text(encoding="cp1252").splitlines(), start=1):
        if not line.strip():
            continue
        tag, _, text = line.partition(" ")
        if not tag.startswith("__label__") or tag[9:] not in names or not text.strip():
            raise DataFormatError(f"{path}:{lineno}: expected '__label__pos|neg <text>', got {line[:60]!r}")
        texts.append(text.strip())
        labels.append(names.index(tag[9:]))
    train, val, test = _split(texts, labels, (0.15, 0.15), seed)
    return TextDataset("movie_reviews", train, val, test, names, source=str(path))


def read_similarity(path: Path) -> list[tuple[str, str, float]]:
    """Read a word-similarity file (``word1<TAB>word2<TAB>score``, ``#`` comments)."""
    pairs = []
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        try:
            pairs.append((parts[0].strip(), parts[1].strip(), float(parts[2])))
        except (IndexError, ValueError):
            raise DataFormatError(f"{path}:{lineno}: expected 'word1<TAB>word2<TAB>score', got {line[:60]!r}") from None
    return pairs


def read_analogies(path: Path) -> dict[str, list[tuple[str, str, str, str]]]:
    """Read an analogy file in word2vec's ``questions-words.txt`` format."""
    sections: dict[str, list[tuple[str, str, str, str]]] = {}
    current = None
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        if line.startswith(":"):
            current = line[1:].strip()
            sections[current] = []
            continue
        words = line.split()
        if current is None or len(words) != 4:
            raise DataFormatError(f"{path}:{lineno}: expected a ': section' line or four words, got {line[:60]!r}")
        sections[current].append((words[0], words[1], words[2], words[3]))
    return sections


# --------------------------------------------------------------------------- local or online sources


def read_glue_tsv(path: Path) -> Split:
    """Read a GLUE-style TSV with a header, the label (0/1) first and the text second."""
    texts, labels = [], []
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if header is None:
            raise DataFormatError(f"{path}:1: the file is empty (expected a header line)")
        # GLUE's own files put the sentence first; the benchmark copies put the label first.
        label_col = 0 if header[0].strip().lower() == "label" else 1
        for lineno, row in enumerate(reader, start=2):
            if len(row) != 2 or row[label_col].strip() not in {"0", "1"} or not row[1 - label_col].strip():
                raise DataFormatError(f"{path}:{lineno}: expected '<label 0|1><TAB><text>', got {row!r}"[:200])
            labels.append(int(row[label_col]))
            texts.append(row[1 - label_col])
    return Split(texts, labels)


SST2_HINT = ("To use SST-2 offline, set TEXTFT_DATA_DIR to a folder holding sst2/train.tsv, "
             "sst2/dev.tsv and sst2/test.tsv (GLUE's TSV layout: a header line, then "
             "'<label><TAB><sentence>' or '<sentence><TAB><label>').")


def load_sst2(*, seed: int = 0, online: bool | None = None) -> TextDataset:
    """SST-2 (binary sentiment). ``TEXTFT_DATA_DIR/sst2`` first, else the web via ``datasets``.

    With local files: train.tsv is the training split, dev.tsv the validation split and,
    when present, test.tsv (the 1,821 labelled test sentences) the test split. Online,
    GLUE's test split has no labels, so the 872 dev sentences are cut in two, a seeded half
    for validation and half for test. A test set carved from train.tsv would leak: its
    67k phrases are parts of the same sentences, so a test phrase would often sit inside
    a training one.
    """
    root = config.data_dir()
    if root is not None and (root / "sst2").is_dir():
        folder = root / "sst2"
        missing = [f for f in ("train.tsv", "dev.tsv") if not (folder / f).exists()]
        if missing:
            raise FileNotFoundError(f"{folder} lacks {', '.join(missing)}. {SST2_HINT}")
        train, val = read_glue_tsv(folder / "train.tsv"), read_glue_tsv(folder / "dev.tsv")
        test = read_glue_tsv(folder / "test.tsv") if (folder / "test.tsv").exists() else None
        if test is None:
            _, val, test = _split(val.texts, val.labels, (0.5, 0.5), seed)
        return TextDataset("sst2", train, val, test, ["negative", "positive"], source=str(folder))
    require_online("SST-2", SST2_HINT)
    ds = _hf_dataset("glue", "sst2", hint=SST2_HINT)
    train = Split(list(ds["train"]["sentence"]), list(ds["train"]["label"]))
    _, val, test = _split(list(ds["validation"]["sentence"]), list(ds["validation"]["label"]), (0.5, 0.5), seed)
    return TextDataset("sst2", train, val, test, ["negative", "positive"], source="hub:glue/sst2")


AG_HINT = ("To use AG News offline, set TEXTFT_DATA_DIR to a folder holding ag_news/train.csv "
           "and ag_news/test.csv (the original layout: 'class(1-4)','title','description').")


def _read_ag_csv(path: Path) -> Split:
    texts, labels = [], []
    with open(path, encoding="utf-8", newline="") as fh:
        for lineno, row in enumerate(csv.reader(fh), start=1):
            if len(row) != 3 or row[0].strip() not in {"1", "2", "3", "4"}:
                raise DataFormatError(f"{path}:{lineno}: expected '\"class 1-4\",\"title\",\"description\"'")
            labels.append(int(row[0]) - 1)
            texts.append(f"{row[1]}. {row[2]}".replace("\\", " "))
    return Split(texts, labels)


def load_ag_news(*, seed: int = 0) -> TextDataset:
    """AG News (4 topics). ``TEXTFT_DATA_DIR/ag_news`` first, else the web via ``datasets``.
    A fixed 5% of the training set becomes the validation split."""
    names = ["World", "Sports", "Business", "Sci/Tech"]
    root = config.data_dir()
    if root is not None and (root / "ag_news" / "train.csv").exists():
        full = _read_ag_csv(root / "ag_news" / "train.csv")
        test = _read_ag_csv(root / "ag_news" / "test.csv")
        source = str(root / "ag_news")
    else:
        require_online("AG News", AG_HINT)
        ds = _hf_dataset("ag_news", None, hint=AG_HINT)
        full = Split(list(ds["train"]["text"]), list(ds["train"]["label"]))
        test = Split(list(ds["test"]["text"]), list(ds["test"]["label"]))
        source = "hub:ag_news"
    train, val, _ = _split(full.texts, full.labels, (0.05, 0.0), seed)
    return TextDataset("ag_news", train, val, test, names, source=source)


def _hf_dataset(path: str, name: str | None, *, hint: str) -> Any:
    try:
        import datasets
    except ImportError:  # not a network problem: say so, rather than raise OfflineError
        raise ModuleNotFoundError(f"loading {path} from the hub needs the `datasets` package, which this "
                                  "environment lacks: run `python3 course.py setup` (it installs "
                                  f"requirements.txt) or `pip install datasets`. {hint}") from None
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", str(int(DOWNLOAD_TIMEOUT)))
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", str(int(DOWNLOAD_TIMEOUT)))
    try:
        return datasets.load_dataset(path, name, cache_dir=str(config.cache_dir("datasets")))
    except Exception as err:  # network errors come in many types
        raise OfflineError(f"could not load {path} from the hub: {err}. {hint}") from err


GLOVE_HINT = ("To use pretrained GloVe offline, put glove.6B.100d.txt (from Stanford's glove.6B "
              "release) in TEXTFT_DATA_DIR/glove/, or run this once with the network.")
GENSIM_DATA_URL = "https://github.com/RaRe-Technologies/gensim-data/releases/download"
GENSIM_LIST_URL = "https://raw.githubusercontent.com/RaRe-Technologies/gensim-data/master/list.json"


def load_pretrained_glove(name: str = "glove-wiki-gigaword-100") -> Path:
    """Path of pretrained GloVe vectors in GloVe's text format.

    Looks in ``TEXTFT_DATA_DIR/glove/`` (``glove.6B.100d.txt``), then in the cache, then
    downloads gensim-data's release file with a timeout, checks it against the MD5 that
    gensim-data publishes, and unpacks it atomically into the cache (~130 MB).
    """
    import json

    dims = name.rsplit("-", 1)[-1]
    root = config.data_dir()
    if root is not None:
        for candidate in (root / "glove" / f"glove.6B.{dims}d.txt", root / "glove" / f"{name}.txt"):
            if candidate.exists():
                return candidate
    target = config.cache_dir("vectors") / f"{name}.txt"
    if target.exists():
        return target
    require_online(f"pretrained GloVe ({name})", GLOVE_HINT)
    try:
        with urllib.request.urlopen(GENSIM_LIST_URL, timeout=DOWNLOAD_TIMEOUT) as resp:
            listing = json.load(resp)
    except OSError as err:
        raise OfflineError(f"could not reach gensim-data's catalogue: {err}. {GLOVE_HINT}") from err
    info = listing["models"].get(name)
    if info is None:
        raise KeyError(f"gensim-data has no model {name!r}")
    gz = download(f"{GENSIM_DATA_URL}/{name}/{name}.gz", config.cache_dir("vectors") / f"{name}.gz",
                  md5=info.get("md5"), offline_hint=GLOVE_HINT)
    with gzip.open(gz, "rb") as fh:
        payload = fh.read()
    # gensim-data stores word2vec's text format: a "count dim" header line, then GloVe's lines.
    first, _, rest = payload.partition(b"\n")
    if len(first.split()) == 2:
        payload = rest
    atomic_write_bytes(target, payload)
    gz.unlink(missing_ok=True)
    return target


# --------------------------------------------------------------------------- the catalogue

CATALOG: dict[str, Source] = {
    s.name: s
    for s in [
        Source("wiki", "corpus", "Wikipedia articles (gensim's shortened enwiki dump), ~106 articles, ~480k words",
               True, load_wiki),
        Source("lee", "corpus", "Lee background corpus: 300 news articles", True, load_lee),
        Source("movie_reviews", "classification", "200 movie-review sentences, pos/neg (Pang & Lee)", True,
               load_movie_reviews),
        Source("wordsim353", "similarity", "WordSim-353 word pairs with human similarity scores", True,
               lambda: read_similarity(gensim_file("wordsim353.tsv"))),
        Source("simlex999", "similarity", "SimLex-999 word pairs with human similarity scores", True,
               lambda: read_similarity(gensim_file("simlex999.txt"))),
        Source("questions_words", "analogy", "word2vec's analogy questions (a:b :: c:?), 14 sections", True,
               lambda: read_analogies(gensim_file("questions-words.txt"))),
        Source("glove_sample", "vectors", "a small file in GloVe's text format (gensim's test_glove.txt)", True,
               lambda: gensim_file("test_glove.txt")),
        Source("sst2", "classification", "SST-2 binary sentiment (GLUE), 67k train / 872 dev", False, load_sst2,
               local_layout="sst2/train.tsv, sst2/dev.tsv, sst2/test.tsv"),
        Source("ag_news", "classification", "AG News, 4 topics, 120k train / 7.6k test", False, load_ag_news,
               local_layout="ag_news/train.csv, ag_news/test.csv"),
        Source("glove-wiki-gigaword-100", "vectors", "pretrained GloVe, 400k words x 100 dims (6B tokens)", False,
               load_pretrained_glove, local_layout="glove/glove.6B.100d.txt"),
    ]
}


def _locally_available(source: Source) -> bool:
    try:
        root = config.data_dir()
    except FileNotFoundError:
        return False
    if root is None or not source.local_layout:
        return False
    first = source.local_layout.split(",")[0].strip()
    return (root / first).exists()


def catalog() -> list[dict[str, Any]]:
    """One row per source: name, kind, description, and whether it can load right now."""
    rows = []
    for s in CATALOG.values():
        if s.offline:
            where = "bundled (gensim)"
        elif _locally_available(s):
            where = "TEXTFT_DATA_DIR"
        elif config.is_offline():
            where = "unavailable (offline)"
        else:
            where = "online"
        rows.append({"name": s.name, "kind": s.kind, "description": s.description, "available": where})
    return rows


def show_catalog() -> None:
    """Print the catalogue as a table."""
    rows = catalog()
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        print(f"{r['name']:<{width}}  {r['kind']:<14}  {r['available']:<22}  {r['description']}")


def load(name: str, **options: Any) -> Any:
    """Load a source of the catalogue by name; ``options`` go to its loader.

    An unknown name raises a ``KeyError`` that lists the known ones; an online-only
    source asked for offline raises ``OfflineError`` saying what to put in
    ``TEXTFT_DATA_DIR``.
    """
    if name not in CATALOG:
        raise KeyError(f"unknown data source {name!r}; known sources: {', '.join(CATALOG)}")
    return CATALOG[name].loader(**options)


# --------------------------------------------------------------------------- labelled datasets


def labelled_datasets() -> tuple[str, ...]:
    """Names of the catalogue's labelled text datasets: the ``"classification"`` sources,
    whose ``load`` returns a ``TextDataset`` (``movie_reviews``, ``sst2``, ``ag_news``)."""
    return tuple(name for name, s in CATALOG.items() if s.kind == "classification")


def load_dataset(name: str, *, max_train: int | None = None, seed: int = 0) -> TextDataset:
    """Load a labelled dataset through ``load`` and optionally subsample its training split.

    ``name`` is one of ``labelled_datasets()``. ``"movie_reviews"`` is bundled (200 sentences,
    split 140 / 30 / 30); ``"sst2"`` and ``"ag_news"`` come from ``TEXTFT_DATA_DIR`` or, online,
    from the hub. ``max_train`` keeps a class-balanced, seeded random subset of the training
    sentences (for CPU budgets); validation and test are never subsampled, so numbers stay
    comparable.

    Example::

        ds = load_dataset("sst2", max_train=4000)     # 4000 training sentences, full dev/test
    """
    names = labelled_datasets()
    if name not in names:
        raise ValueError(f"unknown dataset {name!r}: choose one of {', '.join(names)}")
    ds = load(name)
    if max_train is not None and max_train < len(ds.train):
        ds = TextDataset(ds.name, subsample(ds.train, max_train, seed=seed), ds.validation,
                         ds.test, ds.label_names, source=f"{ds.source} (train subsample {max_train})")
    return ds


def subsample(split: Split, n: int, *, seed: int = 0) -> Split:
    """A seeded random subset of ``n`` examples that keeps the class proportions of ``split``."""
    if not isinstance(split, Split):
        raise TypeError(f"subsample expects a Split (texts and labels), got {type(split).__name__}")
    n = check_int(n, "n", minimum=1)
    if n >= len(split):
        return split
    rng = random.Random(seed)
    by_class: dict[int, list[int]] = {}
    for i, y in enumerate(split.labels):
        by_class.setdefault(y, []).append(i)
    chosen: list[int] = []
    for y in sorted(by_class):
        idx = by_class[y]
        rng.shuffle(idx)
        chosen.extend(idx[: max(1, round(n * len(idx) / len(split)))])
    rng.shuffle(chosen)
    chosen = chosen[:n]
    return Split([split.texts[i] for i in chosen], [split.labels[i] for i in chosen])


# --------------------------------------------------------------------------- your own labelled data

#: What ``load_labelled`` splits into when neither ``splits`` nor a split column says otherwise.
DEFAULT_SPLITS = (0.8, 0.1, 0.1)
#: The values a split column may hold (lower case, spaces stripped), and the split each means.
SPLIT_VALUES = {"train": "train", "training": "train", "validation": "validation", "valid": "validation",
                "val": "validation", "dev": "validation", "test": "test", "testing": "test"}
SPLIT_NAMES = ("train", "validation", "test")


@dataclass
class Table:
    """Columns of a user's table as lists, read by ``read_table`` or ``as_table``.

    ``names``: the column names in order (``0, 1, ...`` for a file without a header);
    ``columns[name]``: that column's values; ``where[i]``: where row ``i`` came from, for
    error messages (``"spam.tsv:3"``, ``"row 3"``); ``source``: what was read.
    """

    names: list[Any]
    columns: dict[Any, list[Any]]
    where: list[str]
    source: str
    details: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.where)

    def column(self, spec: Any, argument: str) -> list[Any]:
        """The column named ``spec`` (or at position ``spec``, an int), or a ``ValueError`` that
        lists the columns there are. Example: ``table.column("text", "text_column")``."""
        if isinstance(spec, bool) or not isinstance(spec, (str, int)):
            raise TypeError(f"{argument} must be a column name (str) or position (int), got "
                            f"{type(spec).__name__} {spec!r:.40}")
        if spec in self.columns:
            return self.columns[spec]
        if isinstance(spec, int) and 0 <= spec < len(self.names):
            return self.columns[self.names[spec]]
        hint = ""
        if self.details.get("header"):
            hint = (" (the first line is read as the header: if it is a data row, pass header=False and "
                    "give the columns by position, e.g. label_column=0, text_column=1)")
        raise ValueError(f"{self.source} has no column {spec!r} ({argument}); its columns are "
                         f"{[str(n)[:40] for n in self.names]}{hint}")


def guess_delimiter(path: Path, sample: str) -> str:
    """The field separator of a delimited text file: tab for ``.tsv`` / ``.tab``, comma for
    ``.csv``, else sniffed from ``sample`` (its first lines) among tab, comma, ``;`` and ``|``.

    Example: ``guess_delimiter(Path("spam.txt"), "label\\ttext\\nham\\thi\\n")`` is ``"\\t"``.
    """
    suffix = path.suffix.lower()
    if suffix in {".tsv", ".tab"}:
        return "\t"
    if suffix == ".csv":
        return ","
    try:
        return csv.Sniffer().sniff(sample, delimiters="\t,;|").delimiter
    except csv.Error:
        first = next((line for line in sample.splitlines() if line.strip()), "")
        for candidate in ("\t", ",", ";", "|"):
            if candidate in first:
                return candidate
        raise DataFormatError(f"{path}: cannot tell which character separates the columns (no tab, comma, ';' "
                              "or '|' on its first line); pass sep=") from None


def read_table(path: str | Path, *, sep: str | None = None, header: bool = True,
               encoding: str = "utf-8") -> Table:
    """Read a CSV / TSV file into a ``Table``: one column per field of the header line.

    ``sep``: the separator (default: from the extension, else sniffed, see
    ``guess_delimiter``). Tab-separated files are read without quote handling (as GLUE's
    and the SMS Spam Collection's are: a text may hold ``"`` freely); other separators
    follow the CSV rules (fields may be quoted, with ``""`` for a quote). ``header=False``:
    every line is data and the columns are named ``0, 1, ...``. Blank lines are skipped.

    Raises ``FileNotFoundError``, and ``DataFormatError`` (a ``ValueError``) for an empty
    file, a header without rows, undecodable bytes or a row with the wrong number of fields,
    naming the line.

    Example::

        table = read_table("spam.tsv")          # label<TAB>text header, then rows
        table.names, table.column("text", "text_column")[:2]
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no file {path} (load_labelled reads a CSV/TSV file, a DataFrame, or "
                                "a pair (texts, labels))")
    if sep is not None and (not isinstance(sep, str) or len(sep) != 1):
        raise ValueError(f"sep must be one character such as '\\t' or ',', got {sep!r}")
    codec = "utf-8-sig" if encoding.lower().replace("_", "-") in {"utf-8", "utf8"} else encoding
    try:
        content = path.read_text(encoding=codec)
    except UnicodeDecodeError as err:
        raise DataFormatError(f"{path} is not {encoding} text ({err.reason} at byte {err.start}): pass the "
                              "file's encoding, e.g. encoding='cp1252' or 'latin-1'") from None
    if not content.strip():
        raise DataFormatError(f"{path} is empty: expected a header line (e.g. 'label<TAB>text') and rows")
    delimiter = sep if sep is not None else guess_delimiter(path, content[:65536])
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    # newline="": lines end at \n, \r or \r\n only (str.splitlines would also cut at U+2028 and others)
    reader = csv.reader(io.StringIO(content, newline=""), delimiter=delimiter, quoting=quoting)
    names: list[Any] | None = None
    rows: list[list[str]] = []
    where: list[str] = []
    for row in reader:
        if not row or all(not field_.strip() for field_ in row):
            continue
        if names is None and header:
            names = [field_.strip() for field_ in row]
            if len(set(names)) != len(names):
                raise DataFormatError(f"{path}:{reader.line_num}: the header repeats a column name: {names}")
            continue
        if names is None:
            names = list(range(len(row)))
        if header and [field_.strip() for field_ in row] == names:
            raise DataFormatError(f"{path}:{reader.line_num} repeats the header line {names} (were files "
                                  "joined?): remove it, or it would become a row with the label "
                                  f"{row[0]!r:.30}")
        if len(row) != len(names):
            shown = "<TAB>" if delimiter == "\t" else repr(delimiter)
            raise DataFormatError(f"{path}:{reader.line_num}: expected {len(names)} fields separated by {shown} "
                                  f"(columns {[str(n)[:30] for n in names]}), got {len(row)}: {row!r:.150}")
        rows.append(row)
        where.append(f"{path.name}:{reader.line_num}")
    if not rows:
        raise DataFormatError(f"{path} has a header line ({names}) but no rows")
    assert names is not None
    columns = {n: [r[j] for r in rows] for j, n in enumerate(names)}
    return Table(names, columns, where, str(path), {"delimiter": delimiter, "header": header})


def as_table(source: Any, *, sep: str | None = None, header: bool = True, encoding: str = "utf-8",
             text_column: Any = "text", label_column: Any = "label") -> Table:
    """``load_labelled``'s ``source`` as a ``Table``: a CSV/TSV path (``read_table``), a pandas
    ``DataFrame``, a dict of columns, or a pair ``(texts, labels)`` (whose columns are then
    called ``text_column`` and ``label_column``). Anything else raises ``TypeError``.

    Example: ``as_table((["hi", "win cash"], ["ham", "spam"])).column("label", "label_column")``.
    """
    if isinstance(source, (str, os.PathLike)):
        return read_table(source, sep=sep, header=header, encoding=encoding)
    pandas = sys.modules.get("pandas")        # a DataFrame exists only where pandas was imported
    if pandas is not None and isinstance(source, pandas.DataFrame):
        if source.empty or len(source) == 0:
            raise ValueError("the DataFrame has no rows")
        names = list(source.columns)
        if len(set(map(str, names))) != len(names):
            raise ValueError(f"the DataFrame repeats a column name: {names}")
        columns = {n: source[n].tolist() for n in names}
        return Table(names, columns, [f"row {i}" for i in range(len(source))], "the DataFrame")
    if isinstance(source, dict):
        names = list(source)
        columns = {}
        for n in names:
            col = source[n]
            if isinstance(col, (str, bytes)) or not hasattr(col, "__len__"):
                raise TypeError(f"a dict source maps column names to lists; column {n!r} is {type(col).__name__}")
            columns[n] = list(col)
        lengths = {n: len(c) for n, c in columns.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"the dict's columns differ in length: {lengths}")
        if not names or not next(iter(lengths.values())):
            raise ValueError("the dict source has no rows")
        return Table(names, columns, [f"row {i}" for i in range(len(columns[names[0]]))], "the dict of columns")
    if isinstance(source, (tuple, list)) and len(source) == 2 and all(
            hasattr(part, "__len__") and not isinstance(part, (str, bytes, dict)) for part in source):
        texts, labels = list(source[0]), list(source[1])
        if len(texts) != len(labels):
            raise ValueError(f"the pair (texts, labels) has {len(texts)} texts but {len(labels)} labels")
        if not texts:
            raise ValueError("the pair (texts, labels) is empty: there is nothing to learn from")
        for spec, argument in ((text_column, "text_column"), (label_column, "label_column")):
            if isinstance(spec, bool) or not isinstance(spec, (str, int)):
                raise TypeError(f"{argument} must be a column name (str) or position (int), got "
                                f"{type(spec).__name__} {spec!r}")
        if text_column == label_column:
            raise ValueError(f"text_column and label_column are both {text_column!r}")
        names = [text_column, label_column]
        return Table(names, {text_column: texts, label_column: labels}, [f"item {i}" for i in range(len(texts))],
                     "the pair (texts, labels)")
    raise TypeError("source must be a path of a CSV/TSV file, a pandas DataFrame, a dict of columns or a pair "
                    f"(texts, labels) of lists; got {type(source).__name__}")


def is_missing(value: Any) -> bool:
    """True for None and NaN (pandas' missing value), the cells of a table that hold nothing.
    Example: ``is_missing(float("nan"))`` is True, ``is_missing("")`` is False."""
    if value is None or (isinstance(value, float) and value != value):
        return True
    return type(value).__name__ in {"NAType", "NaTType"}      # pandas' pd.NA and pd.NaT


def clean_texts(values: list[Any], where: list[str]) -> list[str]:
    """The text column as strings, or an error naming the first row whose text is missing, blank
    or not a string. Example: ``clean_texts(["hi", " "], ["row 0", "row 1"])`` raises ``ValueError``
    (``row 1: the text is blank``)."""
    for i, t in enumerate(values):
        if is_missing(t):
            raise ValueError(f"{where[i]}: the text is missing: fill it or drop the row")
        if not isinstance(t, str):
            raise TypeError(f"{where[i]}: the text is {type(t).__name__} {t!r:.40}, not a string")
        if not t.strip():
            raise ValueError(f"{where[i]}: the text is blank: a classifier can say nothing about no text; "
                             "fill it or drop the row")
    return [str(t) for t in values]


def read_label(value: Any, where: str) -> int | str:
    """One label cell as an ``int`` (a whole number, also written as text: ``"2"``, ``2.0``) or
    a stripped ``str`` (a word); an error for a missing, blank or fractional label.
    Example: ``read_label(" 1 ", "row 0")`` is ``1``; ``read_label("spam", "row 0")`` is ``"spam"``."""
    import numbers

    if is_missing(value):
        raise ValueError(f"{where}: the label is missing")
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return str(bool(value))
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise ValueError(f"{where}: the label is blank")
        try:
            number = float(text)
        except ValueError:
            return text
        if number != number or abs(number) == float("inf") or not number.is_integer():
            raise ValueError(f"{where}: the label {text!r} is not a whole number: labels name classes")
        return int(number)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        if not float(value).is_integer():
            raise ValueError(f"{where}: the label {value!r} is not a whole number: labels name classes, "
                             "they are not measurements")
        return int(value)
    raise TypeError(f"{where}: the label is {type(value).__name__} {value!r:.40}; labels are words or whole numbers")


def labels_to_ids(raw: list[int | str], where: list[str], label_names: Any = None
                  ) -> tuple[list[int], list[str], dict[Any, int], list[str]]:
    """Map label values (``read_label``'s) to class ids 0..n-1: ``(ids, names, label_map, notes)``.

    * ``label_names=None``: ids in sorted order of the values; the names are the values;
    * a list of names (or a dict ``{id: name}``, as ``id2label``): word labels must each be one
      of the names and take its position as id; number labels take the names in sorted order;
    * a dict ``{value: name}`` whose keys are exactly the number labels found names them.

    Numbers that are not already 0..n-1 (1/2, or -1/1) are mapped in sorted order, and a
    note says so. Labels that mix words and numbers are all read as words (a note too).

    Example: ``labels_to_ids(["spam", "ham"], ["r0", "r1"])[:2]`` is ``([1, 0], ["ham", "spam"])``.
    """
    notes: list[str] = []
    numeric = all(isinstance(v, int) for v in raw)
    if not numeric and any(isinstance(v, int) for v in raw):
        notes.append("the labels mix numbers and words; all were read as words (check for typos)")
        raw = [str(v) for v in raw]
    values = sorted(set(raw))
    if numeric:
        if isinstance(label_names, dict) and set(label_names) == set(values) and values != list(range(len(values))):
            names = as_label_names({i: label_names[v] for i, v in enumerate(values)})
        else:
            names = [str(v) for v in values] if label_names is None else as_label_names(label_names)
        if len(names) != len(values):
            raise ValueError(f"label_names has {len(names)} names but the labels hold {len(values)} classes "
                             f"({values[:10]})")
        label_map = {v: i for i, v in enumerate(values)}
        if values != list(range(len(values))):
            notes.append(f"the labels are the numbers {values[:10]}, not 0..{len(values) - 1}: mapped in sorted "
                         "order, " + ", ".join(f"{v} -> {i}" for v, i in list(label_map.items())[:10]))
    else:
        if label_names is None:
            names = [str(v) for v in values]
        else:
            names = as_label_names(label_names)
            unknown = [v for v in values if v not in names]
            if unknown:
                first = where[raw.index(unknown[0])]
                raise ValueError(f"the labels hold {unknown[:10]}, which label_names {names[:10]} does not list "
                                 f"(first at {first})")
            unused = [n for n in names if n not in set(values)]
            if unused:
                raise ValueError(f"label_names lists {unused[:10]}, which no row has as its label "
                                 f"(the labels are {values[:10]})")
        label_map = {v: names.index(v) for v in values}
    return [label_map[v] for v in raw], names, label_map, notes


def stratified_split(labels: list[int], fractions: tuple[float, float, float], seed: int,
                     label_names: Sequence[str]) -> tuple[list[int], list[int], list[int]]:
    """Row indices for train / validation / test, the classes in the same proportions in each:
    per class, a seeded shuffle cut by ``fractions`` (train, validation, test), each split with
    a non-zero fraction getting at least one example of every class.

    Raises ``ValueError`` naming a class with too few examples for that. Example::

        stratified_split([0] * 8 + [1] * 8, (0.5, 0.25, 0.25), 0, ["a", "b"])   # 8 / 4 / 4 rows
    """
    rng = random.Random(seed)
    wanted = [name for name, f in zip(SPLIT_NAMES, fractions) if f > 0]
    by_class: dict[int, list[int]] = {}
    for i, y in enumerate(labels):
        by_class.setdefault(y, []).append(i)
    parts: list[list[int]] = [[], [], []]
    for y in sorted(by_class):
        idx = by_class[y]
        if len(idx) < len(wanted):
            raise ValueError(f"class {label_names[y]!r} has {len(idx)} example(s): too few to stratify, which puts "
                             f"at least one in each of {', '.join(wanted)}; add examples, merge or drop the "
                             "class, or change splits= (e.g. (0.9, 0.1, 0.0))")
        rng.shuffle(idx)
        n = len(idx)
        n_val = max(1, round(n * fractions[1])) if fractions[1] > 0 else 0
        n_test = max(1, round(n * fractions[2])) if fractions[2] > 0 else 0
        while n - n_val - n_test < 1:        # train keeps at least one
            if n_val >= n_test and n_val > 1:
                n_val -= 1
            else:
                n_test -= 1
        parts[2].extend(idx[:n_test])
        parts[1].extend(idx[n_test:n_test + n_val])
        parts[0].extend(idx[n_test + n_val:])
    for part in parts:
        rng.shuffle(part)      # classes interleaved, in a seeded order
    return parts[0], parts[1], parts[2]


def split_report(splits: dict[str, Split], label_names: Sequence[str]) -> dict[str, Any]:
    """Class balance per split and duplicate texts, as ``load_labelled`` puts in ``report``.

    Returns ``{"class_balance": {split: {name: count}}, "duplicates": {...}}`` where
    ``duplicates`` holds ``across_splits`` (how many distinct texts occur in more than one
    split: a test text also seen in training inflates the test score), ``by_pair``
    (``"train/test"``: count), ``within_splits`` (extra copies inside one split),
    ``conflicting_labels`` (texts given different labels) and up to 10 ``examples``.

    Example: ``split_report(ds.splits(), ds.label_names)["duplicates"]["across_splits"]``.
    """
    balance = {name: {label: 0 for label in label_names} for name in splits}
    seen: dict[str, set[str]] = {}
    labels_of: dict[str, set[int]] = {}
    within = 0
    for name, split in splits.items():
        counts = collections.Counter(split.labels)
        for y, c in sorted(counts.items()):
            balance[name][label_names[y]] = c
        in_split = collections.Counter(split.texts)
        within += sum(c - 1 for c in in_split.values())
        for text, y in zip(split.texts, split.labels):
            seen.setdefault(text, set()).add(name)
            labels_of.setdefault(text, set()).add(y)
    shared = [t for t, where in seen.items() if len(where) > 1]
    by_pair = {}
    names = list(splits)
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            by_pair[f"{names[a]}/{names[b]}"] = sum(1 for t in shared if {names[a], names[b]} <= seen[t])
    return {"class_balance": balance,
            "duplicates": {"across_splits": len(shared), "by_pair": by_pair, "within_splits": within,
                           "conflicting_labels": sum(1 for ys in labels_of.values() if len(ys) > 1),
                           "examples": shared[:10]}}


def check_fractions(splits: Any) -> tuple[float, float, float]:
    """``splits`` as three fractions (train, validation, test) >= 0 that sum to 1, train > 0.
    Example: ``check_fractions((0.8, 0.1, 0.1))``; ``check_fractions((0.5, 0.5))`` raises ``ValueError``."""
    if isinstance(splits, (str, bytes)) or not isinstance(splits, (tuple, list)):
        raise TypeError(f"splits must be three fractions (train, validation, test), got {type(splits).__name__}")
    if len(splits) != 3:
        raise ValueError(f"splits must be three fractions (train, validation, test), got {len(splits)}: {splits!r}")
    fractions = tuple(check_number(f, f"splits[{i}] ({SPLIT_NAMES[i]})", low=0, high=1) for i, f in enumerate(splits))
    if abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"splits must sum to 1, got {splits!r} (sum {sum(fractions):g})")
    if fractions[0] == 0:
        raise ValueError("splits gives the training split nothing: its first fraction must be above 0")
    return fractions   # type: ignore[return-value]


def load_labelled(source: Any, *, text_column: str | int = "text", label_column: str | int = "label",
                  split_column: str | int | None = "split", label_names: Any = None,
                  splits: tuple[float, float, float] | None = None, seed: int = 0, sep: str | None = None,
                  header: bool = True, encoding: str = "utf-8", name: str | None = None) -> TextDataset:
    """Your own labelled texts as a ``TextDataset``, ready for the lesson's pipeline.

    ``source``: a CSV/TSV file with a header line (``read_table``: the separator comes from
    the extension or is sniffed; ``sep`` forces one; ``header=False`` for a file without
    one, the columns then given by position), a pandas ``DataFrame``, a dict of columns, or a
    pair ``(texts, labels)``. ``text_column`` / ``label_column`` name the columns (or give
    their positions).

    Labels may be words (``"ham"``/``"spam"``) or whole numbers; they become the ids
    0..n-1 in sorted order, or in the order of ``label_names`` (``labels_to_ids``), and the
    names are kept in ``label_names``. Numbers that are not 0..n-1 are mapped too, and the
    report says how.

    Splits: if the table has a column ``split_column`` (default ``"split"``) its values
    (train / validation / test; also dev, val, valid) decide; a missing validation or test
    split is then empty, with a note. Otherwise a seeded, stratified random split by
    ``splits`` (default ``(0.8, 0.1, 0.1)``; ``stratified_split``). Pass
    ``split_column=None`` to ignore such a column.

    Nothing is printed: ``dataset.report`` is a dict with ``source``, ``rows``,
    ``label_map`` (value -> id), ``split_by``, ``class_balance`` (per split, per name),
    ``duplicates`` (texts in more than one split, and more: ``split_report``) and ``notes``.

    Raises ``ValueError`` (``DataFormatError`` for file layout) for an empty file, a missing
    column (the message lists the columns there are), a missing or blank text or label
    (naming the row), a class too small to stratify, bad ``splits``; ``TypeError`` for
    a source or argument of the wrong type.

    Example::

        ds = data.load_labelled("spam.tsv", label_names=["ham", "spam"])   # label<TAB>text lines
        ds.label_names, ds.train.labels[:5], ds.report["class_balance"]["test"]
        ds = data.load_labelled((texts, labels), splits=(0.7, 0.15, 0.15), seed=1)
    """
    seed = check_int(seed, "seed")
    if not isinstance(header, bool):
        raise TypeError(f"header must be True or False, got {header!r}")
    if not isinstance(encoding, str):
        raise TypeError(f"encoding must be a codec name such as 'utf-8', got {type(encoding).__name__}")
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    if split_column is not None and (isinstance(split_column, bool) or not isinstance(split_column, (str, int))):
        raise TypeError(f"split_column must be a column name (str), a position (int) or None, got "
                        f"{type(split_column).__name__} {split_column!r:.40}")
    fractions = None if splits is None else check_fractions(splits)
    table = as_table(source, sep=sep, header=header, encoding=encoding, text_column=text_column,
                     label_column=label_column)
    texts = clean_texts(table.column(text_column, "text_column"), table.where)
    label_values = table.column(label_column, "label_column")
    if label_values is table.column(text_column, "text_column"):
        raise ValueError(f"text_column and label_column are the same column ({text_column!r})")
    raw = [read_label(v, table.where[i]) for i, v in enumerate(label_values)]
    ids, names, label_map, notes = labels_to_ids(raw, table.where, label_names)
    if len(names) < 2:
        raise ValueError(f"every row has the label {names[0]!r}: a classifier needs at least two classes")

    use_column = split_column is not None and (split_column in table.columns or (
        isinstance(split_column, int) and not isinstance(split_column, bool) and split_column < len(table.names)))
    if use_column:
        if fractions is not None:
            raise ValueError(f"{table.source} has a split column {split_column!r}, and splits= was given too: "
                             "pass split_column=None to split at random by splits=, or drop splits=")
        parts: dict[str, list[int]] = {s: [] for s in SPLIT_NAMES}
        for i, value in enumerate(table.column(split_column, "split_column")):
            key = str(value).strip().lower() if not is_missing(value) else ""
            if key not in SPLIT_VALUES:
                raise ValueError(f"{table.where[i]}: the split column {split_column!r} holds {value!r}; expected "
                                 "train, validation or test (or dev / val)")
            parts[SPLIT_VALUES[key]].append(i)
        if not parts["train"]:
            raise ValueError(f"the split column {split_column!r} puts no row in train")
        for s in ("validation", "test"):
            if not parts[s]:
                notes.append(f"the split column puts no row in {s}: that split is empty")
        order = (parts["train"], parts["validation"], parts["test"])
        split_by = f"the column {split_column!r}"
    else:
        fractions = fractions or DEFAULT_SPLITS
        order = stratified_split(ids, fractions, seed, names)
        split_by = f"stratified random split {tuple(fractions)}, seed {seed}"
    made = [Split([texts[i] for i in idx], [ids[i] for i in idx]) for idx in order]
    source_is_path = isinstance(source, (str, os.PathLike))
    default_name = Path(source).stem if source_is_path else "own_data"
    report = {"source": table.source, "rows": len(texts), "label_names": names, "label_map": label_map,
              "split_by": split_by, **split_report(dict(zip(SPLIT_NAMES, made)), names), "notes": notes}
    if source_is_path:
        report["delimiter"] = table.details.get("delimiter")
    if report["duplicates"]["across_splits"]:
        notes.append(f"{report['duplicates']['across_splits']} text(s) occur in more than one split "
                     "(see report['duplicates']): scores on those splits are optimistic")
    return TextDataset(name or default_name, made[0], made[1], made[2], names, source=table.source, report=report)
