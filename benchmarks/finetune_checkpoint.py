"""Lesson 07 with a real pretrained checkpoint on SST-2: the ladder from the majority class
to full fine-tuning and LoRA, in one run, on the same training phrases.

    TEXTFT_DATA_DIR=../shared/data python benchmarks/finetune_checkpoint.py              # about 50 minutes on 2 cores
    TEXTFT_DATA_DIR=../shared/data python benchmarks/finetune_checkpoint.py --seeds 0 1 2
    ... --seeds 0 1 2 --reuse earlier.json      # keep the runs an earlier report made with the same settings

Methods, each on the same class-balanced subsample of SST-2's training phrases (``--max-train``):
majority class; TF-IDF + logistic regression (also on all 67k phrases, for reference); the
checkpoint as a frozen feature extractor (mean-pooled last layer) + logistic regression;
full fine-tuning; LoRA (Hu et al. 2021) on every linear layer of the encoder (query, key,
value and the ``dense`` layers, as QLoRA, Dettmers et al. 2023, found necessary to match full
fine-tuning; ``--lora-targets query value`` is the LoRA paper's choice) plus the head; and the
same architecture from random weights, trained like full fine-tuning. The checkpoint
is ``pretrained.DEFAULT_CHECKPOINT`` (all-MiniLM-L6-v2) unless ``--checkpoint`` names another.
Dev is GLUE's validation split (872), test the labelled test split (1,821); the training
time is wall time on this machine's cores. "Memory" is what training keeps per trainable
parameter (its gradient and AdamW's two moments: 12 bytes each in fp32), not a measured peak.

Training batches group phrases of similar length, as lesson 07 does (``--no-group-by-length``
draws random batches: the same accuracy within the seed spread, about twice the time).
Fine-tuning runs take one row per seed (``--seeds``); the table gives their mean and spread.
Runs on one core each can go side by side (``OMP_NUM_THREADS=1``, one seed per process, each
with its own ``--out``); a last run with ``--reuse`` on their files gathers them into one report.

Writes ``assets/benchmarks/finetune_checkpoint.json`` (``--out`` to change it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from textft_lib import classify, config, data, lora, pretrained


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=pretrained.DEFAULT_CHECKPOINT)
    p.add_argument("--max-train", type=int, default=24_000, help="training phrases kept (0 = all 67k)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--lr-body", type=float, default=5e-5)
    p.add_argument("--lr-head", type=float, default=1e-3)
    p.add_argument("--lr-scratch", type=float, default=3e-4, help="the random-init model (one rate for all)")
    p.add_argument("--lora-r", type=int, default=8)
    p.add_argument("--lora-alpha", type=float, default=16.0)
    p.add_argument("--lr-lora", type=float, default=1e-3)
    p.add_argument("--lora-targets", nargs="+", default=["query", "key", "value", "dense"],
                   help="names of the nn.Linear layers LoRA adapts (BERT's: query key value dense)")
    p.add_argument("--group-by-length", action=argparse.BooleanOptionalAction, default=True,
                   help="batches of phrases of similar length (lesson 07's setting; --no-group-by-length: random)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--methods", nargs="+", default=["majority", "tfidf", "full", "lora", "features", "random"])
    p.add_argument("--reuse", type=Path, nargs="+", default=[],
                   help="earlier JSON files of this benchmark: their runs with the same settings are kept, not rerun")
    p.add_argument("--out", type=Path, default=config.assets_dir("benchmarks") / "finetune_checkpoint.json")
    args = p.parse_args(argv)
    unknown = set(args.methods) - {"majority", "tfidf", "features", "full", "lora", "random"}
    if unknown:
        p.error(f"unknown methods {sorted(unknown)}")
    return args


#: The settings each trained method depends on: a run from ``--reuse`` is kept only when these match.
DEPENDS_ON = {
    "full": ("checkpoint", "max_train", "epochs", "batch_size", "max_length", "group_by_length", "lr_body",
             "lr_head"),
    "random": ("checkpoint", "max_train", "epochs", "batch_size", "max_length", "group_by_length", "lr_scratch"),
    "lora": ("checkpoint", "max_train", "epochs", "batch_size", "max_length", "group_by_length", "lora_r",
             "lora_alpha", "lr_lora", "lora_targets"),
}


def reusable_runs(paths: list[Path], args: argparse.Namespace) -> dict[tuple[str, int], dict]:
    """``(method, seed) -> row`` from earlier reports whose settings for that method equal
    ``args``' (a report without ``lora_targets`` adapted BERT's query and value; one without
    ``group_by_length`` drew random batches)."""
    kept: dict[tuple[str, int], dict] = {}
    for path in paths:
        report = json.loads(path.read_text())
        old = {"lora_targets": ["query", "value"], "group_by_length": False, **report["settings"]}
        for method, rows in report["results"].items():
            keys = DEPENDS_ON.get(method)
            if keys and all(old.get(k) == getattr(args, k) for k in keys):
                kept.update({(method, row["seed"]): row for row in rows})
    return kept


def mean_features(model, tok, texts, max_length, batch_size=128) -> np.ndarray:
    """The encoder's last layer, mean-pooled over the real tokens: ``(N, hidden)``. Texts are
    batched by length (each batch padded to its own longest), then put back in order."""
    encoder = model.base_model.eval()
    order = np.argsort([len(t) for t in texts])
    out = np.empty((len(texts), model.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for i in range(0, len(texts), batch_size):
            rows = order[i:i + batch_size]
            batch = tok([texts[j] for j in rows], padding=True, truncation=True, max_length=max_length,
                        return_tensors="pt")
            hidden = encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
            out[rows] = classify.pool(hidden, batch["attention_mask"], "mean").numpy()
    return out


def accuracy_of(model, tok, split, max_length) -> float:
    clf = classify.Classifier(model, tok, ["negative", "positive"], max_length=max_length)
    return classify.accuracy(split.labels, clf.predict(split.texts).labels)


def train_one(method: str, args, ds, train, seed: int) -> dict:
    torch.manual_seed(seed)
    model, tok = pretrained.load_classifier(args.checkpoint, 2, label_names=["negative", "positive"])
    lr_body, lr_head, frozen = args.lr_body, args.lr_head, False
    if method == "random":
        from transformers import AutoModelForSequenceClassification

        model = AutoModelForSequenceClassification.from_config(model.config)   # same shape, random weights
        lr_body = lr_head = args.lr_scratch
    if method == "lora":
        lora.add_lora(model, r=args.lora_r, alpha=args.lora_alpha, targets=tuple(args.lora_targets))
        lr_body = lr_head = args.lr_lora
        frozen = None
    total = sum(p.numel() for p in model.parameters())
    start = time.perf_counter()
    run = replace(classify.FINETUNE, lr=lr_body, lr_head=lr_head, epochs=args.epochs, batch_size=args.batch_size,
                  patience=None, seed=seed)
    history = classify.finetune(model, tok, train, ds.validation, run, max_length=args.max_length,
                                group_by_length=args.group_by_length, frozen_body=frozen, device="cpu", progress=True)
    seconds = time.perf_counter() - start
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"dev": history.best["val_accuracy"], "test": accuracy_of(model, tok, ds.test, args.max_length),
            "train_seconds": round(seconds, 1), "threads": torch.get_num_threads(), "steps": history.best["step"],
            "trainable_params": trainable,
            "total_params": total, "trainable_share": trainable / total,
            "training_state_mb": round(trainable * 12 / 1e6, 1)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config.seed_everything(0)
    ds = data.load_sst2()
    train = classify.subsample(ds.train, args.max_train, seed=0) if args.max_train else ds.train
    print(f"SST-2 from {ds.source}: {len(train.texts)} training phrases (of {len(ds.train.texts)}), "
          f"dev {len(ds.validation.texts)}, test {len(ds.test.texts)}; {torch.get_num_threads()} threads", flush=True)
    checkpoint = pretrained.find_checkpoint(args.checkpoint)
    report = {"benchmark": "finetune_checkpoint", "checkpoint": args.checkpoint, "checkpoint_source": checkpoint.source,
              "device": config.describe_device(torch.device("cpu")), "data": ds.source,
              "n_train": len(train.texts), "n_dev": len(ds.validation.texts), "n_test": len(ds.test.texts),
              "settings": {k: (str(v) if isinstance(v, Path) else [p.name for p in v] if k == "reuse" else v)
                           for k, v in vars(args).items()}, "results": {}}
    rows: dict[str, list[dict]] = report["results"]
    earlier = reusable_runs(args.reuse, args)
    for method in args.methods:
        for seed in args.seeds if method in ("full", "lora", "random") else [0]:
            start = time.perf_counter()
            if (method, seed) in earlier:
                rows.setdefault(method, []).append({**earlier[method, seed], "reused": True})
                print(f"{method:<9} seed {seed}: kept from an earlier run with the same settings", flush=True)
                continue
            if method == "majority":
                base = classify.MajorityBaseline().fit(train.labels, 2)
                row = {"dev": classify.accuracy(ds.validation.labels, base.predict(ds.validation.texts)),
                       "test": classify.accuracy(ds.test.labels, base.predict(ds.test.texts))}
            elif method == "tfidf":
                row = {}
                for name, split in (("", train), ("_all", ds.train)):
                    model = classify.fit_tfidf_logreg(split.texts, split.labels, ds.validation.texts,
                                                      ds.validation.labels)
                    row["dev" + name] = classify.accuracy(ds.validation.labels, model.predict(ds.validation.texts))
                    row["test" + name] = classify.accuracy(ds.test.labels, model.predict(ds.test.texts))
            elif method == "features":
                model, tok = pretrained.load_classifier(args.checkpoint, 2)
                feats = [mean_features(model, tok, s.texts, args.max_length) for s in (train, ds.validation, ds.test)]
                lr = classify.fit_features_logreg(feats[0], train.labels, feats[1], ds.validation.labels)
                row = {"dev": classify.accuracy(ds.validation.labels, lr.predict(feats[1])),
                       "test": classify.accuracy(ds.test.labels, lr.predict(feats[2]))}
            else:
                row = train_one(method, args, ds, train, seed)
            row.update(seed=seed, seconds=round(time.perf_counter() - start, 1))
            rows.setdefault(method, []).append(row)
            config.write_benchmark(report, args.out)        # after every run: an interrupted run keeps its rows
            print(f"{method:<9} seed {seed}: " + "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                                          for k, v in row.items()), flush=True)
    print(f"\n{'method':<10}{'dev':>8}{'test':>8}{'± test':>8}{'train s':>9}{'trainable':>11}")
    for method, runs in rows.items():
        tests = [r["test"] for r in runs]
        print(f"{method:<10}{np.mean([r['dev'] for r in runs]):>8.3f}{np.mean(tests):>8.3f}"
              f"{np.std(tests) if len(tests) > 1 else 0:>8.3f}{np.mean([r.get('train_seconds', r['seconds']) for r in runs]):>9.0f}"
              f"{runs[0].get('trainable_params', 0):>11,}")
    print("wrote", config.write_benchmark(report, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
