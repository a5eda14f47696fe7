"""``litlab-train --help``, answered from the configs folder without composing anything.

Hydra's own help composes the config once per option of every group (~0.8 s here); listing the
folder takes milliseconds. ``--cfg job`` still shows the fully composed config.
"""

from __future__ import annotations

from pathlib import Path

USAGE = """\
litlab-train: compose an experiment with Hydra, then fit and test it with Lightning.

usage: litlab-train [key=value ...] [group=option ...]
       litlab-train -m key=a,b ...        a grid: one run per combination (multirun)

examples:
  litlab-train experiment=linear trainer.max_epochs=5
  litlab-train experiment=logistic model=mlp_classifier model.hidden_size=32
  litlab-train ckpt_path=logs/mnist/runs/<time>      resume that run from its last.ckpt
  litlab-train experiment=mnist ckpt_path=latest     resume the newest mnist run
  litlab-train init_from=logs/mnist/runs/<time>      a new run from that run's weights

Config groups (configs/<group>/<option>.yaml), pick one with group=option:
{groups}
Top-level keys: name, seed, ckpt_path, init_from, init_strict, train, test, monitor.metric,
monitor.mode, tags.

  litlab-train [overrides] --cfg job     print the composed config and exit
  litlab-train --hydra-help              Hydra's own flags (--multirun, --cfg, --info, ...)
See README.md for eval, sweeps (litlab-sweep) and tracking.
"""


def group_options(config_dir: Path) -> dict[str, list[str]]:
    """``{"data": ["blobs", "linear", ...], ...}``: every group folder and its options."""
    groups: dict[str, list[str]] = {}
    for path in sorted(config_dir.rglob("*.yaml")):
        if path.parent != config_dir:
            group = path.parent.relative_to(config_dir).as_posix()
            groups.setdefault(group, []).append(path.stem)
    return groups


def text(config_dir: Path) -> str:
    """``litlab-train --help``: the usage, then every config group and its options, those of
    the project run in (``litlab.config.project``) among them."""
    from litlab import LitlabError
    from litlab.config.project import project_configs

    groups = group_options(config_dir)
    try:
        project = project_configs()
    except LitlabError:  # the command itself says what is wrong with it
        project = None
    for group, options in group_options(project).items() if project else ():
        groups[group] = sorted({*groups.get(group, []), *options})
    width = max(map(len, groups)) + 2
    lines = [f"  {group:<{width}}{', '.join(options)}" for group, options in groups.items()]
    return USAGE.format(groups="\n".join(lines))
