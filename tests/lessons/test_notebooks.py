"""Every notebook runs top to bottom, and its committed outputs come from its committed code."""

import nbformat
import pytest
from nbclient import NotebookClient

from lessons.notebooks import KERNEL_PYTHONPATH, NOTEBOOK_DIR, QUICK, code_hash, stamped_hash

NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
IDS = [p.name for p in NOTEBOOKS]
RERUN = "run `python notebooks/lessons/notebooks.py {}` and commit the result"


def test_the_lessons_are_all_there():
    names = {p.stem for p in NOTEBOOKS}
    assert {
        "quickstart",
        "01_tensors_and_autograd",
        "02_linear_and_logistic",
        "03_mnist_cnn",
        "04_sine_step_by_step",
        "05_autograd_from_scratch",
    } <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_committed_outputs_come_from_the_committed_code(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    rerun = RERUN.format(path.relative_to(NOTEBOOK_DIR.parent))
    assert stamped_hash(nb) == code_hash(nb), f"{path.name}: code changed since it ran; {rerun}"
    # One uninterrupted run, top to bottom, without an error left in the outputs.
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), rerun
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, f"{path.name} was saved with an error: {errors[0].ename}"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_runs_top_to_bottom(path, tmp_path, monkeypatch):
    # The lessons assert their own results (coefficients, accuracies, gradient checks) in their
    # cells: a failing assert is an error here. MNIST trains on a few batches only (its saved
    # outputs show the full epoch), which keeps every notebook well under a minute.
    monkeypatch.setenv(QUICK, "1")
    monkeypatch.setenv("PYTHONPATH", KERNEL_PYTHONPATH)
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    if path.stem == "quickstart":
        assert (tmp_path / "quickstart_fit.png").stat().st_size > 1000
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "data" in o]
    assert any("image/png" in o.data for o in images), f"{path.name} shows no plot"
