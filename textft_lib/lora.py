"""LoRA: fine-tune a large linear layer through a small, low-rank update (Hu et al. 2021,
"LoRA: Low-Rank Adaptation of Large Language Models", arXiv:2106.09685).

A frozen weight ``W (out, in)`` gets a trainable update ``ΔW = (alpha / r) · B A`` with
``A (r, in)`` and ``B (out, r)``, ``r`` much smaller than ``in`` and ``out``. ``B`` starts at
zero, so the adapted model starts exactly as the pretrained one; ``A`` starts random (as in
``peft``: Kaiming-uniform). After training, ``merge`` folds ``ΔW`` into ``W``: inference costs
nothing extra.

Example::

    n_trainable = add_lora(model, r=8, alpha=16, targets=("query", "value"), train=("classifier",))
    classify.finetune(model, tok, train, validation, replace(classify.FINETUNE, lr=5e-4, lr_head=None),
                      frozen_body=None)
    merge_lora(model)                     # back to plain nn.Linear layers, same outputs
"""

from __future__ import annotations

import math
import numbers
from typing import Sequence

import torch
from torch import Tensor, nn

from textft_lib.checks import string_list


class LoRALinear(nn.Module):
    """``base(x) + (alpha / r) · dropout(x) Aᵀ Bᵀ``: a frozen ``nn.Linear`` plus a rank-``r`` update.

    ``x (..., in)`` -> ``(..., out)``. ``lora_A (r, in)`` and ``lora_B (out, r)`` are the
    only trainable parameters; ``base`` keeps its weights and is frozen.
    """

    def __init__(self, base: nn.Linear, r: int = 8, alpha: float = 16.0, dropout: float = 0.0) -> None:
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"LoRA wraps an nn.Linear, got {type(base).__name__}")
        if not isinstance(r, int) or isinstance(r, bool) or not 1 <= r <= min(base.in_features, base.out_features):
            raise ValueError(f"rank r must be an int from 1 to {min(base.in_features, base.out_features)}, got {r!r}")
        if not alpha > 0 or not 0.0 <= dropout < 1.0:
            raise ValueError(f"alpha must be positive and dropout in [0, 1), got alpha={alpha!r}, dropout={dropout!r}")
        self.base, self.r, self.alpha = base, r, float(alpha)
        self.scaling = self.alpha / r
        base.requires_grad_(False)
        w = base.weight
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, dtype=w.dtype, device=w.device))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, dtype=w.dtype, device=w.device))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))   # the init of nn.Linear (and of peft)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.base(x) + (self.dropout(x) @ self.lora_A.T @ self.lora_B.T) * self.scaling

    def delta_weight(self) -> Tensor:
        """``ΔW = scaling · B A``, shape ``(out, in)``, like ``base.weight``."""
        return (self.lora_B @ self.lora_A) * self.scaling

    def merge(self) -> nn.Linear:
        """A plain ``nn.Linear`` with ``W + ΔW``: the same outputs (without dropout), no extra cost."""
        merged = nn.Linear(self.base.in_features, self.base.out_features, bias=self.base.bias is not None,
                           device=self.base.weight.device, dtype=self.base.weight.dtype)
        with torch.no_grad():
            merged.weight.copy_(self.base.weight + self.delta_weight())
            if self.base.bias is not None:
                merged.bias.copy_(self.base.bias)
        return merged

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha:g}"


def add_lora(model: nn.Module, *, r: int = 8, alpha: float = 16.0, dropout: float = 0.0,
             targets: Sequence[str] = ("query", "value"), train: Sequence[str] = ("classifier",)) -> int:
    """Freeze ``model`` and wrap every ``nn.Linear`` whose name ends with one of ``targets``
    (``query``/``value`` in Hugging Face's BERT, as in the LoRA paper; ``q_proj``/``v_proj`` in
    the course's ``BertClassifier``; add the key and output layers for every linear layer, as
    QLoRA found necessary to match full fine-tuning) in a ``LoRALinear``; the modules named in
    ``train`` (the new head) stay trainable. Returns the number of trainable parameters.

    Every argument is checked before the model is touched: ``ValueError`` when no layer
    matches, when ``r`` does not fit a matched layer, when a ``train`` module does not exist,
    or when the model already holds adapters (re-running ``add_lora`` would freeze them:
    start from a fresh model, or ``merge_lora`` first).
    """
    targets, train = string_list(targets, "targets"), string_list(train, "train")
    if any(isinstance(m, LoRALinear) for m in model.modules()):
        raise ValueError("the model already holds LoRA adapters (add_lora ran on it before); adding more "
                         "would freeze them: start from a fresh model, or merge_lora(model) first")
    found = [(name, m) for name, m in model.named_modules()
             if isinstance(m, nn.Linear) and name.split(".")[-1] in set(targets)]
    if not found:
        linear = sorted({n.split(".")[-1] for n, m in model.named_modules() if isinstance(m, nn.Linear)})
        raise ValueError(f"no nn.Linear named {list(targets)} in the model; its linear layers are named {linear}")
    modules = dict(model.named_modules())
    missing = [prefix for prefix in train if prefix not in modules]
    if missing:
        children = [n for n, _ in model.named_children()]
        raise ValueError(f"train names modules the model lacks: {missing}; its top-level modules are {children}")
    smallest = min(min(m.in_features, m.out_features) for _, m in found)
    if isinstance(r, bool) or not isinstance(r, numbers.Integral) or not 1 <= r <= smallest:
        raise ValueError(f"rank r must be an int from 1 to {smallest} (the smallest matched layer), got {r!r}")
    if not isinstance(alpha, numbers.Real) or not alpha > 0 or not isinstance(dropout, numbers.Real) \
            or not 0.0 <= dropout < 1.0:
        raise ValueError(f"alpha must be positive and dropout in [0, 1), got alpha={alpha!r}, dropout={dropout!r}")
    model.requires_grad_(False)
    for name, module in found:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, LoRALinear(module, r=int(r), alpha=alpha, dropout=dropout))
    for prefix in train:
        model.get_submodule(prefix).requires_grad_(True)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def merge_lora(model: nn.Module) -> int:
    """Replace every ``LoRALinear`` in ``model`` by its merged ``nn.Linear``; returns how many."""
    wrapped = [(name, m) for name, m in model.named_modules() if isinstance(m, LoRALinear)]
    for name, module in wrapped:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, module.merge())
    return len(wrapped)
