"""What the tracking tests share: no wandb login, as on CI, and reading a run's run.json."""

import json

import pytest
from PIL import Image


@pytest.fixture(autouse=True)
def no_wandb_login(monkeypatch, tmp_path):
    """As on CI: no key, no netrc, no WANDB_MODE, so litlab itself must choose offline."""
    for name in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_PROJECT", "WANDB_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))  # not there (yet)


def manifest(run_dir):
    return json.loads((run_dir / "run.json").read_text())


def assert_picture(path):
    """A real PNG with something drawn on it (a blank canvas has one or two colours)."""
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    with Image.open(path) as img:
        img.verify()
    with Image.open(path) as img:
        assert img.width >= 300 and img.height >= 300
        colours = img.convert("RGB").getcolors(maxcolors=1 << 20)
        assert len(colours) > 50, f"{path} looks blank: {len(colours)} colours"
