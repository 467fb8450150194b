"""Our GloVe against gensim's word2vec, on the same corpus and vocabulary, in one run.

Prints the co-occurrence build time, the training times, wordsim353 / simlex999 Spearman
correlations and analogy accuracy, and writes ``assets/benchmarks/word_vectors.json``.

    python benchmarks/word_vectors.py              # full size (the whole Wikipedia corpus)
    python benchmarks/word_vectors.py --quick      # a small smoke run
    python benchmarks/word_vectors.py --threads 2  # threads for torch and gensim alike

Goals: GloVe reaches >= 0.9x word2vec's wordsim353 Spearman and trains in <= 2x its
time; the co-occurrence matrix of the whole corpus (window 10) builds in < 20 s.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import time

import torch
from gensim.models import Word2Vec

from textft_lib import config, vectors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="use the quick-mode sizes")
    parser.add_argument("--threads", type=int, default=1, help="threads for torch and gensim (same for both)")
    parser.add_argument("--w2v-epochs", type=int, default=5, help="word2vec epochs (gensim's default is 5)")
    parser.add_argument("--out", default=None, help="JSON path (default assets/benchmarks/word_vectors.json)")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    settings = vectors.glove_settings(quick=args.quick)
    docs = vectors.wiki_corpus(limit=settings["articles"])
    vocab = vectors.build_vocab(docs, min_count=settings["min_count"])
    ids = vectors.encode(docs, vocab)
    n_tokens = sum(len(d) for d in docs)
    print(f"corpus: {len(docs)} articles, {n_tokens} tokens, vocabulary {len(vocab)} (min count "
          f"{settings['min_count']}), {args.threads} thread(s)")

    start = time.perf_counter()
    X = vectors.cooccurrence(ids, len(vocab), window=settings["window"])
    cooc_s = time.perf_counter() - start

    glove = vectors.train_glove(X, dim=settings["dim"], epochs=settings["epochs"], batch_size=settings["batch_size"],
                                lr=settings["lr"], x_max=settings["x_max"], alpha=settings["alpha"],
                                seed=settings["seed"], num_threads=args.threads, progress=False)
    glove_kv = vectors.to_keyed_vectors(vocab.words, glove.vectors)

    # gensim truncates "sentences" longer than 10,000 tokens: feed articles in such chunks.
    chunks = [d[i:i + 10_000] for d in docs for i in range(0, len(d), 10_000)]
    start = time.perf_counter()
    w2v = Word2Vec(chunks, vector_size=settings["dim"], window=settings["window"], min_count=settings["min_count"],
                   sg=1, negative=5, epochs=args.w2v_epochs, workers=args.threads, seed=settings["seed"])
    w2v_s = time.perf_counter() - start
    if set(w2v.wv.index_to_key) != set(vocab.words):
        raise RuntimeError("word2vec and GloVe ended up with different vocabularies")

    results = {"glove (ours)": vectors.evaluate(glove_kv), "word2vec (gensim)": vectors.evaluate(w2v.wv)}
    times = {"glove (ours)": glove.seconds, "word2vec (gensim)": w2v_s}
    print(f"\nco-occurrence matrix, window {settings['window']}: {cooc_s:.2f} s, {X.nnz} non-zero entries\n")
    print(f"{'':<20} {'train s':>8} {'wordsim353':>11} {'simlex999':>10} {'analogy':>8}")
    for name, r in results.items():
        print(f"{name:<20} {times[name]:>8.1f} {r['wordsim353']['spearman']:>11.3f} "
              f"{r['simlex999']['spearman']:>10.3f} {r['analogy']['accuracy']:>8.3f}")
    g, w = results["glove (ours)"], results["word2vec (gensim)"]
    ratio_quality = g["wordsim353"]["spearman"] / w["wordsim353"]["spearman"]
    ratio_time = glove.seconds / w2v_s
    print(f"\ncoverage: wordsim353 {g['wordsim353']['covered']}/{g['wordsim353']['total']} pairs, simlex999 "
          f"{g['simlex999']['covered']}/{g['simlex999']['total']}, analogies {g['analogy']['covered']}/"
          f"{g['analogy']['total']} questions (same vocabulary for both)")
    print(f"goals: wordsim353 ratio {ratio_quality:.2f} (goal >= 0.9), time ratio {ratio_time:.2f} (goal <= 2), "
          f"co-occurrence {cooc_s:.1f} s (goal < 20)")

    report = {
        "benchmark": "word_vectors",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": f"cpu ({platform.processor() or platform.machine()}), {args.threads} thread(s)",
        "versions": config.versions(),
        "settings": {"glove": settings, "word2vec": {"sg": 1, "negative": 5, "epochs": args.w2v_epochs,
                                                     "dim": settings["dim"], "window": settings["window"],
                                                     "min_count": settings["min_count"]},
                     "quick": args.quick, "threads": args.threads},
        "corpus": {"articles": len(docs), "tokens": n_tokens, "vocab": len(vocab), "cooccurrence_nnz": int(X.nnz)},
        "results": {
            "cooccurrence_seconds": cooc_s,
            "train_seconds": times,
            "glove_losses": glove.losses,
            "evaluation": {name: {k: {kk: vv for kk, vv in v.items() if kk != "sections"} for k, v in r.items()}
                           for name, r in results.items()},
            "wordsim353_ratio": ratio_quality,
            "time_ratio": ratio_time,
        },
    }
    out = config.assets_dir("benchmarks") / "word_vectors.json" if args.out is None else args.out
    with open(out, "w") as fh:
        json.dump(report, fh, indent=1)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
