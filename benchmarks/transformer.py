"""Training-step time of textft's TransformerEncoder against torch.nn.TransformerEncoder.

Both stacks get the same configuration and the same weights (copied with
``transformer.to_torch``); one training step is forward + backward + AdamW step on a
random batch, with and without a padding mask. The two are timed in alternation (so a
busy machine slows both alike) and the median is reported.

    python benchmarks/transformer.py              # prints a table, writes assets/benchmarks/transformer.json
    python benchmarks/transformer.py --steps 50 --d-model 256 --layers 4
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from textft_lib import config
from textft_lib.transformer import TransformerEncoder, to_torch


def torch_encoder_like(ours: TransformerEncoder) -> nn.TransformerEncoder:
    """``nn.TransformerEncoder`` with the same layers (weights copied) and final norm."""
    first = to_torch(ours.layers[0])
    ref = nn.TransformerEncoder(first, num_layers=len(ours.layers), enable_nested_tensor=False,
                                norm=None if ours.norm is None else nn.LayerNorm(ours.norm.normalized_shape))
    for i, layer in enumerate(ours.layers):  # nn.TransformerEncoder deep-copies the first layer: refill each
        ref.layers[i] = to_torch(layer)
    if ours.norm is not None:
        ref.norm.load_state_dict(ours.norm.state_dict())
    return ref


def make_step(model: nn.Module, x: torch.Tensor, mask: torch.Tensor | None, is_ours: bool):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step() -> None:
        if is_ours:
            y = model(x, key_padding_mask=mask)
        else:
            y = model(x, src_key_padding_mask=None if mask is None else ~mask)
        loss = y.float().square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def time_pair(step_a, step_b, steps: int, warmup: int = 3) -> tuple[float, float]:
    for _ in range(warmup):
        step_a()
        step_b()
    ta, tb = [], []
    for _ in range(steps):
        for fn, out in ((step_a, ta), (step_b, tb)):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    return statistics.median(ta), statistics.median(tb)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--d-ff", type=int, default=512)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--steps", type=int, default=config.pick(full=30, quick=5))
    args = parser.parse_args()

    torch.manual_seed(0)
    device = torch.device("cpu")
    settings = {k: v for k, v in vars(args).items()}
    x = torch.randn(args.batch, args.length, args.d_model)
    lengths = torch.randint(args.length // 2, args.length + 1, (args.batch,))
    lengths[0] = args.length
    pad_mask = torch.arange(args.length)[None] < lengths[:, None]  # True = real token

    rows = []
    for norm_first in (False, True):
        for mask_name, mask in (("none", None), ("padding", pad_mask)):
            ours = TransformerEncoder(args.layers, args.d_model, args.heads, args.d_ff, dropout=args.dropout,
                                      norm_first=norm_first)
            ref = torch_encoder_like(ours)
            ours.eval(), ref.eval()  # same weights, same function: check before timing
            check_mask = pad_mask if mask is None else mask
            torch.testing.assert_close(ours(x, key_padding_mask=check_mask)[check_mask],
                                       ref(x, src_key_padding_mask=~check_mask)[check_mask], atol=1e-4, rtol=1e-4)
            ours.train(), ref.train()
            t_ours, t_ref = time_pair(make_step(ours, x, mask, True), make_step(ref, x, mask, False), args.steps)
            rows.append({"norm_first": norm_first, "mask": mask_name, "ours_ms": 1e3 * t_ours,
                         "torch_ms": 1e3 * t_ref, "ratio": t_ours / t_ref})

    print(f"training step (forward + backward + AdamW), B={args.batch} L={args.length} d={args.d_model} "
          f"heads={args.heads} d_ff={args.d_ff} layers={args.layers}, {config.describe_device(device)}, "
          f"median of {args.steps}")
    print(f"{'LN':<8}{'mask':<10}{'textft ms':>11}{'torch.nn ms':>13}{'ratio':>8}")
    for r in rows:
        ln = "pre-LN" if r["norm_first"] else "post-LN"
        print(f"{ln:<8}{r['mask']:<10}{r['ours_ms']:>11.1f}{r['torch_ms']:>13.1f}{r['ratio']:>8.2f}")
    out = {
        "benchmark": "transformer encoder training step, textft vs torch.nn.TransformerEncoder",
        "device": config.describe_device(device),
        "settings": settings,
        "results": rows,
        "goal": "ratio (ours / torch) <= 1.10",
    }
    path = config.assets_dir("benchmarks") / "transformer.json"
    config.write_benchmark(out, path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
