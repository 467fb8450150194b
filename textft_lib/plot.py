"""Small plotting helpers shared by the lessons.

Example::

    from textft_lib import plot
    fig, ax = plot.figure()
    ax.plot(losses)
    plot.save(fig, "05_loss_curve")   # assets/figures/05_loss_curve.png at full size

Figures made at full size are the course's figures and go to ``assets/figures/``; in
quick mode (tests, CI) they go to the cache instead, so a test run never rewrites the
committed figures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textft_lib import config


def figure(nrows: int = 1, ncols: int = 1, *, width: float = 6.0, height: float = 3.6, **kwargs: Any):
    """``plt.subplots`` with the course's default size (one panel is 6 x 3.6 inches)."""
    import matplotlib.pyplot as plt

    return plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), **kwargs)


def figures_dir() -> Path:
    """Where ``save`` writes: ``assets/figures`` at full size, the cache in quick mode."""
    if config.is_quick():
        return config.cache_dir("figures")
    return config.assets_dir("figures")


def save(fig: Any, name: str, *, dpi: int = 110) -> Path:
    """Save ``fig`` as ``<name>.png`` (see ``figures_dir``) and return the path."""
    if not name or "/" in name or "\\" in name:
        raise ValueError(f"figure name must be a plain file stem like '01_zipf', got {name!r}")
    path = figures_dir() / f"{name}.png"
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def heatmap(ax: Any, matrix: Any, *, xlabels: list[str] | None = None, ylabels: list[str] | None = None,
            title: str = "", cmap: str = "viridis", colorbar: bool = True) -> Any:
    """Draw a 2-D array (e.g. attention weights, queries x keys) with token labels."""
    import numpy as np

    m = np.asarray(matrix.detach().cpu() if hasattr(matrix, "detach") else matrix, dtype=float)
    if m.ndim != 2:
        raise ValueError(f"heatmap needs a 2-D matrix, got shape {m.shape}")
    im = ax.imshow(m, cmap=cmap, aspect="auto")
    if xlabels is not None:
        ax.set_xticks(range(len(xlabels)), xlabels, rotation=60, ha="right", fontsize=8)
    if ylabels is not None:
        ax.set_yticks(range(len(ylabels)), ylabels, fontsize=8)
    if title:
        ax.set_title(title)
    if colorbar:
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return im
