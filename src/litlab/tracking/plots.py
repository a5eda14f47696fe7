"""Every picture litlab draws. Plain matplotlib ``Figure`` objects, no pyplot: no display, no
global backend state, and figures are freed as soon as they are dropped.

Import this module lazily (inside functions): matplotlib costs ~0.3 s to import.
"""

from __future__ import annotations

import matplotlib
import matplotlib.ticker
import numpy as np
import torch
from matplotlib.figure import Figure

MAX_POINTS = 1000  # a scatter of 10,000 points says no more than one of 1,000


def _host(*tensors: torch.Tensor) -> list[torch.Tensor]:
    """Host copies, detached and in float32 where they were half precision: numpy (and so
    matplotlib) takes neither GPU tensors nor bfloat16. Tasks already pass CPU tensors; this
    keeps a new task that forgets from crashing on a GPU after training ended."""
    out = []
    for t in tensors:
        t = torch.as_tensor(t).detach().cpu()
        out.append(t.float() if t.dtype in (torch.float16, torch.bfloat16) else t)
    return out


def _subsample(x: torch.Tensor, y: torch.Tensor, n: int = MAX_POINTS, seed: int = 0):
    if len(x) <= n:
        return x, y
    keep = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n]
    return x[keep], y[keep]


def regression_fit(
    x: torch.Tensor, y: torch.Tensor, grid: torch.Tensor, fitted: torch.Tensor, title: str
) -> Figure:
    """Data points and the fitted line or curve through them (1-D input)."""
    x, y, grid, fitted = _host(x, y, grid, fitted)
    x, y = _subsample(x, y)
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.add_subplot()
    ax.scatter(x.flatten(), y.flatten(), s=6, alpha=0.4, label="test data")
    ax.plot(grid.flatten(), fitted.flatten(), color="C3", lw=2, label="fitted")
    ax.set(xlabel="x", ylabel="y", title=title)
    ax.legend()
    return fig


def decision_boundary(
    x: torch.Tensor,
    y: torch.Tensor,
    xx: torch.Tensor,
    yy: torch.Tensor,
    prob: torch.Tensor,
    title: str,
) -> Figure:
    """2-D points coloured by class over the predicted probability, with the p = 0.5 line."""
    x, y, xx, yy, prob = _host(x, y, xx, yy, prob)
    x, y = _subsample(x, y)
    fig = Figure(figsize=(5.5, 4.5), layout="constrained")
    ax = fig.add_subplot()
    shade = ax.contourf(xx, yy, prob, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.35)
    ax.contour(xx, yy, prob, levels=[0.5], colors="k", linewidths=2)
    for label, color in ((0, "C0"), (1, "C3")):
        pts = x[y == label]
        ax.scatter(pts[:, 0], pts[:, 1], s=8, c=color, edgecolors="none", label=f"class {label}")
    fig.colorbar(shade, ax=ax, label="p(class 1)")
    ax.set(xlabel="x1", ylabel="x2", title=title)
    ax.legend(loc="upper left")
    return fig


def confusion_matrix(matrix: torch.Tensor, title: str) -> Figure:
    """Counts of (true, predicted) pairs; the diagonal is what the model got right."""
    (matrix,) = _host(matrix)
    n = len(matrix)
    fig = Figure(figsize=(6, 5.5), layout="constrained")
    ax = fig.add_subplot()
    im = ax.imshow(matrix, cmap="Blues", norm="log" if matrix.max() > 100 else None)
    # Counts as plain numbers (1, 10, 100), not a log axis's 10^k: that is typeset by mathtext,
    # whose parser takes ~0.1 s to build, a third of the figure's time.
    fig.colorbar(im, ax=ax, format=matplotlib.ticker.StrMethodFormatter("{x:g}"))
    ax.set(xticks=range(n), yticks=range(n), xlabel="predicted", ylabel="true", title=title)
    threshold = matrix.max() / 2
    for i in range(n):
        for j in range(n):
            count = int(matrix[i, j])
            if count:
                color = "white" if count > threshold else "black"
                ax.text(j, i, count, ha="center", va="center", fontsize=7, color=color)
    return fig


