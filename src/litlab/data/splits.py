"""Seeded splits of a training set, one home for every data module: a fraction carved off for
validation or test, and fold ``fold`` of ``num_folds`` held out for cross-validation."""

from __future__ import annotations

import numpy as np
import torch

from litlab import LitlabError

Folds = tuple[int, int]  # (fold, num_folds)


def check_folds(fold: int | None, num_folds: int | None) -> Folds | None:
    """``(fold, num_folds)`` for a cross-validation run, ``None`` for a plain one."""
    if fold is None and num_folds is None:
        return None
    if fold is None or num_folds is None:
        raise LitlabError(
            f"data.fold={fold} and data.num_folds={num_folds}: give both for cross-validation "
            "(e.g. litlab-train -m data.fold='range(5)' data.num_folds=5), or neither."
        )
    if num_folds < 2 or not 0 <= fold < num_folds:
        raise LitlabError(
            f"data.fold={fold} with data.num_folds={num_folds}: the folds are 0 to "
            f"{num_folds - 1}, and there must be at least 2."
        )
    return fold, num_folds


def carve(
    n: int,
    seed: int,
    fractions: dict[str, float],
    what: str,
    folds: Folds | None = None,
    labels: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Indices into ``n`` training samples for ``train`` and every split of ``fractions``, each
    taking that share of all ``n`` from a seeded order; with ``folds``, ``val`` is that fold
    of what is left. ``what`` names the samples in messages ("training images")."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()
    splits = {}
    for split, fraction in fractions.items():
        count = round(fraction * n)
        if not 0 < count < len(order):
            left = f"no {split}" if count == 0 else "no training"
            raise LitlabError(f"data.{split}_fraction={fraction} of {n} {what} leaves {left}.")
        splits[split], order = order[:count], order[count:]
    if folds:
        order, splits["val"] = hold_out(order, *folds, seed, labels, what)
    return {"train": order, **splits}


def hold_out(
    indices: np.ndarray,
    fold: int,
    num_folds: int,
    seed: int,
    labels: np.ndarray | None = None,
    what: str = "training samples",
) -> tuple[np.ndarray, np.ndarray]:
    """``(train, val)``: ``indices`` dealt in a seeded order into ``num_folds`` folds, ``val``
    being fold ``fold``. With class ``labels`` (one per sample of the whole set), the deal
    goes class by class, so every fold keeps the classes' shares (stratified)."""
    if len(indices) < num_folds:
        raise LitlabError(
            f"data.num_folds={num_folds} folds of {len(indices)} {what}: use fewer folds."
        )
    g = torch.Generator().manual_seed(seed + 7919)  # not the order the fractions were cut in
    order = indices[torch.randperm(len(indices), generator=g).numpy()]
    if labels is not None:
        order = order[np.argsort(np.asarray(labels)[order], kind="stable")]
    held = np.arange(len(order)) % num_folds == fold
    return np.sort(order[~held]), np.sort(order[held])


def refuse_second_val(folds: Folds | None, source: str | None) -> None:
    """Under cross-validation, val is a fold: a val split of its own would go unused."""
    if folds and source:
        raise LitlabError(
            f"data.num_folds={folds[1]} holds out val from the training data, but {source} "
            "gives a val split too: drop one of them."
        )
