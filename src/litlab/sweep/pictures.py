"""Pictures of a finished sweep, drawn by Optuna's matplotlib visualisations: the optimisation
history, the parameters' importances, parallel coordinates and one slice per parameter, saved as
PNGs in ``<sweep dir>/figures/``; a study whose trials log to wandb gets them as one more run of
its group. A grid's jobs are drawn the same way, as a study of its own."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

from litlab.sweep.results import TrialRow, params_of, varied_keys
from litlab.tracking.wandb_run import init_kwargs, is_wandb

log = logging.getLogger(__name__)

DPI = 100


def draw(study, out_dir: str | Path, target_name: str) -> list[Path]:
    """The study's pictures in ``out_dir/figures/``; a picture the study cannot make yet (too
    few finished trials) is left out, with one line in the log saying why."""
    import matplotlib.pyplot as plt
    import numpy as np
    import optuna
    from optuna.visualization import matplotlib as plots

    finished = optuna.trial.TrialState.COMPLETE
    if not study.get_trials(deepcopy=False, states=(finished,)):
        return []  # Optuna would draw empty frames
    # matplotlib notes, at INFO, each text axis it draws: the root logger (Hydra's) would print it.
    logging.getLogger("matplotlib.category").setLevel(logging.WARNING)
    figures = Path(out_dir) / "figures"
    kinds = {
        "history": plots.plot_optimization_history,
        "importances": plots.plot_param_importances,
        "parallel_coordinates": plots.plot_parallel_coordinate,
        "slices": plots.plot_slice,
    }
    saved = []
    for name, plot in kinds.items():
        with warnings.catch_warnings():  # each is marked experimental, every call
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            try:
                axes = plot(study, target_name=target_name)
            except (ValueError, RuntimeError) as err:
                log.info("sweep picture %s left out: %s", name, err)
                continue
        fig = np.ravel(axes)[0].figure  # slices: an array of axes, one per parameter
        figures.mkdir(parents=True, exist_ok=True)
        fig.savefig(figures / f"{name}.png", dpi=DPI, bbox_inches="tight")
        plt.close(fig)
        saved.append(figures / f"{name}.png")
    return saved


def log_to_wandb(paths: Sequence[Path], logger: dict | None, group: str, save_dir: Path):
    """The pictures as a run ``<group> pictures`` in the study's wandb group, when its trials
    log to wandb (``logger``: the resolved ``logger`` config of the sweep)."""
    node = (logger or {}).get("wandb")
    if not paths or not node or not is_wandb(node):
        return
    import wandb

    run = wandb.init(
        project=node.get("project"),
        entity=node.get("entity"),
        group=group,
        name=f"{group} pictures",
        job_type="sweep",
        dir=str(save_dir),
        mode=node.get("mode"),
        settings=init_kwargs(node, None)["settings"],
    )
    run.log({f"sweep/{p.stem}": wandb.Image(str(p)) for p in paths})
    run.finish()


def grid_study(rows: Sequence[TrialRow], mode: str):
    """The finished jobs of a grid as an in-memory Optuna study: each varied key a categorical
    parameter (numbers as numbers), each job's objective its value."""
    import optuna
    from optuna.distributions import CategoricalDistribution

    direction = "maximize" if mode.startswith("max") else "minimize"
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # not "A new study created in memory"
    study = optuna.create_study(direction=direction, study_name="grid")
    keys = varied_keys(rows)
    done = [r for r in rows if r.ok]
    values = {k: sorted({_number(params_of(r).get(k)) for r in done}, key=str) for k in keys}
    for row in done:
        params = {k: _number(params_of(row).get(k)) for k in keys}
        study.add_trial(
            optuna.trial.create_trial(
                params=params,
                distributions={k: CategoricalDistribution(values[k]) for k in keys},
                value=row.objective,
            )
        )
    return study


def _number(text: str | None) -> float | int | str | None:
    for kind in (int, float):
        try:
            return kind(text)
        except (TypeError, ValueError):
            pass
    return text
