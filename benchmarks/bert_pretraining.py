"""Benchmark: BERT MLM pretraining, ours against transformers' BertForMaskedLM: speed, and the
held-out loss of the ten-minute run.

In one run:

1. **Training throughput** (tokens per second, forward + backward + AdamW step) of
   ``textft_lib.bert.BertForMLM`` and of ``transformers.BertForMaskedLM`` with the same
   configuration and the same masked batches, with transformers' ``eager`` and ``sdpa``
   attention. Ours is timed twice: as used in training (the MLM head runs only at the
   15% masked positions) and computing the full ``(B, L, V)`` logits like transformers
   does, so the table shows how much of the difference comes from that choice.
2. **Quality in ten minutes**: lesson 06's model and recipe (BERT's start, the offline mix)
   trained for ``--budget-steps`` steps (about ten minutes on an idle 2-core CPU), its
   held-out MLM loss against the unigram baseline on the same held-out masks.

What more text buys (the corpus ladder, in held-out loss and on SST-2) is
``benchmarks/corpus_ladder.py``.

Usage::

    python benchmarks/bert_pretraining.py            # full size, about 12 minutes on 2 cores
    python benchmarks/bert_pretraining.py --quick    # a smoke run in seconds

Writes ``assets/benchmarks/bert_pretraining.json`` (``--quick`` writes into the cache instead).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from textft_lib import bert, config


def time_round_robin(step_fns: dict, batches: list, *, warmup: int, repeats: int) -> dict[str, list[float]]:
    """Seconds per training step of each model. The models take turns, one step each, so
    a change in the machine's load during the run affects all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in step_fns}
    for i in range(warmup + repeats):
        batch = batches[i % len(batches)]
        for name, step_fn in step_fns.items():
            start = time.perf_counter()
            step_fn(batch)
            if i >= warmup:
                times[name].append(time.perf_counter() - start)
    return times


def throughput(settings: bert.PretrainConfig, data: bert.PretrainData, *, warmup: int, repeats: int
               ) -> list[dict]:
    torch.manual_seed(0)
    tok = data.tokenizer
    cfg = dataclasses.replace(settings.model, vocab_size=len(tok))
    collate = bert.MLMCollator(tok, seed=0)
    n = settings.train.batch_size
    batches = [collate(list(data.train_blocks[i * n:(i + 1) * n])) for i in range(warmup + repeats)]
    tokens_per_batch = n * settings.block_size
    ours = bert.BertForMLM(cfg).train()
    models = {
        "textft BertForMLM (head at masked positions)": ("ours", ours),
        "textft BertForMLM (full logits)": ("ours_full", bert.BertForMLM(cfg).train()),
        "transformers BertForMaskedLM (sdpa)": ("hf", bert.to_transformers(ours, "sdpa").train()),
        "transformers BertForMaskedLM (eager)": ("hf", bert.to_transformers(ours, "eager").train()),
    }
    def make_step(kind, model):
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def step(batch):
            if kind == "ours":
                loss = model.mlm_loss(batch["input_ids"], batch["labels"], batch["attention_mask"])[0]
            elif kind == "ours_full":
                logits = model(batch["input_ids"], batch["attention_mask"])
                loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch["labels"].reshape(-1))
            else:
                loss = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"].long(),
                             labels=batch["labels"]).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return step

    times = time_round_robin({name: make_step(*spec) for name, spec in models.items()}, batches,
                             warmup=warmup, repeats=repeats)
    rows = []
    for name, ts in times.items():
        median = statistics.median(ts)
        rows.append({"model": name, "seconds_per_step_median": median, "seconds_per_step_min": min(ts),
                     "tokens_per_s": tokens_per_batch / median, "steps_timed": len(ts)})
        print(f"  {name:<46} {tokens_per_batch / median:>9.0f} tokens/s  ({median * 1000:.0f} ms/step)", flush=True)
    return rows


def train_and_score(settings: bert.PretrainConfig, data: bert.PretrainData) -> dict:
    """Pretrain lesson 06's model from BERT's start on ``data`` (no cache) and score it on the
    held-out blocks against the unigram of ``data``'s own training blocks."""
    t = settings.train
    torch.manual_seed(t.seed)
    model = bert.new_model(settings, data)
    history = bert.pretrain(model, data, t, mlm_probability=settings.data.mlm_probability, device="cpu",
                            progress=False, verbose=False, cache=None)
    return {"steps": t.max_steps, "token_budget": t.max_steps * t.batch_size * settings.block_size,
            "epochs": t.max_steps * t.batch_size / len(data.train_blocks),
            **bert.score_held_out(model, data, seed=t.seed), "training_seconds": history.seconds}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the quick-mode sizes (a smoke run)")
    parser.add_argument("--repeats", type=int, default=None, help="timed training steps per model")
    parser.add_argument("--budget-steps", type=int, default=None,
                        help="steps of the quality run (default: 3600 at full size, about ten minutes)")
    args = parser.parse_args(argv)
    settings = bert.LESSON_QUICK if args.quick else bert.LESSON_FULL
    repeats = args.repeats or (3 if args.quick else 10)
    args.budget_steps = args.budget_steps or (settings.train.max_steps if args.quick else 3600)
    device = torch.device("cpu")
    print(f"device: {config.describe_device(device)} | settings: {'quick' if args.quick else 'full'}")

    data = bert.prepare_data(settings)
    print(f"training blocks {tuple(data.train_blocks.shape)}, held-out blocks {tuple(data.held_out_blocks.shape)}")

    print("\n1. training throughput (same config, same batches)")
    rows = throughput(settings, data, warmup=2, repeats=repeats)
    hf_best = max(r["tokens_per_s"] for r in rows if r["model"].startswith("transformers"))
    ours_speed = rows[0]["tokens_per_s"]

    print(f"\n2. held-out MLM loss after {args.budget_steps} steps")
    budget = settings.with_train(max_steps=args.budget_steps, eval_every=args.budget_steps)
    quality = train_and_score(budget, data)
    reduction = quality["loss_reduction_vs_unigram"]
    print(f"\n{'':<34}{'loss (nats)':>12}{'accuracy':>10}")
    print(f"{'unigram baseline':<34}{quality['unigram_loss']:>12.3f}{quality['unigram_accuracy']:>10.3f}")
    print(f"{'ours after ' + format(quality['token_budget'], ',') + ' tokens':<34}{quality['held_out_loss']:>12.3f}"
          f"{quality['held_out_accuracy']:>10.3f}")
    print(f"loss {100 * reduction:.1f}% below the unigram baseline (goal at full size: >= 30%); "
          f"training took {quality['training_seconds']:.0f} s")
    print(f"speed: ours {ours_speed:.0f} tokens/s vs best transformers {hf_best:.0f} tokens/s "
          f"(ratio {ours_speed / hf_best:.2f}; goal >= 1)")

    result = {
        "benchmark": "bert_pretraining",
        "device": config.describe_device(device),
        "torch_threads": torch.get_num_threads(),
        "settings": settings.as_dict(),
        "mode": "quick" if args.quick else "full",
        "throughput": rows,
        "speed_ratio_ours_vs_best_transformers": ours_speed / hf_best,
        "quality": quality,
        "goals": {"speed_ratio_at_least_1": ours_speed / hf_best >= 1.0,
                  "loss_30pct_below_unigram": reduction >= 0.30},
    }
    path = config.benchmark_path("bert_pretraining", quick=args.quick)
    config.write_benchmark(result, path)
    print(f"\nwrote {path}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
