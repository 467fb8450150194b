"""The course's GPT against transformers' GPT2LMHeadModel of the same size and weights.

Both models hold the same weights (``gpt.to_gpt2``). Measured in one run, side by side:

* training throughput: tokens per second of one AdamW step (forward, next-token loss,
  backward, step) on the same random batches, the two timed in alternation (goal: the same
  speed, 0.9x to 1.1x: the same operations);
* greedy generation of ``--new-tokens`` tokens after a short prompt: ours with the key/value
  cache, ours recomputing the whole prefix at every step, and ``transformers``' ``generate()``
  with its cache, the three in turn, the fastest of 9 rounds (goals: cache >= 4x no cache, and
  >= 1.0x ``generate()``); the generated tokens must be the same.

    python benchmarks/gpt.py                       # prints a table, writes assets/benchmarks/gpt.json
    python benchmarks/gpt.py --quick               # a small smoke run
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from textft_lib import config, gpt


def train_step(model, ids: torch.Tensor, opt: torch.optim.Optimizer, hf: bool) -> None:
    """One step of the same loop for both: next-token cross-entropy, backward, AdamW."""
    logits = model(ids[:, :-1]).logits if hf else model(ids[:, :-1])
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def timed(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument("--steps", type=int, default=None, help="timed training steps per model")
    parser.add_argument("--new-tokens", type=int, default=None, help="tokens to generate")
    parser.add_argument("--out", default=None, help="JSON path (default assets/benchmarks/gpt.json)")
    args = parser.parse_args()
    size = (dict(vocab_size=500, max_len=64, d_model=32, n_heads=4, n_layers=2) if args.quick else
            dict(vocab_size=8000, max_len=512, d_model=128, n_heads=4, n_layers=4))
    steps = args.steps or (3 if args.quick else 30)
    new_tokens = args.new_tokens or (16 if args.quick else 256)
    batch, length = (4, 32) if args.quick else (16, 128)

    torch.manual_seed(0)
    ours = gpt.GPT(gpt.GPTConfig(**size))
    hf = gpt.to_gpt2(ours).train()
    ours.train()
    opts = {"ours": torch.optim.AdamW(ours.parameters(), lr=1e-4),
            "transformers": torch.optim.AdamW(hf.parameters(), lr=1e-4)}
    gen = torch.Generator().manual_seed(0)
    batches = [torch.randint(0, size["vocab_size"], (batch, length + 1), generator=gen) for _ in range(steps + 2)]
    for ids in batches[:2]:                                   # warm-up
        train_step(ours, ids, opts["ours"], False)
        train_step(hf, ids, opts["transformers"], True)
    times = {"ours": [], "transformers": []}
    for ids in batches[2:]:                                   # in alternation: a busy machine slows both
        times["ours"].append(timed(lambda: train_step(ours, ids, opts["ours"], False)))
        times["transformers"].append(timed(lambda: train_step(hf, ids, opts["transformers"], True)))
    tokens = batch * length
    train = {name: tokens / statistics.median(t) for name, t in times.items()}
    print(f"{sum(p.numel() for p in ours.parameters()) / 1e6:.2f} M parameters, {torch.get_num_threads()} "
          f"thread(s); training on batches of {batch} x {length} tokens, median of {steps} steps:")
    for name, rate in train.items():
        print(f"  {name:<14} {rate:10,.0f} tokens/s")

    ours.eval()
    hf = gpt.to_gpt2(ours)                                    # the trained weights, again the same
    prompt = torch.randint(0, size["vocab_size"], (1, 16), generator=gen)
    run = {
        "ours (cache)": lambda: gpt.generate(ours, prompt, new_tokens, greedy=True),
        "ours (no cache)": lambda: gpt.generate(ours, prompt, new_tokens, greedy=True, use_cache=False),
        "transformers generate()": lambda: hf.generate(prompt, max_new_tokens=new_tokens, do_sample=False,
                                                       pad_token_id=0),
    }
    outputs = {name: f() for name, f in run.items()}          # warm-up, and the tokens to compare
    same = all(torch.equal(out, outputs["ours (cache)"]) for out in outputs.values())
    rounds = 2 if args.quick else 9
    runs = {name: [] for name in run}
    for _ in range(rounds):                                   # the three in turn: a busy moment slows all
        for name, f in run.items():
            runs[name].append(timed(f))
    seconds = {name: min(t) for name, t in runs.items()}      # the fastest: the least disturbed run
    print(f"greedy generation of {new_tokens} tokens after a 16-token prompt (fastest of {rounds} rounds); "
          f"the same tokens from all three: {same}")
    for name, s in seconds.items():
        print(f"  {name:<24} {s:7.3f} s  ({new_tokens / s:7.1f} tokens/s)")
    cache_speedup = seconds["ours (no cache)"] / seconds["ours (cache)"]
    vs_hf = seconds["transformers generate()"] / seconds["ours (cache)"]
    train_ratio = train["ours"] / train["transformers"]
    print(f"goals: training {train_ratio:.2f}x transformers (0.9 to 1.1); cache {cache_speedup:.1f}x no cache (>= 4); "
          f"{vs_hf:.2f}x transformers generate() (>= 1.0)")
    out = config.assets_dir("benchmarks") / "gpt.json" if args.out is None else args.out
    config.write_benchmark({"benchmark": "gpt", "quick": args.quick, "threads": torch.get_num_threads(),
                            "model": size, "batch": [batch, length], "steps": steps,
                            "train_tokens_per_second": train, "train_ratio": train_ratio,
                            "new_tokens": new_tokens, "generate_seconds": seconds, "generate_rounds": runs, "same_tokens": same,
                            "cache_speedup": cache_speedup, "cache_vs_transformers": vs_hf}, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
