"""The package's folders depend on each other one way only (docs/architecture.md): entry points
on the run, the run on the parts it is made of, never back. Every import counts, including the
ones inside functions."""

import ast
from pathlib import Path

import litlab

PACKAGE = Path(litlab.__file__).parent
# What each folder may import from litlab, besides itself and the top-level modules
# (litlab/__init__.py: errors; litlab/files.py: atomic writes).
ALLOWED = {
    "cli": {"config", "run", "tracking", "inference", "sweep", "data", "models"},
    "run": {"config", "tracking", "models", "data"},  # no sweep: single runs never load it
    "inference": {"config", "run", "data", "models"},
    "sweep": {"config", "run", "tracking"},  # grid jobs and Optuna trials are runs (run.fit)
    "tracking": set(),
    "config": {"tracking"},  # the ${litlab_wandb_mode:} resolver asks tracking.wandb_run
    "models": {"config", "tracking"},  # range aliases (config.values); tracking.plots' figures
    "data": {"config"},  # the range aliases in signatures (config.values.Count, ...)
    "testing": {"config", "run", "inference"},  # a project's tests: a run, then its checks
}
ENTRY_POINTS = {"sweep/__main__.py"}  # `python -m litlab.sweep` is litlab-sweep


def litlab_imports(path: Path) -> set[str]:
    """The litlab folders a module imports from (``litlab.run.fit`` -> ``run``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "litlab" and len(parts) > 1 and (PACKAGE / parts[1]).is_dir():
                found.add(parts[1])
    return found


def test_every_folder_is_in_the_table():
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert folders - {"configs"} == set(ALLOWED)


def test_folders_import_only_what_they_may():
    wrong = []
    for folder, allowed in ALLOWED.items():
        for path in sorted((PACKAGE / folder).rglob("*.py")):
            if str(path.relative_to(PACKAGE)) in ENTRY_POINTS:
                continue
            for other in litlab_imports(path) - allowed - {folder}:
                wrong.append(f"{path.relative_to(PACKAGE)} imports litlab.{other}")
    assert not wrong, "\n".join(wrong)


def test_the_top_level_holds_only_the_shared_basics():
    modules = {p.name for p in PACKAGE.glob("*.py")}
    assert modules == {"__init__.py", "files.py"}
