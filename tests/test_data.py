"""textft_lib.data: every offline source loads real text; local and online sources fail
with messages that say what to do; downloads are atomic and verified."""

import sys
import hashlib
import os
import urllib.request
from pathlib import Path

import pytest

from textft_lib import cache, data

SHARED_SST2 = Path(__file__).resolve().parents[2] / "shared" / "data" / "sst2"


def test_wiki_is_real_articles():
    articles = data.load("wiki")
    assert 100 <= len(articles) <= 110
    words = sum(len(a.text.split()) for a in articles)
    assert 400_000 < words < 560_000
    titles = [a.title for a in articles]
    assert "Anarchism" in titles and len(set(titles)) == len(titles)
    assert not any(a.text.lstrip().lower().startswith("#redirect") for a in articles)
    raw = data.load("wiki", raw=True, limit=3)
    assert len(raw) == 3 and "[[" in raw[0].text + raw[1].text + raw[2].text


def test_wiki_bad_limit():
    with pytest.raises(ValueError, match="limit must be at least 1"):
        data.load("wiki", limit=0)


def test_lee_corpus():
    docs = data.load("lee")
    assert len(docs) == 300 and all(len(d.split()) > 10 for d in docs)


def test_movie_reviews_splits_are_fixed_and_disjoint():
    a, b = data.load("movie_reviews"), data.load("movie_reviews")
    assert (len(a.train), len(a.validation), len(a.test)) == (140, 30, 30)
    assert a.train.texts == b.train.texts and a.test.labels == b.test.labels
    assert a.label_names == ["neg", "pos"]
    seen = set(a.train.texts)
    assert not seen & set(a.validation.texts) and not seen & set(a.test.texts)
    assert set(a.train.labels) == {0, 1}
    other = data.load("movie_reviews", seed=1)
    assert other.train.texts != a.train.texts


def test_benchmarks_and_glove_sample():
    assert len(data.load("wordsim353")) == 353
    simlex = data.load("simlex999")
    assert len(simlex) == 999 and simlex[0] == ("old", "new", 1.58)
    analogies = data.load("questions_words")
    assert len(analogies) == 14 and sum(map(len, analogies.values())) == 19544
    glove = data.load("glove_sample")
    first = glove.read_text(encoding="utf-8").splitlines()[0].split()
    assert first[0] == "the" and len(first) > 50


def test_unknown_name_lists_known_ones():
    with pytest.raises(KeyError, match="known sources: wiki, lee, movie_reviews"):
        data.load("imdb")


def test_catalog_lists_everything(monkeypatch):
    monkeypatch.setenv("TEXTFT_OFFLINE", "1")
    monkeypatch.delenv("TEXTFT_DATA_DIR", raising=False)
    rows = {r["name"]: r for r in data.catalog()}
    assert set(rows) == set(data.CATALOG)
    assert rows["wiki"]["available"] == "bundled (gensim)"
    assert rows["sst2"]["available"] == "unavailable (offline)"


@pytest.mark.parametrize("name", ["sst2", "ag_news", "glove-wiki-gigaword-100"])
def test_online_sources_offline_name_the_data_dir(monkeypatch, name):
    monkeypatch.setenv("TEXTFT_OFFLINE", "1")
    monkeypatch.delenv("TEXTFT_DATA_DIR", raising=False)
    with pytest.raises(data.OfflineError, match="TEXTFT_DATA_DIR"):
        data.load(name)


def write_sst2(folder: Path, dev_body: str) -> None:
    (folder / "sst2").mkdir(parents=True)
    (folder / "sst2" / "train.tsv").write_text("label\tsentence\n1\ta fine film\n0\ta dull one\n")
    (folder / "sst2" / "dev.tsv").write_text("label\tcontent\n" + dev_body)
    (folder / "sst2" / "test.tsv").write_text("label\tcontent\n1\tgood\n")


def test_sst2_from_local_folder(monkeypatch, tmp_path):
    write_sst2(tmp_path, '1\tit "works" , really\n0\tno\n')
    monkeypatch.setenv("TEXTFT_DATA_DIR", str(tmp_path))
    ds = data.load("sst2")
    assert ds.train.texts == ["a fine film", "a dull one"] and ds.train.labels == [1, 0]
    assert ds.validation.texts[0] == 'it "works" , really'  # quotes are text, not CSV quoting


