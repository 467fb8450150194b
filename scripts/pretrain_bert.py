#!/usr/bin/env python3
"""Pretrain the course's BERT from the command line, on one process or several (DDP).

One process (what ``bert.course_bert()`` does, with options)::

    python scripts/pretrain_bert.py --out runs/bert            # lesson 06's full size
    python scripts/pretrain_bert.py --quick --out runs/bert    # a smoke run

Several processes with PyTorch's DistributedDataParallel, e.g. two GPUs, or two CPU
processes (gloo backend) to see how it works::

    torchrun --nproc_per_node=2 scripts/pretrain_bert.py --quick --out runs/bert_ddp

How the processes share the work:

* every process builds the same model (same seed) and the same blocks; process ``r`` of
  ``W`` trains on blocks ``r, r + W, r + 2W, ...`` (its shard), with its own masks;
* ``DistributedDataParallel`` averages the gradients of all processes after every
  backward pass, so all copies of the model take the same optimizer step; one step uses
  ``W x batch_size`` sequences;
* only process 0 prints, shows progress and writes the result (``save_pretrained``
  format plus ``pretraining.json``).

The result folder loads with ``bert.load_pretrained(folder)`` or
``transformers.AutoModelForMaskedLM.from_pretrained(folder)``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch
from torch import nn


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Pretrain the course's BERT (MLM), optionally with DDP.")
    parser.add_argument("--out", type=Path, required=True, help="folder for the save_pretrained result")
    parser.add_argument("--quick", action="store_true", help="lesson 06's quick sizes (a smoke run)")
    parser.add_argument("--max-steps", type=int, help="override the number of optimizer steps")
    parser.add_argument("--lr", type=float, help="override the peak learning rate")
    parser.add_argument("--batch-size", type=int, help="override the per-process batch size")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from textft_lib import bert, cache, config

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    distributed = world > 1
    if distributed:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend)
    device = torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    main_process = rank == 0

    settings = bert.LESSON_QUICK if args.quick else bert.LESSON_FULL
    overrides = {k: v for k, v in {"max_steps": args.max_steps, "lr": args.lr,
                                   "batch_size": args.batch_size}.items() if v is not None}
    settings = settings.with_train(**overrides)

    # process 0 trains (and caches) the tokenizer first; the others then load it
    if main_process:
        data = bert.prepare_data(settings)
    if distributed:
        torch.distributed.barrier()
    if not main_process:
        data = bert.prepare_data(settings)

    torch.manual_seed(settings.train.seed)                # the same initial weights everywhere
    model = bert.new_model(settings, data).to(device)
    ids = [local_rank] if device.type == "cuda" else None
    wrap = (lambda objective: nn.parallel.DistributedDataParallel(objective, device_ids=ids)) if distributed else None
    if main_process:
        print(f"{world} process(es) on {config.describe_device(device)}; {len(data.train_blocks[rank::world])} "
              f"blocks per process; {world * settings.train.batch_size} sequences per optimizer step")
    # the library's loop: process r trains on its shard of the blocks, with masks of its own
    history = bert.pretrain(model, data, settings.train, mlm_probability=settings.data.mlm_probability, device=device,
                            progress=main_process, verbose=main_process, cache=None, shard=(rank, world), wrap=wrap)
    if main_process:
        record = {"settings": settings.as_dict(), "world_size": world, "history": history.to_dict()}

        cache.write_folder(args.out, lambda tmp: bert.save_pretrained(model.cpu(), data.tokenizer, tmp),
                           record=record, record_name="pretraining.json")
        last = history.evals[-1]
        print(f"held-out loss {last['val_loss']:.3f}, accuracy {last['val_accuracy']:.3f}; saved to {args.out}")
    if distributed:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1:])
