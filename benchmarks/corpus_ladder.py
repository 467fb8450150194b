"""Benchmark: what more text buys lesson 06's BERT, in held-out MLM loss and on SST-2.

Lesson 06's model and recipe trained on growing seeded subsets of the offline mix's training
documents (``--words``), all cut by one tokenizer and scored on the same held-out documents,
at two budgets:

* **equal steps**: lesson 06's 3,000 steps on every rung (a small rung is seen many times);
* **equal epochs**: the number of passes lesson 06 makes over the whole mix (0.87), so a
  small rung gets proportionally fewer steps;
* **more steps** (``--more-steps``): the whole mix for longer, more compute on the same text.

The whole mix at equal steps is lesson 06's own model (``bert.course_bert()``, trained and
cached there, or here if the cache lacks it). Each model is then fine-tuned as lesson 07 does
(``BertForSequenceClassification``, [CLS] head, warm-up and decay, one learning rate for the
encoder and ten times it for the head) on ``--labels`` class-balanced SST-2 training phrases,
over ``--seeds``, beside the same architecture from random weights with the same recipe and
TF-IDF + logistic regression on the same phrases. SST-2 is read from ``TEXTFT_DATA_DIR/sst2``
(or the network); without it the downstream half is skipped and said so.

    TEXTFT_DATA_DIR=../shared/data python benchmarks/corpus_ladder.py     # about an hour on 2 cores
    python benchmarks/corpus_ladder.py --quick                            # a smoke run

Writes ``assets/benchmarks/corpus_ladder.json`` (``--quick`` writes into the cache instead).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from textft_lib import bert, classify, config, corpus, data as textft_data


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="the quick-mode sizes (a smoke run)")
    p.add_argument("--words", nargs="*", default=None,
                   help="training words of each rung, 'all' for the whole mix (default: 500000 1500000 4000000 all)")
    p.add_argument("--labels", type=int, default=4000, help="SST-2 training phrases to fine-tune on (0 = skip)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--lr", type=float, default=1e-3, help="encoder learning rate (the head gets ten times it)")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--more-steps", type=int, nargs="*", default=[],
                   help="also train the whole mix for these many steps (more compute, the same text)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    p.add_argument("--out", type=Path, default=None, help="default: assets/benchmarks/corpus_ladder.json")
    args = p.parse_args(argv)
    if args.words is None:
        args.words = ["2000", "4000", "all"] if args.quick else ["500000", "1500000", "4000000", "all"]
    if args.quick:
        args.labels, args.seeds, args.epochs = min(args.labels, 200), args.seeds[:1], 1
    return args


def pretrain_rung(settings: bert.PretrainConfig, data: bert.PretrainData, steps: int, whole: bool
                  ) -> tuple[bert.BertForMLM, float]:
    """Lesson 06's model trained ``steps`` steps on ``data`` from BERT's start, and the seconds
    it took; the whole corpus at lesson 06's steps is lesson 06's cached model itself."""
    if whole and steps == settings.train.max_steps:
        folder = bert.course_bert(settings, device="cpu", progress=False, verbose=False)
        model, _ = bert.load_pretrained(folder)
        return model, json.loads((folder / "pretraining.json").read_text())["history"]["seconds"]
    torch.manual_seed(settings.train.seed)
    model = bert.new_model(settings, data)
    run = dataclasses.replace(settings.train, max_steps=steps, eval_every=steps)
    history = bert.pretrain(model, data, run, mlm_probability=settings.data.mlm_probability, device="cpu",
                            progress=False, verbose=False, cache=None)
    return model, history.seconds


def finetune_sst2(model: bert.BertForMLM | None, settings: bert.PretrainConfig, tokenizer, ds, args) -> dict:
    """Lesson 07's full fine-tuning of ``model`` (``None``: the same architecture, ``settings``'
    sizes, from random weights) on ``ds``, once per seed: dev and test accuracy of each."""
    from transformers import BertForSequenceClassification

    extra = dict(num_labels=2, hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
    runs = {"dev": [], "test": [], "seconds": []}
    with tempfile.TemporaryDirectory() as tmp:
        if model is not None:
            bert.save_pretrained(model, tokenizer, tmp)
        for seed in args.seeds:
            torch.manual_seed(seed)
            if model is not None:
                clf_model = BertForSequenceClassification.from_pretrained(tmp, **extra)
            else:
                hf_config = dataclasses.replace(settings.model, vocab_size=len(tokenizer)).to_hf()
                hf_config.update(extra)
                clf_model = BertForSequenceClassification(hf_config)
            max_length = clf_model.config.max_position_embeddings
            run = dataclasses.replace(classify.FINETUNE, lr=args.lr, lr_head=10 * args.lr, epochs=args.epochs,
                                      batch_size=32, patience=2, seed=seed)
            history = classify.finetune(clf_model, tokenizer, ds.train, ds.validation, run, max_length=max_length,
                                        cache=None, device="cpu", progress=False)
            clf = classify.Classifier(clf_model, tokenizer, ds.label_names, max_length=max_length)
            runs["dev"].append(classify.accuracy(ds.validation.labels, clf.predict(ds.validation.texts).labels))
            runs["test"].append(classify.accuracy(ds.test.labels, clf.predict(ds.test.texts).labels))
            runs["seconds"].append(history.seconds)
    return {**runs, "test_mean": float(np.mean(runs["test"])), "test_std": float(np.std(runs["test"]))}


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=classify.TruncationWarning)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    settings = bert.LESSON_QUICK if args.quick else bert.LESSON_FULL
    print(f"device: {config.describe_device(torch.device('cpu'))}, {torch.get_num_threads()} thread(s) | "
          f"settings: {'quick' if args.quick else 'full'}")
    data = bert.prepare_data(settings)
    train_texts, _ = bert.training_texts(settings)
    epochs = settings.train.max_steps * settings.train.batch_size / len(data.train_blocks)

    ds = None
    if args.labels:
        try:
            ds = classify.load_dataset("sst2", max_train=args.labels)
        except (FileNotFoundError, textft_data.OfflineError) as err:
            print(f"SST-2 not found ({err}): the downstream half is skipped")
    downstream = None
    if ds is not None:
        m = classify.fit_tfidf_logreg(ds.train.texts, ds.train.labels, ds.validation.texts, ds.validation.labels)
        random_init = finetune_sst2(None, settings, data.tokenizer, ds, args)
        downstream = {"labels": len(ds.train), "dev_size": len(ds.validation), "test_size": len(ds.test),
                      "source": ds.source, "lr_encoder": args.lr, "lr_head": 10 * args.lr, "epochs": args.epochs,
                      "seeds": args.seeds, "pooling": "[CLS] (BertForSequenceClassification)",
                      "tfidf_test": classify.accuracy(ds.test.labels, m.predict(ds.test.texts)),
                      "random_init": random_init}
        print(f"SST-2, {len(ds.train)} labels: TF-IDF + LR test {downstream['tfidf_test']:.4f}; random weights "
              f"{random_init['test_mean']:.4f} ± {random_init['test_std']:.4f}", flush=True)

    rows = []
    for words in [None if w == "all" else int(w) for w in args.words]:
        chosen, total = corpus.word_budget(train_texts, words, seed=settings.data.seed)
        blocks = bert.make_blocks([train_texts[i] for i in chosen], data.tokenizer, settings.block_size)
        rung = bert.PretrainData(data.tokenizer, blocks, data.held_out_blocks)
        budgets = [("equal steps", settings.train.max_steps),
                   ("equal epochs", max(1, round(epochs * len(blocks) / settings.train.batch_size)))]
        budgets += [("more steps", n) for n in args.more_steps if words is None]
        for budget, steps in budgets:
            if words is None and budget == "equal epochs":
                rows.append({**rows[-1], "budget": budget})          # the whole corpus: the same run
                continue
            model, seconds = pretrain_rung(settings, rung, steps, whole=words is None)
            row = {"words": total, "documents": len(chosen), "blocks": len(blocks), "budget": budget, "steps": steps,
                   "epochs": steps * settings.train.batch_size / len(blocks), "training_seconds": seconds,
                   **bert.score_held_out(model, rung, seed=settings.train.seed)}
            line = (f"  {total:>10,} words  {budget:<12} {steps:>5} steps ({row['epochs']:.2f} epochs): held-out "
                    f"{row['held_out_loss']:.3f} nats, {row['loss_reduction_vs_unigram']:.1%} below its unigram")
            if ds is not None:
                row["sst2"] = finetune_sst2(model, settings, data.tokenizer, ds, args)
                row["sst2_lift_over_random"] = row["sst2"]["test_mean"] - downstream["random_init"]["test_mean"]
                line += f"; SST-2 test {row['sst2']['test_mean']:.4f} ± {row['sst2']['test_std']:.4f}"
            rows.append(row)
            print(line, flush=True)

    result = {"benchmark": "corpus_ladder", "device": config.describe_device(torch.device("cpu")),
              "torch_threads": torch.get_num_threads(), "mode": "quick" if args.quick else "full",
              "settings": settings.as_dict(), "ladder": rows, "downstream": downstream}
    path = config.benchmark_path("corpus_ladder", quick=args.quick, out=args.out)
    config.write_benchmark(result, path)
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
