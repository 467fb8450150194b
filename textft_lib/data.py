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

Return types:

* ``wiki``: ``list[Article]`` (title, text), ``lee``: ``list[str]``
* ``movie_reviews``, ``sst2``, ``ag_news``: ``TextDataset`` (train / validation / test
  ``Split``s of texts and integer labels, plus label names); splits are deterministic
* ``wordsim353``, ``simlex999``: ``list[tuple[str, str, float]]``
* ``questions_words``: ``dict[str, list[tuple[str, str, str, str]]]`` (section -> questions)
* ``glove_sample``: ``Path`` of a file in GloVe's text format
* ``glove-wiki-gigaword-100``: ``Path`` of the downloaded GloVe text file
"""

from __future__ import annotations

import bz2
import csv
import gzip
import hashlib
import os
import random
import tempfile
import urllib.request
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from textft_lib import config

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
    """One split of a labelled text dataset: ``texts[i]`` has label ``labels[i]``."""

    texts: list[str]
    labels: list[int]

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.labels):
            raise ValueError(f"{len(self.texts)} texts but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.texts)


@dataclass
class TextDataset:
    """A labelled text dataset with deterministic train / validation / test splits."""

    name: str
    train: Split
    validation: Split
    test: Split
    label_names: list[str]
    source: str = ""

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


def sha256_of(path: Path) -> str:
    return file_digest(path, "sha256")


def atomic_write(dest: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file next to ``dest``, then rename it to ``dest``,
    so a reader sees either the old file or the whole new one, never half of it. If
    ``write`` fails, the temporary file is removed and ``dest`` is left as it was.

    Example::

        atomic_write(path, lambda tmp: tmp.write_text("done"))
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest


def atomic_write_bytes(dest: Path, payload: bytes) -> Path:
    """Write ``payload`` to ``dest`` atomically (see ``atomic_write``), synced to disk."""
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())

    return atomic_write(dest, write)


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
    when labelled, test.tsv the test split. Online, GLUE's test split has no labels, so a
    fixed 872-sentence slice of the training set becomes the test split instead.
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
            train, _, test = _split(train.texts, train.labels, (0.0, 872 / len(train)), seed)
        return TextDataset("sst2", train, val, test, ["negative", "positive"], source=str(folder))
    require_online("SST-2", SST2_HINT)
    ds = _hf_dataset("glue", "sst2", hint=SST2_HINT)
    tr = ds["train"]
    train, _, test = _split(list(tr["sentence"]), list(tr["label"]), (0.0, 872 / len(tr)), seed)
    val = Split(list(ds["validation"]["sentence"]), list(ds["validation"]["label"]))
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
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
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