def test_sst2_without_labelled_test_splits_dev_not_train(monkeypatch, tmp_path):
    dev = "".join(f"{i % 2}\tdev sentence {i}\n" for i in range(10))
    write_sst2(tmp_path, dev)
    (tmp_path / "sst2" / "test.tsv").unlink()
    monkeypatch.setenv("TEXTFT_DATA_DIR", str(tmp_path))
    ds = data.load("sst2")
    assert ds.train.texts == ["a fine film", "a dull one"]             # training phrases untouched
    assert len(ds.validation) == len(ds.test) == 5
    assert sorted(ds.validation.texts + ds.test.texts) == sorted(f"dev sentence {i}" for i in range(10))

    hub = {"train": {"sentence": ["a fine film"], "label": [1]},          # the online path: the same cut
           "validation": {"sentence": [f"dev sentence {i}" for i in range(10)], "label": [i % 2 for i in range(10)]}}
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.setenv("TEXTFT_DATA_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setattr(data, "require_online", lambda *a: None)
    monkeypatch.setattr(data, "_hf_dataset", lambda *a, **k: hub)
    online = data.load_sst2()
    assert online.train.texts == ["a fine film"] and online.test.texts == ds.test.texts


def test_sst2_malformed_line_is_named(monkeypatch, tmp_path):
    write_sst2(tmp_path, "1\tfine\nsure\tthing\n")
    monkeypatch.setenv("TEXTFT_DATA_DIR", str(tmp_path))
    with pytest.raises(data.DataFormatError, match=r"dev\.tsv:3"):
        data.load("sst2")


def test_malformed_similarity_and_analogy_files(tmp_path):
    sim = tmp_path / "sim.tsv"
    sim.write_text("# comment\na\tb\t1.0\nc\td\tlots\n")
    with pytest.raises(data.DataFormatError, match=r"sim\.tsv:3"):
        data.read_similarity(sim)
    ana = tmp_path / "q.txt"
    ana.write_text(": capitals\nAthens Greece Rome Italy\nAthens Greece Rome\n")
    with pytest.raises(data.DataFormatError, match=r"q\.txt:3"):
        data.read_analogies(ana)


@pytest.mark.skipif(not SHARED_SST2.exists(), reason="the shared SST-2 copy is not next to this checkout")
def test_real_sst2_copy(monkeypatch):
    monkeypatch.setenv("TEXTFT_DATA_DIR", str(SHARED_SST2.parent))
    ds = data.load("sst2")
    assert (len(ds.train), len(ds.validation), len(ds.test)) == (67349, 872, 1821)
    assert sum(ds.validation.labels) == 444


class FakeResponse:
    def __init__(self, payload: bytes, fail_after: int | None = None):
        self.payload, self.pos, self.fail_after = payload, 0, fail_after

    def read(self, n: int) -> bytes:
        if self.fail_after is not None and self.pos >= self.fail_after:
            raise TimeoutError("the connection timed out")
        chunk = self.payload[self.pos:self.pos + min(n, 4)]
        self.pos += len(chunk)
        return chunk

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_download_verifies_and_is_atomic(monkeypatch, tmp_path):
    monkeypatch.delenv("TEXTFT_OFFLINE", raising=False)
    payload = b"hello world, twelve"
    good = hashlib.sha256(payload).hexdigest()
    seen = {}

    def fake_urlopen(url, timeout):
        seen["timeout"] = timeout
        return FakeResponse(payload)

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    dest = tmp_path / "cache" / "file.txt"
    assert data.download("http://example.invalid/f", dest, sha256=good).read_bytes() == payload
    assert seen["timeout"] == data.DOWNLOAD_TIMEOUT
    # A corrupt download is discarded and leaves nothing behind.
    with pytest.raises(data.OfflineError, match="checksum mismatch"):
        data.download("http://example.invalid/f", tmp_path / "bad.txt", sha256="0" * 64)
    assert not (tmp_path / "bad.txt").exists()
    # A download cut off half-way leaves no partial file, and the old file stays intact.
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: FakeResponse(b"x" * 64, fail_after=8))
    dest.write_bytes(b"previous content")
    with pytest.raises(data.OfflineError, match="timed out"):
        data.download("http://example.invalid/f", dest, sha256=good)
    assert dest.read_bytes() == b"previous content"
    assert [p.name for p in dest.parent.iterdir()] == ["file.txt"]


def test_download_respects_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("TEXTFT_OFFLINE", "1")
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: pytest.fail("network touched"))
    with pytest.raises(data.OfflineError, match="TEXTFT_OFFLINE is set"):
        data.download("http://example.invalid/f", tmp_path / "f")


def test_atomic_write(tmp_path):
    path = cache.atomic_write_bytes(tmp_path / "a" / "b.bin", b"abc")
    assert path.read_bytes() == b"abc" and os.listdir(path.parent) == ["b.bin"]
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask           # the mode open() would give, not private


def test_online_without_the_datasets_package_says_so(monkeypatch):
    # Online, but `datasets` is missing: a missing package, not a network problem.
    monkeypatch.setenv("TEXTFT_OFFLINE", "0")
    monkeypatch.delenv("TEXTFT_DATA_DIR", raising=False)
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(ModuleNotFoundError, match="course.py setup"):
        data.load_sst2()
