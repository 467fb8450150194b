"""Five ways to word vectors on the same corpus and vocabulary, over several seeds in one run.

Lesson 02's methods, each trained for every seed and evaluated the same way: PPMI + truncated
SVD; GloVe as published (on the plain co-occurrence counts); the course's GloVe variant (on the
expected counts after word2vec's subsampling, ``vectors.subsampled_cooccurrence``, the default
of ``vectors.course_glove``); skip-gram with negative sampling written in PyTorch
(``word2vec.train_sgns``); and gensim's word2vec with the same settings (the reference). They
run one after another for each seed, so that a busy machine slows all alike. Prints the
co-occurrence build times, per-seed and mean ± standard deviation (over the seeds, n - 1 in the
denominator) of the training times, wordsim353 / simlex999 Spearman correlations and analogy
accuracy, and writes ``assets/benchmarks/word_vectors.json``.

    python benchmarks/word_vectors.py              # full size (the whole Wikipedia corpus), seeds 0 1 2
    python benchmarks/word_vectors.py --quick      # a small smoke run
    python benchmarks/word_vectors.py --seeds 0 1 2 3 4
    python benchmarks/word_vectors.py --threads 2  # threads for torch and gensim alike

Goals, on the means over the seeds: our SGNS reaches >= 0.95x gensim's wordsim353 Spearman;
the co-occurrence matrix of the whole corpus (window 10) builds in < 20 s. No set of vectors
is post-processed.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import statistics
import time
from typing import Any, Sequence

import torch
from gensim.models import Word2Vec

from textft_lib import config, vectors, word2vec

SVD, GLOVE, VARIANT, SGNS, W2V = ("PPMI + SVD", "GloVe", "GloVe, subsampled counts (course variant)",
                                  "SGNS (ours)", "word2vec (gensim)")
NAMES = (SVD, GLOVE, VARIANT, SGNS, W2V)
METRICS = (("wordsim353", "spearman"), ("simlex999", "spearman"), ("analogy", "accuracy"))


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0.0 for a single value) of ``values``."""
    if len(values) == 0:
        raise ValueError("no values to average")
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def summarize(runs: list[dict[str, Any]], name: str) -> tuple[dict[str, Any], tuple[float, float]]:
    """Mean ± std over the seeds of one model's evaluation and training time.

    ``runs`` holds one dict per seed with ``evaluation[name]`` (as from ``vectors.evaluate``,
    less the analogy sections) and ``train_seconds[name]``. Returns the evaluation in the same
    layout with each score replaced by its mean and a ``<score>_std`` entry added (coverage
    is the same for every seed), and ``(mean, std)`` of the training time.
    """
    evaluation: dict[str, Any] = {}
    for task, score in METRICS:
        mean, std = mean_std([r["evaluation"][name][task][score] for r in runs])
        evaluation[task] = {**runs[0]["evaluation"][name][task], score: mean, f"{score}_std": std}
    return evaluation, mean_std([r["train_seconds"][name] for r in runs])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="use the quick-mode sizes")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds for both models (default 0 1 2)")
    parser.add_argument("--threads", type=int, default=1, help="threads for torch and gensim (same for both)")
    parser.add_argument("--w2v-epochs", type=int, default=5, help="word2vec epochs (gensim's default is 5)")
    parser.add_argument("--out", default=None, help="JSON path (default assets/benchmarks/word_vectors.json)")
    args = parser.parse_args()
    if len(set(args.seeds)) != len(args.seeds):
        parser.error(f"--seeds has repeated values: {args.seeds}")

    torch.set_num_threads(args.threads)
    settings = vectors.glove_settings(quick=args.quick)
    docs = vectors.wiki_corpus(limit=settings.articles)
    vocab = vectors.build_vocab(docs, min_count=settings.min_count)
    ids = vectors.encode(docs, vocab)
    n_tokens = sum(len(d) for d in docs)
    print(f"corpus: {len(docs)} articles, {n_tokens} tokens, vocabulary {len(vocab)} (min count "
          f"{settings.min_count}), {args.threads} thread(s), seeds {args.seeds}")

    counts, cooc_s = {}, {}
    for name, sample in (("plain", None), ("subsampled", settings.sample)):
        start = time.perf_counter()
        counts[name] = vectors.glove_cooccurrence(ids, vocab, window=settings.window, sample=sample)
        cooc_s[name] = time.perf_counter() - start
        print(f"co-occurrence matrix ({name}), window {settings.window}: {cooc_s[name]:.2f} s, "
              f"{counts[name].nnz} non-zero entries")
    ppmi = vectors.ppmi(counts["plain"])

    # gensim truncates "sentences" longer than 10,000 tokens: feed articles in such chunks.
    chunks = [d[i:i + 10_000] for d in docs for i in range(0, len(d), 10_000)]
    glove_args = {k: getattr(settings, k) for k in ("dim", "epochs", "batch_size", "lr", "x_max", "alpha",
                                           "initial_accumulator")}
    sgns_args = dict(dim=settings.dim, window=settings.window, negative=5, epochs=args.w2v_epochs, sample=1e-3,
                     lr=0.025, batch_size=4096)
    print(f"\n{'':<42} {'seed':>4} {'train s':>8} {'wordsim353':>11} {'simlex999':>10} {'analogy':>8}")
    runs: list[dict[str, Any]] = []
    for seed in args.seeds:
        found, seconds = {}, {}
        start = time.perf_counter()
        found[SVD] = vectors.svd_vectors(ppmi, settings.dim, seed=seed)
        seconds[SVD] = time.perf_counter() - start
        for name, X in ((GLOVE, counts["plain"]), (VARIANT, counts["subsampled"])):
            result = vectors.train_glove(X, seed=seed, num_threads=args.threads, progress=False, **glove_args)
            found[name], seconds[name] = result.vectors, result.seconds
        result = word2vec.train_sgns(ids, vocab.counts, seed=seed, num_threads=args.threads, progress=False,
                                     **sgns_args)
        found[SGNS], seconds[SGNS] = result.vectors, result.seconds
        start = time.perf_counter()
        w2v = Word2Vec(chunks, vector_size=settings.dim, window=settings.window, min_count=settings.min_count,
                       sg=1, negative=5, sample=1e-3, epochs=args.w2v_epochs, workers=args.threads, seed=seed)
        seconds[W2V] = time.perf_counter() - start
        if set(w2v.wv.index_to_key) != set(vocab.words):
            raise RuntimeError("word2vec and GloVe ended up with different vocabularies")
        kvs = {name: vectors.to_keyed_vectors(vocab.words, v) for name, v in found.items()} | {W2V: w2v.wv}
        run = {"seed": seed, "train_seconds": seconds,
               "evaluation": {name: {k: {kk: vv for kk, vv in v.items() if kk != "sections"}
                                     for k, v in vectors.evaluate(kvs[name]).items()} for name in NAMES}}
        runs.append(run)
        for name in NAMES:
            r = run["evaluation"][name]
            print(f"{name:<42} {seed:>4} {seconds[name]:>8.1f} {r['wordsim353']['spearman']:>11.3f} "
                  f"{r['simlex999']['spearman']:>10.3f} {r['analogy']['accuracy']:>8.3f}", flush=True)

    summary = {name: summarize(runs, name) for name in NAMES}
    print(f"\nmean ± std over {len(runs)} seed(s)\n{'':<42} {'train s':>12} {'wordsim353':>14} "
          f"{'simlex999':>14} {'analogy':>14}")
    for name, (ev, (t_mean, t_std)) in summary.items():
        cells = [f"{ev[task][score]:.3f} ± {ev[task][score + '_std']:.3f}" for task, score in METRICS]
        print(f"{name:<42} {f'{t_mean:.1f} ± {t_std:.1f}':>12} " + " ".join(f"{c:>14}" for c in cells))
    ws = {name: summary[name][0]["wordsim353"]["spearman"] for name in NAMES}
    g = summary[GLOVE][0]
    print(f"\ncoverage: wordsim353 {g['wordsim353']['covered']}/{g['wordsim353']['total']} pairs, simlex999 "
          f"{g['simlex999']['covered']}/{g['simlex999']['total']}, analogies {g['analogy']['covered']}/"
          f"{g['analogy']['total']} questions (same vocabulary for all)")
    print(f"goals (on the means): SGNS (ours) / gensim wordsim353 {ws[SGNS] / ws[W2V]:.2f} (goal >= 0.95), "
          f"co-occurrence {cooc_s['plain']:.1f} s (goal < 20)")

    report = {
        "benchmark": "word_vectors",
        "device": f"cpu ({platform.processor() or platform.machine()}), {args.threads} thread(s)",
        "settings": {"glove": {k: v for k, v in dataclasses.asdict(settings).items() if k != "seed"},
                     "glove_plain": "the same settings with sample=None",
                     "sgns": sgns_args,
                     "word2vec": {"sg": 1, "negative": 5, "sample": 1e-3, "epochs": args.w2v_epochs,
                                  "dim": settings.dim, "window": settings.window,
                                  "min_count": settings.min_count},
                     "seeds": args.seeds, "quick": args.quick, "threads": args.threads},
        "corpus": {"articles": len(docs), "tokens": n_tokens, "vocab": len(vocab),
                   "cooccurrence_nnz": {name: int(X.nnz) for name, X in counts.items()}},
        "results": {
            "cooccurrence_seconds": cooc_s,
            "train_seconds": {name: t for name, (_, (t, _)) in summary.items()},
            "train_seconds_std": {name: s for name, (_, (_, s)) in summary.items()},
            "evaluation": {name: ev for name, (ev, _) in summary.items()},
            "sgns_to_gensim_wordsim353": ws[SGNS] / ws[W2V],
            "note": "train_seconds and evaluation are means over the seeds (*_std: sample standard deviation); "
                    "per_seed holds every run",
            "per_seed": runs,
        },
    }
    out = config.assets_dir("benchmarks") / "word_vectors.json" if args.out is None else args.out
    config.write_benchmark(report, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
