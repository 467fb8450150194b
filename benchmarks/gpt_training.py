"""Lesson 08's GPT trained on lesson 06's text, against the unigram and bigram baselines.

The lesson's recipe (a 4-layer GPT of width 128 over a 2,000-piece WordPiece vocabulary,
AdamW with betas (0.9, 0.95), weight decay 0.1 on the matrices, warm-up then a cosine decay,
batches of 32 random windows of 128 tokens) trained from scratch on the offline mix, and
scored on 256 fixed windows of the held-out documents beside the two count-based baselines
(add-one unigram; bigram interpolated 0.7 / 0.3 with it) on the same targets.
Goal: a held-out loss at least 25% below the unigram after at most 10 minutes of CPU training.

    python benchmarks/gpt_training.py            # prints a table, writes assets/benchmarks/gpt_training.json
    python benchmarks/gpt_training.py --quick    # the Wikipedia sample and a tiny model (a smoke run)
"""

from __future__ import annotations

import argparse

import torch

from textft_lib import config, corpus, gpt, lm_data, train, wordpiece


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="the Wikipedia sample and a tiny model")
    p.add_argument("--steps", type=int, default=None, help="optimizer steps (default 1200; quick 60)")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--warmup", type=int, default=None, help="warm-up steps (default 50; quick 5)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--vocab-size", type=int, default=2000)
    p.add_argument("--out", default=None, help="JSON path (default assets/benchmarks/gpt_training.json)")
    args = p.parse_args(argv)
    args.steps = args.steps or (60 if args.quick else 1200)
    args.warmup = (5 if args.quick else 50) if args.warmup is None else args.warmup
    if not 0 <= args.warmup < args.steps:
        p.error(f"--warmup must be at least 0 and below --steps ({args.steps}), got {args.warmup}")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    name, limit = ("wiki_sample", 24) if args.quick else ("offline_mix", None)
    width, layers, context = (32, 2, 32) if args.quick else (128, 4, 128)
    steps = args.steps
    train_texts, held_texts = corpus.training_split(name, held_out_fraction=0.1, seed=0, limit=limit)
    tok = wordpiece.course_tokenizer(args.vocab_size, corpus=name, limit=limit, model_max_length=context)
    train_ids, held_ids = lm_data.token_stream(train_texts, tok), lm_data.token_stream(held_texts, tok)
    held = lm_data.eval_windows(held_ids, context, max_windows=32 if args.quick else 256)
    baselines = lm_data.baseline_losses(train_ids, held, len(tok), weight=0.7)

    torch.manual_seed(0)
    model = gpt.GPT(gpt.GPTConfig(vocab_size=len(tok), max_len=context, d_model=width, n_heads=4,
                                  n_layers=layers))
    decayed = [p.dim() >= 2 for p in model.parameters()]
    groups = [{"params": [p for p, d in zip(model.parameters(), decayed) if d == flag],
               "weight_decay": 0.1 if flag else 0.0} for flag in (True, False)]
    opt = torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.95))
    sched = train.warmup_decay_schedule(opt, args.warmup, steps, kind="cosine", min_ratio=0.1)
    history = train.fit(model, lm_data.RandomWindows(train_ids, context, args.batch_size, steps, seed=0),
                        loss_fn=lambda m, b: m.loss(b), optimizer=opt, scheduler=sched, epochs=None,
                        max_steps=steps, grad_clip=1.0, val_loader=list(held.split(args.batch_size)),
                        eval_every=100, device="cpu", progress=True, verbose=False)
    final = history.evals[-1]["val_loss"]
    tokens = steps * args.batch_size * context
    reduction = 1 - final / baselines["unigram"]
    print(f"\n{name}: {len(train_ids):,} training tokens, {held.numel() - len(held):,} held-out targets; "
          f"{steps} steps ({tokens:,} tokens, {tokens / len(train_ids):.2f} passes) in {history.seconds:.0f} s, "
          f"{torch.get_num_threads()} thread(s)")
    print(f"{'held-out loss (nats)':<24}{'':>8}")
    for label, loss in (("unigram", baselines["unigram"]), ("bigram", baselines["bigram"]), ("our GPT", final)):
        print(f"  {label:<22}{loss:8.3f}  ({1 - loss / baselines['unigram']:6.1%} below the unigram)")
    print(f"goal: >= 25% below the unigram within 10 minutes of training: {reduction:.1%} in "
          f"{history.seconds / 60:.1f} min")
    result = {"benchmark": "gpt_training", "quick": args.quick, "threads": torch.get_num_threads(),
              "corpus": name, "settings": {"vocab_size": args.vocab_size, "context": context, "d_model": width,
                                           "n_layers": layers, "n_heads": 4, "lr": args.lr, "betas": [0.9, 0.95],
                                           "weight_decay": 0.1, "warmup": args.warmup, "min_lr_ratio": 0.1,
                                           "batch_size": args.batch_size, "steps": steps, "grad_clip": 1.0},
              "train_tokens": len(train_ids), "tokens_seen": tokens, "held_out_windows": len(held),
              "unigram": baselines["unigram"], "bigram": baselines["bigram"], "held_out_loss": final,
              "reduction_vs_unigram": reduction, "training_seconds": history.seconds,
              "evals": [{"step": e["step"], "val_loss": e["val_loss"]} for e in history.evals]}
    out = config.benchmark_path("gpt_training", quick=args.quick, out=args.out)
    config.write_benchmark(result, out)
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
