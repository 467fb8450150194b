"""Benchmark: BERT MLM pretraining, ours against transformers' BertForMaskedLM, and what
more text buys.

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
3. **The corpus ladder**: the same model trained on growing random subsets of the mix's
   training documents (``--ladder-words``), at equal steps (lesson 06's) and at equal epochs
   (the passes lesson 06 makes over the whole mix), all read through the same tokenizer and
   scored on the same held-out documents. The full-size claims of lesson 06 rest on this.

Usage::

    python benchmarks/bert_pretraining.py            # full size, about 45 minutes on 2 cores
    python benchmarks/bert_pretraining.py --quick    # a smoke run in seconds

Writes ``assets/benchmarks/bert_pretraining.json`` (``--quick`` writes into the cache instead).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import dataclasses  # noqa: E402

from textft_lib import bert, config, corpus  # noqa: E402


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
    cfg = settings.model_config(len(tok))
    collate = bert.MLMCollator(tok, seed=0)
    n = settings.batch_size
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
    torch.manual_seed(settings.seed)
    model = bert.new_model(settings, data)
    history = bert.pretrain(model, data, settings, device="cpu", progress=False, verbose=False, cache=None)
    final = bert.evaluate_mlm(model, data.held_out_blocks, bert.MLMCollator(data.tokenizer), seed=settings.seed)
    baseline = bert.unigram_baseline(data.train_blocks, data.held_out_blocks, data.tokenizer, seed=settings.seed)
    return {"steps": settings.max_steps, "token_budget": settings.max_steps * settings.batch_size * settings.block_size,
            "epochs": settings.max_steps * settings.batch_size / len(data.train_blocks),
            "held_out_loss": final["loss"], "held_out_loss_mask": final["loss_mask"],
            "held_out_accuracy": final["accuracy"], "unigram_loss": baseline["loss"],
            "unigram_accuracy": baseline["accuracy"], "loss_reduction_vs_unigram": 1 - final["loss"] / baseline["loss"],
            "training_seconds": history.seconds, "masked_tokens": final["masked_tokens"]}


def corpus_ladder(settings: bert.PretrainConfig, data: bert.PretrainData, sizes: list[int | None]) -> list[dict]:
    """One row per (rung, budget): a seeded random subset of the training documents of
    ``settings.corpus`` of about ``words`` words (``None``: all), trained at lesson 06's
    steps and at the number of passes the whole corpus gets in them."""
    train_texts, _ = bert.training_texts(settings)
    epochs = settings.max_steps * settings.batch_size / len(data.train_blocks)
    rows = []
    for words in sizes:
        chosen, total = corpus.word_budget(train_texts, words, seed=settings.seed)
        blocks = bert.make_blocks([train_texts[i] for i in chosen], data.tokenizer, settings.block_size)
        rung = bert.PretrainData(data.tokenizer, blocks, data.held_out_blocks)
        equal_epochs = max(1, round(epochs * len(blocks) / settings.batch_size))
        for budget, steps in (("equal steps", settings.max_steps), ("equal epochs", equal_epochs)):
            if words is None and budget == "equal epochs":
                rows.append({**rows[-1], "budget": budget})      # the whole corpus: the same run
                continue
            run = dataclasses.replace(settings, max_steps=steps, eval_every=steps)
            row = {"words": total, "documents": len(chosen), "blocks": len(blocks), "budget": budget,
                   **train_and_score(run, rung)}
            rows.append(row)
            print(f"  {total:>10,} words  {budget:<12} {steps:>5} steps ({row['epochs']:.2f} epochs): held-out "
                  f"{row['held_out_loss']:.3f} nats, {row['loss_reduction_vs_unigram']:.1%} below its unigram "
                  f"({row['training_seconds']:.0f} s)", flush=True)
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the quick-mode sizes (a smoke run)")
    parser.add_argument("--repeats", type=int, default=None, help="timed training steps per model")
    parser.add_argument("--budget-steps", type=int, default=None,
                        help="steps of the quality run (default: 3600 at full size, about ten minutes)")
    parser.add_argument("--ladder-words", nargs="*", default=None,
                        help="training words of each ladder rung (default: 500000 1500000 4000000 and all)")
    args = parser.parse_args(argv)
    settings = bert.LESSON_QUICK if args.quick else bert.LESSON_FULL
    repeats = args.repeats or (3 if args.quick else 10)
    args.budget_steps = args.budget_steps or (settings.max_steps if args.quick else 3600)
    if args.ladder_words is None:
        args.ladder_words = ["2000", "4000", "all"] if args.quick else ["500000", "1500000", "4000000", "all"]
    device = torch.device("cpu")
    print(f"device: {config.describe_device(device)} | settings: {'quick' if args.quick else 'full'}")

    data = bert.prepare_data(settings)
    print(f"training blocks {tuple(data.train_blocks.shape)}, held-out blocks {tuple(data.held_out_blocks.shape)}")

    print("\n1. training throughput (same config, same batches)")
    rows = throughput(settings, data, warmup=2, repeats=repeats)
    hf_best = max(r["tokens_per_s"] for r in rows if r["model"].startswith("transformers"))
    ours_speed = rows[0]["tokens_per_s"]

    print(f"\n2. held-out MLM loss after {args.budget_steps} steps")
    budget = dataclasses.replace(settings, max_steps=args.budget_steps, eval_every=args.budget_steps)
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

    print("\n3. the corpus ladder: the same held-out documents and tokenizer, more training text")
    rungs = corpus_ladder(settings, data, [None if w == "all" else int(w) for w in args.ladder_words])

    result = {
        "benchmark": "bert_pretraining",
        "device": config.describe_device(device),
        "torch_threads": torch.get_num_threads(),
        "settings": settings.as_dict(),
        "mode": "quick" if args.quick else "full",
        "throughput": rows,
        "speed_ratio_ours_vs_best_transformers": ours_speed / hf_best,
        "quality": quality,
        "ladder": rungs,
        "goals": {"speed_ratio_at_least_1": ours_speed / hf_best >= 1.0,
                  "loss_30pct_below_unigram": reduction >= 0.30},
    }
    # a quick smoke run never overwrites the committed full-size result
    folder = config.cache_dir("benchmarks") if args.quick else config.assets_dir("benchmarks")
    path = folder / "bert_pretraining.json"
    config.write_benchmark(result, path)
    print(f"\nwrote {path}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
