"""Lesson 07 on SST-2: baselines, the fine-tuned course BERT, and the pretraining lift.

Reads SST-2 from ``TEXTFT_DATA_DIR/sst2`` (train.tsv, dev.tsv, test.tsv; see
``data.load_sst2``), trains every method of lesson 07 on the same class-balanced subsample
of the training set, and reports dev and test accuracy, training time and the device, in
one run. On a CPU the default subsample keeps it to about an hour on 2 cores.

    TEXTFT_DATA_DIR=../shared/data python benchmarks/finetune_sst2.py            # CPU: 4000 sentences
    TEXTFT_DATA_DIR=../shared/data python benchmarks/finetune_sst2.py --max-train 0   # all 67k (GPU)

Methods: majority class; TF-IDF + logistic regression (on the subsample, and on the whole
training set for reference); mean-pooled course GloVe + logistic regression; lesson 05's
Transformer from scratch; the course BERT fine-tuned through
``BertForSequenceClassification`` and through our encoder + [CLS] head; the course BERT with
a frozen encoder; and a learning rate that is too high. The pretraining lift compares the
same architecture and budget from pretrained and from random weights over several seeds.
A zero-shot probe asks the pretrained MLM itself ("<review> it was [MASK] .": good or
bad?) before any fine-tuning. A learning curve then trains TF-IDF, the Transformer from
scratch and the best course-BERT recipe, at the settings chosen on the subsample, on 1,000,
2,000, the subsample and all 67k labelled phrases (``--curve``); the all-67k point alone
takes about 15 minutes on 2 cores.

The BERT is lesson 06's (``--pretraining lesson``, the default), or appendix A2's head-start
BERT (``--pretraining head_start``), whose report appendix A1 reads.

Writes ``assets/benchmarks/finetune_sst2.json`` (``finetune_sst2_head_start.json`` for the head
start; ``--out`` to change it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from textft_lib import adapt, bert, classify, config, data, transformer


#: The zero-shot probe: the MLM fills the blank; label 0 is "bad", label 1 "good".
ZERO_SHOT_TEMPLATE = "{} it was [MASK] ."
ZERO_SHOT_WORDS = ("bad", "good")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--max-train", type=int, default=4000, help="training sentences kept (0 = all)")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr-encoder", type=float, nargs="+", default=[5e-5, 1e-4, 3e-4, 1e-3],
                   help="encoder learning rates to try (the head gets --head-factor times it); best on dev is kept")
    p.add_argument("--head-factor", type=float, default=10.0)
    p.add_argument("--lr-too-high", type=float, default=3e-2)
    p.add_argument("--lr-scratch", type=float, nargs="+", default=[3e-4, 1e-3, 3e-3],
                   help="learning rates to try for the Transformer from scratch; best on dev is kept")
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--patience", type=int, default=2)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--skip-full-tfidf", action="store_true", help="skip TF-IDF on all 67k training phrases")
    p.add_argument("--adapt-steps", type=int, default=2000,
                   help="steps of domain-adaptive MLM on the unlabelled SST-2 training phrases (0 = skip)")
    p.add_argument("--adapt-lr", type=float, default=1e-3)
    p.add_argument("--curve", type=int, nargs="*", default=[1000, 2000, 0],
                   help="extra training-set sizes for the learning curve (0 = all 67k; none = skip)")
    p.add_argument("--curve-full-seeds", type=int, default=1,
                   help="seeds for the all-67k point of the curve (the first ones of --seeds; it is the slow one)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    p.add_argument("--pretraining", choices=("lesson", "head_start"), default="lesson",
                   help="whose BERT: lesson 06's (BERT's recipe on the offline mix, the default) or appendix A2's "
                        "head-start BERT (half a million words of Wikipedia), which appendix A1 reads")
    p.add_argument("--out", type=Path, default=None,
                   help="default: assets/benchmarks/finetune_sst2.json, or finetune_sst2_head_start.json")
    args = p.parse_args(argv)
    if any(n < 0 or n == 1 for n in args.curve):
        p.error(f"--curve sizes must be 0 (all) or at least 2 labelled phrases, got {args.curve}")
    if not 1 <= args.curve_full_seeds <= len(args.seeds):
        p.error(f"--curve-full-seeds must be between 1 and the number of --seeds ({len(args.seeds)})")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if config.data_dir() is None and config.is_offline():
        sys.exit("SST-2 is read from TEXTFT_DATA_DIR/sst2: set TEXTFT_DATA_DIR (e.g. ../shared/data)")
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=classify.TruncationWarning)
    from transformers import AutoConfig, AutoTokenizer, BertForSequenceClassification
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    device = config.setup(seed=0)
    ds = classify.load_dataset("sst2", max_train=args.max_train or None)
    full_train = classify.load_dataset("sst2").train
    print(ds)
    folder = bert.course_bert(bert.HEAD_START_FULL if args.pretraining == "head_start" else bert.LESSON_FULL)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    max_length = AutoConfig.from_pretrained(folder).max_position_embeddings
    rows: list[dict] = []

    def add(method: str, dev_pred, test_pred, seconds: float, **extra) -> None:
        row = {"method": method, "dev_accuracy": classify.accuracy(ds.validation.labels, dev_pred),
               "test_accuracy": classify.accuracy(ds.test.labels, test_pred), "train_seconds": round(seconds, 2),
               **extra}
        rows.append(row)
        print(f"{method:<36} dev {row['dev_accuracy']:.4f}  test {row['test_accuracy']:.4f}  {seconds:7.1f} s",
              flush=True)

    # ---------------------------------------------------------------- baselines
    t = time.perf_counter()
    maj = classify.MajorityBaseline().fit(ds.train.labels)
    add("majority class", maj.predict(ds.validation.texts), maj.predict(ds.test.texts), time.perf_counter() - t)

    for name, split in (("TF-IDF + LR", ds.train), ("TF-IDF + LR (all 67k phrases)", full_train)):
        if name.endswith("phrases)") and (len(split) == len(ds.train) or args.skip_full_tfidf):
            continue
        t = time.perf_counter()
        m = classify.fit_tfidf_logreg(split.texts, split.labels, ds.validation.texts, ds.validation.labels)
        add(name, m.predict(ds.validation.texts), m.predict(ds.test.texts), time.perf_counter() - t,
            train_size=len(split), C=float(m[-1].C))

    try:
        from textft_lib import vectors

        t = time.perf_counter()
        kv = vectors.course_glove()
        feats = {k: vectors.sentence_vectors(kv, s.texts) for k, s in ds.splits().items()}
        m = classify.fit_features_logreg(feats["train"], ds.train.labels, feats["validation"], ds.validation.labels)
        add("course GloVe mean + LR", m.predict(feats["validation"]), m.predict(feats["test"]),
            time.perf_counter() - t, note="includes training or loading the course GloVe")
    except (ImportError, AttributeError) as err:
        print(f"course GloVe baseline skipped: {err}")

    # ---------------------------------------------------------------- fine-tuning
    def finetune(name: str, model, *, lr_body: float, lr_head: float, seed: int = 0, frozen: bool = False,
                 patience: int | None = args.patience, record: bool = True, train: data.Split | None = None
                 ) -> tuple[dict, classify.Classifier]:
        run = replace(classify.FINETUNE, lr=lr_body, lr_head=lr_head, epochs=args.epochs, batch_size=args.batch_size,
                      patience=patience, seed=seed)
        h = classify.finetune(model, tokenizer, ds.train if train is None else train, ds.validation, run,
                              frozen_body=frozen, max_length=max_length, cache="bench_finetune_sst2", device=device,
                              progress=False)
        clf = classify.Classifier(model, tokenizer, ds.label_names, max_length=max_length)
        dev, test = clf.predict(ds.validation.texts).labels, clf.predict(ds.test.texts).labels
        extra = {"best_epoch": h.best["epoch"], "epochs_run": len(h.evals), "lr_body": lr_body, "lr_head": lr_head,
                 "seed": seed, "from_cache": h.from_cache}
        if record:
            add(name, dev, test, h.seconds, **extra)
        return {"dev": classify.accuracy(ds.validation.labels, dev), "test": classify.accuracy(ds.test.labels, test),
                "seconds": h.seconds, **extra}, clf

    def pretrained(seed: int):
        torch.manual_seed(seed)
        return BertForSequenceClassification.from_pretrained(
            folder, num_labels=2, hidden_dropout_prob=args.dropout, attention_probs_dropout_prob=args.dropout)

    def random_init(seed: int):
        torch.manual_seed(seed)
        return BertForSequenceClassification(AutoConfig.from_pretrained(
            folder, num_labels=2, hidden_dropout_prob=args.dropout, attention_probs_dropout_prob=args.dropout))

    def best_on_dev(name: str, make, lrs: list[float], factor: float) -> tuple[float, float]:
        """Train once per learning rate, record the run with the best dev accuracy (ties: the first)."""
        tried = []
        for lr in lrs:
            r, _ = finetune(name, make(), lr_body=lr, lr_head=lr * factor, record=False)
            tried.append(r)
            print(f"  {name}: lr {lr:g} -> dev {r['dev']:.4f}", flush=True)
        best = max(tried, key=lambda r: r["dev"])
        rows.append({"method": name, "dev_accuracy": best["dev"], "test_accuracy": best["test"],
                     "train_seconds": round(best["seconds"], 2), **{k: v for k, v in best.items()
                     if k not in ("dev", "test", "seconds")},
                     "lr_grid": {f"{r['lr_body']:g}": r["dev"] for r in tried}})
        print(f"{name:<36} dev {best['dev']:.4f}  test {best['test']:.4f}  {best['seconds']:7.1f} s "
              f"(lr {best['lr_body']:g}, chosen on dev)", flush=True)
        return best["lr_body"], best["lr_head"]

    scratch_cfg = dict(d_model=128, n_heads=4, num_layers=2, d_ff=256)

    def scratch_model(seed: int = 0):
        torch.manual_seed(seed)
        return transformer.EncoderClassifier(len(tokenizer), 2, **scratch_cfg, dropout=args.dropout,
                                             max_len=max_length, pad_id=tokenizer.pad_token_id)

    lr_scratch = best_on_dev("Transformer from scratch (lesson 05)", scratch_model, args.lr_scratch, 1.0)
    lr_encoder, lr_head = best_on_dev("course BERT (transformers)", lambda: pretrained(0), args.lr_encoder,
                                      args.head_factor)
    lr_random = best_on_dev("random-init BERT (lr chosen on dev)", lambda: random_init(0), args.lr_encoder,
                            args.head_factor)
    ours = classify.BertClassifier.from_transformers(pretrained(0))
    finetune("course BERT (our encoder + [CLS] head)", ours, lr_body=lr_encoder, lr_head=lr_head)
    finetune("course BERT, frozen encoder", pretrained(0), lr_body=lr_encoder, lr_head=lr_head,
             frozen=True)
    _, too_high = finetune("course BERT, too high LR", pretrained(0), lr_body=args.lr_too_high,
                           lr_head=args.lr_too_high, patience=None)
    collapsed = too_high.predict(ds.test.texts).labels
    rows[-1]["share_of_majority_answer"] = float(max(collapsed.mean(), 1 - collapsed.mean()))

    # ---------------------------------------------------------------- mean pooling, domain adaptation
    def ours_from(source, pooling: str):
        def make(seed: int = 0):
            torch.manual_seed(seed)
            model, _ = classify.BertClassifier.from_pretrained(source, 2, dropout=args.dropout, pooling=pooling)
            return model
        return make

    cfg = bert.BertConfig.from_hf(AutoConfig.from_pretrained(folder))       # sizes only, no weights read

    def ours_random(pooling: str):
        def make(seed: int = 0):
            torch.manual_seed(seed)
            return classify.BertClassifier(replace(cfg, hidden_dropout_prob=args.dropout), 2, dropout=args.dropout,
                                           pooling=pooling)
        return make

    recipes = {"course BERT, mean pooling": ours_from(folder, "mean"),
               "random-init BERT, mean pooling": ours_random("mean")}
    adaptation = None
    if args.adapt_steps:
        settings = replace(adapt.ADAPT, max_steps=args.adapt_steps, lr=args.adapt_lr)
        t = time.perf_counter()
        adapted = adapt.adapt_pretraining(folder, full_train.texts, settings, device=device, progress=False)
        record = adapt.adaptation_record(adapted)
        adaptation = {k: record[k] for k in ("settings", "texts", "train_blocks", "held_out_blocks", "loss_before",
                                             "loss_after", "loss_mask_before", "loss_mask_after", "seconds")}
        print(f"domain-adaptive MLM on {record['texts']} unlabelled training phrases ({record['train_blocks']} packed "
              f"blocks): held-out MLM loss {record['loss_before']:.3f} -> {record['loss_after']:.3f}, "
              f"{record['seconds']:.0f} s (this call {time.perf_counter() - t:.0f} s)", flush=True)
        recipes["course BERT + domain-adaptive MLM, mean pooling"] = ours_from(adapted, "mean")
    recipe_lr = {name: best_on_dev(name, make, args.lr_encoder, args.head_factor) for name, make in recipes.items()}

    # ---------------------------------------------------------------- zero-shot probe
    # Before any fine-tuning: does the MLM's blank in "<review> it was [MASK] ." lean to "good" for positive
    # reviews? ROC AUC of log P(good) - log P(bad) over the test sentences: 0.5 = no signal.
    from sklearn.metrics import roc_auc_score

    zero_shot = {"template": ZERO_SHOT_TEMPLATE, "words": list(ZERO_SHOT_WORDS), "split": "test", "models": {}}
    for name, source in (("course BERT", folder),
                         ("course BERT + domain-adaptive MLM", adapted if args.adapt_steps else None)):
        if source is None:
            continue
        mlm, mlm_tok = bert.load_pretrained(source)
        scores = bert.mask_word_scores(mlm.to(device), mlm_tok, ds.test.texts, ZERO_SHOT_TEMPLATE, ZERO_SHOT_WORDS)
        margin = (scores[:, 1] - scores[:, 0]).numpy()
        probe = {"accuracy": classify.accuracy(ds.test.labels, (margin > 0).astype(int)),
                 "share_good": float((margin > 0).mean()), "roc_auc": float(roc_auc_score(ds.test.labels, margin))}
        zero_shot["models"][name] = probe
        print(f"zero-shot probe, {name}: accuracy {probe['accuracy']:.4f}, answers 'good' "
              f"{probe['share_good']:.0%} of the time, ROC AUC {probe['roc_auc']:.3f}", flush=True)

    # ---------------------------------------------------------------- pretraining lift
    runs = {"pretrained": [], "random": []}
    for seed in args.seeds:
        for kind, make, (lb, lh) in (("pretrained", pretrained, (lr_encoder, lr_head)),
                                     ("random", random_init, lr_random)):
            r, _ = finetune(kind, make(seed), lr_body=lb, lr_head=lh, seed=seed, record=False)
            runs[kind].append(r)
            print(f"  lift run: {kind:<10} seed {seed}  dev {r['dev']:.4f}  test {r['test']:.4f}  "
                  f"{r['seconds']:.0f} s", flush=True)
    lift = {}
    for split in ("dev", "test"):
        for kind in runs:
            accs = [r[split] for r in runs[kind]]
            lift[f"{kind}_{split}"] = accs
            lift[f"{kind}_{split}_mean"] = float(np.mean(accs))
            lift[f"{kind}_{split}_std"] = float(np.std(accs))
    lift["lr_pretrained"], lift["lr_random"] = [lr_encoder, lr_head], list(lr_random)
    lift["lift_mean"] = lift["pretrained_test_mean"] - lift["random_test_mean"]
    lift["lift_dev_mean"] = lift["pretrained_dev_mean"] - lift["random_dev_mean"]
    rows.append({"method": f"random-init BERT, same budget (mean of {len(args.seeds)} seeds)",
                 "dev_accuracy": lift["random_dev_mean"], "test_accuracy": lift["random_test_mean"],
                 "train_seconds": round(float(np.mean([r["seconds"] for r in runs["random"]])), 2)})

    print(f"\npretraining lift, [CLS] (test): {lift['lift_mean']:+.4f}  (pretrained "
          f"{lift['pretrained_test_mean']:.4f} ± {lift['pretrained_test_std']:.4f}, random "
          f"{lift['random_test_mean']:.4f} ± {lift['random_test_std']:.4f})")

    # the same over seeds for every mean-pooling recipe, each at its learning rate chosen on dev
    seeds_of = {}
    for name, make in recipes.items():
        accs = []
        for seed in args.seeds:
            r, _ = finetune(name, make(seed), lr_body=recipe_lr[name][0], lr_head=recipe_lr[name][1], seed=seed,
                            record=False)
            accs.append(r)
            print(f"  seeds: {name:<48} seed {seed}  dev {r['dev']:.4f}  test {r['test']:.4f}", flush=True)
        seeds_of[name] = {"lr": list(recipe_lr[name]), "dev": [r["dev"] for r in accs],
                          "test": [r["test"] for r in accs], "seconds": [r["seconds"] for r in accs],
                          "test_mean": float(np.mean([r["test"] for r in accs])),
                          "test_std": float(np.std([r["test"] for r in accs])),
                          "dev_mean": float(np.mean([r["dev"] for r in accs]))}
        rows.append({"method": f"{name} (mean of {len(args.seeds)} seeds)", "dev_accuracy": seeds_of[name]["dev_mean"],
                     "test_accuracy": seeds_of[name]["test_mean"], "test_std": seeds_of[name]["test_std"],
                     "train_seconds": round(float(np.mean([r["seconds"] for r in accs])), 2),
                     "lr_body": recipe_lr[name][0]})
    best_name = max((n for n in seeds_of if not n.startswith("random")), key=lambda n: seeds_of[n]["dev_mean"])
    best = seeds_of[best_name]
    random_mean = seeds_of["random-init BERT, mean pooling"]
    best_random = max(random_mean["test_mean"], lift["random_test_mean"])
    mean_lift = {"recipe": best_name, "pretrained": best, "random": random_mean,
                 "lift_mean": best["test_mean"] - random_mean["test_mean"],
                 "spread": max(best["test_std"], random_mean["test_std"]),
                 "lift_over_best_random_recipe": best["test_mean"] - best_random}
    print(f"best course-BERT recipe on dev: {best_name}: test {best['test_mean']:.4f} ± {best['test_std']:.4f}; "
          f"lift over random init with the same head {mean_lift['lift_mean']:+.4f}, over the best random-init "
          f"recipe {mean_lift['lift_over_best_random_recipe']:+.4f}")

    # ---------------------------------------------------------------- learning curve
    # TF-IDF, the Transformer from scratch and the best course-BERT recipe, each at the setting chosen above,
    # trained on more or fewer labelled phrases (the adaptation text stays all 67k unlabelled phrases).
    wanted = [min(n or len(full_train), len(full_train)) for n in args.curve]       # 0 and too large mean all
    sizes = sorted({len(ds.train), *wanted}) if args.curve else []
    curve = []
    for n in sizes:
        split = {len(ds.train): ds.train, len(full_train): full_train}.get(n)
        split = split or classify.load_dataset("sst2", max_train=n).train
        few_seeds = n == len(full_train) and n != len(ds.train)         # the slow point, unless it is the subsample
        seeds = args.seeds[:args.curve_full_seeds] if few_seeds else args.seeds
        t = time.perf_counter()
        m = classify.fit_tfidf_logreg(split.texts, split.labels, ds.validation.texts, ds.validation.labels)
        tfidf = {"dev": [classify.accuracy(ds.validation.labels, m.predict(ds.validation.texts))],
                 "test": [classify.accuracy(ds.test.labels, m.predict(ds.test.texts))],
                 "seconds": [time.perf_counter() - t]}
        point = {"train_size": len(split), "seeds": seeds, "TF-IDF + LR": tfidf}
        for name, make, (lb, lh) in (("Transformer from scratch", scratch_model, lr_scratch),
                                     (best_name, recipes[best_name], recipe_lr[best_name])):
            if n == len(ds.train) and name == best_name:
                point[name] = {**{k: best[k] for k in ("dev", "test")}, "seconds": best["seconds"]}
                continue
            runs_n = [finetune(name, make(seed), lr_body=lb, lr_head=lh, seed=seed, record=False, train=split)[0]
                      for seed in seeds]
            point[name] = {k: [r[k] for r in runs_n] for k in ("dev", "test", "seconds")}
        for name in ("TF-IDF + LR", "Transformer from scratch", best_name):
            r = point[name]
            r["test_mean"], r["test_std"] = float(np.mean(r["test"])), float(np.std(r["test"]))
            print(f"  curve: {n:>6} labelled  {name:<48} test {r['test_mean']:.4f} ± {r['test_std']:.4f} "
                  f"({len(r['test'])} run(s))", flush=True)
        point["bert_minus_tfidf"] = point[best_name]["test_mean"] - tfidf["test"][0]
        curve.append(point)

    by = {r["method"]: r for r in rows}
    bert_test = best["test_mean"]
    goals = {
        "recipe": best_name,
        "course_bert_beats_tfidf_same_data": bert_test > by["TF-IDF + LR"]["test_accuracy"],
        "course_bert_beats_scratch_transformer":
            bert_test > by["Transformer from scratch (lesson 05)"]["test_accuracy"],
        "lift_positive_and_larger_than_seed_spread":
            0 < mean_lift["lift_mean"] and mean_lift["spread"] < mean_lift["lift_mean"],
        "beats_every_random_init_recipe": mean_lift["lift_over_best_random_recipe"] > 0,
    }
    for goal, ok in goals.items():
        if isinstance(ok, bool):
            print(f"goal {goal}: {'met' if ok else 'NOT met'}")

    pretraining = json.loads((folder / "pretraining.json").read_text())
    report = {
        "benchmark": "finetune_sst2",
        "device": config.describe_device(device),
        "settings": {**{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                     "max_train": len(ds.train), "dev_size": len(ds.validation), "test_size": len(ds.test),
                     "max_length": max_length, "scratch_transformer": scratch_cfg,
                     "course_bert": pretraining["settings"], "data_source": ds.source,
                     "subsample": "class-balanced random subset of train.tsv (phrases and sentences), seed 0"},
        "results": rows,
        "pretraining_lift": lift,
        "mean_pooling_lift": mean_lift,
        "domain_adaptation": adaptation,
        "zero_shot_probe": zero_shot,
        "learning_curve": {"recipe": best_name, "points": curve,
                           "note": "one subsample per size (class-balanced, seed 0); TF-IDF is deterministic; "
                                   f"the all-{len(full_train)} point uses {args.curve_full_seeds} seed(s)"},
        "goals": goals,
    }
    suffix = "_head_start" if args.pretraining == "head_start" else ""
    out = args.out or config.assets_dir("benchmarks") / f"finetune_sst2{suffix}.json"
    config.write_benchmark(report, out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