def is_image_batch(x: torch.Tensor) -> bool:
    """Whether ``x`` looks like a batch of images: ``[N, H, W]``, ``[N, C, H, W]`` or
    ``[N, H, W, C]`` with 1, 3 or 4 channels."""
    if x.dim() == 3:
        return min(x.shape[1:]) > 1
    return x.dim() == 4 and (x.shape[1] in (1, 3, 4) or x.shape[-1] in (1, 3, 4))


def _as_tiles(images: torch.Tensor) -> np.ndarray:
    """``[N, H, W]`` (grey) or ``[N, H, W, 3|4]`` (colour, in [0, 1]) for ``imshow``."""
    if images.dim() == 4:
        channels_first = images.shape[1] in (1, 3, 4) and images.shape[-1] not in (1, 3, 4)
        images = images.permute(0, 2, 3, 1) if channels_first else images
        images = images[..., 0] if images.shape[-1] == 1 else images
    tiles = images.float()
    if images.dim() == 4:  # colour: imshow takes it as given, so it must be in [0, 1]
        if images.dtype == torch.uint8:
            tiles = tiles / 255
        elif len(tiles):
            tiles = (tiles - tiles.min()) / (tiles.max() - tiles.min()).clamp_min(1e-12)
    return tiles.numpy()


def image_grid(
    images: torch.Tensor, predicted: torch.Tensor, true: torch.Tensor, title: str, cols: int = 8
) -> Figure:
    """Small images, each labelled with what the model said and what it was (red: wrong).

    Images of any size, grey (``[N, H, W]``, ``[N, 1, H, W]``) or colour (``[N, 3, H, W]``,
    ``[N, H, W, 3]``). One montage on one axes, not one axes per image: matplotlib lays out
    and renders every axes on its own, and 32 of them took over a second, longer than the rest
    of a run's pictures.
    """
    images, predicted, true = _host(images, predicted, true)
    tiles = _as_tiles(images) if len(images) else np.zeros((0, 28, 28))
    n, (h, w), colour = len(tiles), tiles.shape[1:3], tiles.shape[3:]
    rows = max(1, -(-n // cols))
    # Pixels between tiles; the gap above each holds its label, so it grows with the tiles.
    gap_x, gap_y = max(4, w // 7), max(9, h // 3)
    canvas = np.full((rows * (h + gap_y), cols * (w + gap_x) - gap_x, *colour), np.nan)
    for i in range(n):
        r, c = divmod(i, cols)
        top, left = r * (h + gap_y) + gap_y, c * (w + gap_x)
        canvas[top : top + h, left : left + w] = tiles[i]
    if colour:
        canvas = np.nan_to_num(canvas, nan=1.0)  # white between colour tiles too
    fig = Figure(figsize=(cols * 1.1, rows * 1.3 + 0.4), layout="constrained")
    ax = fig.add_subplot()
    ax.axis("off")
    gray = matplotlib.colormaps["gray"].with_extremes(bad="white")
    ax.imshow(canvas, cmap=None if colour else gray, interpolation="nearest")
    for i in range(n):
        r, c = divmod(i, cols)
        p, t = int(predicted[i]), int(true[i])
        ax.text(
            c * (w + gap_x) + w / 2,
            r * (h + gap_y) + gap_y - gap_y / 6,
            f"pred {p} / true {t}",
            ha="center",
            va="bottom",
            fontsize=7,
            color="C3" if p != t else "black",
        )
    fig.suptitle(title)
    return fig


digit_grid = image_grid  # its name when it drew MNIST digits only


def render(fig: Figure, dpi: float = 100) -> np.ndarray:
    """The figure drawn once at ``dpi``, as an ``H x W x 4`` uint8 RGBA array: the pixels
    ``fig.savefig(path, dpi=dpi)`` writes, which draws twice with a layout engine (once to lay
    out, once to paint); PNG files and TensorBoard both take this one drawing."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig.dpi = dpi
    canvas = FigureCanvasAgg(fig)
    canvas.draw()  # lays out (constrained layout), then paints
    return np.asarray(canvas.buffer_rgba()).copy()


def write_png(rgba: np.ndarray, path) -> None:
    """``render``'s pixels as a PNG file."""
    from PIL import Image

    Image.fromarray(rgba).save(path, format="png")
