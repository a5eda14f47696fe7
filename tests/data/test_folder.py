"""ImageFolderDataModule: class folders of PNGs read by DataLoader workers, in a seeded order a
resume reproduces, augmented in training only; every kind of bad data is one line naming it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

import litlab
from litlab import LitlabError
from litlab.config import check_config, compose_config
from litlab.data import ImageFolderDataModule
from litlab.inference.export import export_model
from litlab.inference.predict import predict
from litlab.run import fit_and_test
from tests.conftest import assert_resume_is_exact, final_metrics, run_cli

CLASSES = ("left", "right")  # a bright left half or a bright right half: easy to learn


def write_png(path: Path, label: int, rng, size=(8, 8)) -> Path:
    pixels = rng.integers(0, 60, size=size)
    half = size[1] // 2
    pixels[:, :half] += 180 if label == 0 else 0
    pixels[:, half:] += 180 if label == 1 else 0
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.astype(np.uint8)).save(path)
    return path


def write_folders(root: Path, splits=(("train", 16), ("test", 6)), seed=0) -> Path:
    rng = np.random.default_rng(seed)
    for split, count in splits:
        for label, name in enumerate(CLASSES):
            for i in range(count):
                write_png(root / split / name / f"{i}.png", label, rng)
    return root


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    return write_folders(tmp_path_factory.mktemp("images"))


def folder(root: Path, **kwargs) -> ImageFolderDataModule:
    settings = {"folder": ".", "channels": 1, "batch_size": 4, "num_workers": 0}
    return ImageFolderDataModule(str(root), **{"val_fraction": 0.25, **settings, **kwargs})


def test_splits_classes_and_batches(images):
    dm = folder(images, normalize={"mean": [0.5], "std": [0.25]})
    dm.setup()
    assert {k: len(v) for k, v in dm.datasets.items()} == {"train": 24, "val": 8, "test": 12}
    x, y = next(iter(dm.test_dataloader()))
    assert x.shape == (4, 1, 8, 8) and x.dtype == torch.uint8 and y.tolist() == [0, 0, 0, 0]
    assert torch.equal(dm.on_after_batch_transfer((x, y), 0)[0], (x.float() / 255 - 0.5) / 0.25)
    described = dm.describe_input()
    assert described["shape"] == [1, 8, 8] and described["class_names"] == list(CLASSES)
    # One folder of class folders, split by seeded fractions: disjoint, and the same each time.
    one = folder(images / "train", test_fraction=0.25)
    one.setup()
    files = {k: set(map(str, d.files)) for k, d in one.datasets.items()}
    assert [len(f) for f in files.values()] == [16, 8, 8]
    assert len(set.union(*files.values())) == 32
    again = folder(images / "train", test_fraction=0.25)
    again.setup()
    assert again.datasets["val"].files == one.datasets["val"].files


def batches(dm, epoch: int) -> list[torch.Tensor]:
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(epoch)  # what Lightning does before every epoch
    return [y for _, y in loader]


def test_predict_reads_an_image_as_stored_resized_or_refused(images, tmp_path):
    odd = write_png(tmp_path / "odd.png", 1, np.random.default_rng(0), (12, 10))
    resized = folder(images, image_size=[6, 5]).read_image(odd)
    assert resized.shape == (1, 6, 5) and resized.dtype == np.uint8
    with pytest.raises(LitlabError, match=r"odd.png: 12x10 pixels, but this model takes 8x8"):
        folder(images).read_image(odd)


def test_the_training_order_is_a_function_of_seed_and_epoch(images):
    first, again = folder(images), folder(images)
    for a, b in zip(batches(first, 1), batches(again, 1), strict=True):
        assert torch.equal(a, b)
    assert not all(
        torch.equal(a, b) for a, b in zip(batches(first, 0), batches(first, 1), strict=True)
    )
    workers = folder(images, num_workers=2, augment=[v2.RandomRotation(30)])
    loader = workers.train_dataloader()
    assert loader.num_workers == 2 and loader.persistent_workers and loader.prefetch_factor == 2
    x_workers = torch.cat([x for x, _ in loader])
    x_main = torch.cat(
        [x for x, _ in folder(images, augment=[v2.RandomRotation(30)])._loader("train", train=True)]
    )
    assert torch.equal(x_workers, x_main)  # augmentation seeded by (epoch, index), not by worker


def test_augmentation_applies_to_training_images_only(images):
    dm = folder(images, augment=[v2.RandomHorizontalFlip(p=1.0)])
    dm.setup()
    plain = folder(images)
    plain.setup()
    train, val = dm.datasets["train"], dm.datasets["val"]
    assert torch.equal(train[(0, 3)][0], plain.datasets["train"][(0, 3)][0].flip(-1))
    assert torch.equal(val[2][0], plain.datasets["val"][2][0])
    assert torch.equal(dm.datasets["test"][5][0], plain.datasets["test"][5][0])


def test_a_transform_that_does_not_take_a_key_is_refused_like_any_target(images, cfg_for):
    bad = "data.augment=[{_target_:torchvision.transforms.v2.RandomRotation,degree:10}]"
    cfg = cfg_for("experiment=mnist_folder", f"data.data_dir={images}", "data.folder=.", bad)
    with pytest.raises(LitlabError, match=r"data.augment\[0\].degree: .*takes no argument"):
        check_config(cfg)


def bad_data(root: Path, case: str) -> tuple[Path, str]:
    """A small folder with one fault; the path the message must name, and its words."""
    write_folders(root, (("train", 3),))
    if case == "unreadable":
        bad = root / "train" / "left" / "broken.png"
        bad.write_bytes(b"\x89PNG not really")
        return bad, "not a readable image"
    if case == "empty class":
        bad = root / "train" / "empty"
        bad.mkdir()
        return bad, "a class folder with no PNG or JPEG images"
    if case == "mixed sizes":
        bad = write_png(root / "train" / "right" / "9.png", 1, np.random.default_rng(), (10, 8))
        return bad, "set data.image_size"
    if case == "no classes":
        for png in root.rglob("*.png"):
            png.unlink()
        return root / "train" / "left", "a class folder with no PNG"
    raise ValueError(case)


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("case", ["unreadable", "empty class", "mixed sizes", "no classes"])
def test_bad_data_is_one_line_naming_the_file(case, workers, tmp_path):
    path, words = bad_data(tmp_path, case)
    dm = folder(tmp_path, num_workers=workers, val_fraction=0.5, test_fraction=0.2)
    with pytest.raises(LitlabError) as err:
        dm.setup()
        for loader in (dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader()):
            list(loader)
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(path)) and words in message


def test_a_missing_split_or_folder_says_what_to_give(images, tmp_path):
    with pytest.raises(LitlabError, match="has no val/ folder: give data.val_fraction"):
        folder(images, val_fraction=None).setup()
    with pytest.raises(LitlabError, match="holds the test split: set one of them, not both"):
        folder(images, test_fraction=0.5).setup()
    with pytest.raises(LitlabError, match="no such folder"):
        folder(tmp_path / "none").setup()


# Trained end to end: the default CNN on 8x8 images of two classes.
TINY = [
    "experiment=mnist_folder",
    "trainer=cpu",
    "logger=none",
    "callbacks.figures=null",
    "data.folder=.",
    "data.val_fraction=0.25",
    "data.batch_size=8",
    "data.eval_batch_size=16",
    "model.image_size=8",
    "model.num_classes=2",
    "model.stem=0",
    "model.channels=[8]",
]


@pytest.mark.slow
def test_train_predict_on_a_folder_and_export(images, cfg_for, tmp_path):
    run = fit_and_test(cfg_for(*TINY, f"data.data_dir={images}", "trainer.max_epochs=3"))
    assert run.trainer.callback_metrics["test/acc"] == 1.0
    run_dir = Path(run.trainer.checkpoint_callback.dirpath).parent
    folder_in = images / "test" / "right"
    out = predict(
        compose_config(
            [f"ckpt_path={run_dir}", "trainer=cpu", f"input={folder_in}"],
            output_dir=tmp_path / "predict",
            config_name="predict",
        )
    )
    rows = out.read_text().splitlines()
    assert len(rows) == 7 and all(r.split(",")[1] == "1" for r in rows[1:])  # "right"
    path = export_model(run_dir, "exported_program", tmp_path / "model.pt2")
    model, dm = litlab.load(run_dir, datamodule=True)
    x = torch.from_numpy(np.stack([dm.read_image(p) for p in sorted(folder_in.iterdir())]))
    with torch.no_grad():
        expected = model(dm.on_after_batch_transfer((x, x), 0)[0])
        exported = torch.export.load(path).module()(x)
    assert torch.allclose(exported, expected, atol=1e-5)
    info = json.loads(path.with_name(path.name + ".json").read_text())
    assert info["input"]["shape"] == ["batch", 1, 8, 8] and info["class_names"] == list(CLASSES)
    assert info["preprocessing"]["normalisation"]["mean"] == [0.1307]


@pytest.mark.slow
def test_a_resume_after_one_epoch_equals_the_uninterrupted_run(images, cfg_for):
    assert_resume_is_exact(
        cfg_for,
        *TINY,
        f"data.data_dir={images}",
        "data.num_workers=2",
        "data.augment=[{_target_:torchvision.transforms.v2.RandomRotation,degrees:20}]",
        "trainer.precision=32",
    )


@pytest.mark.slow
def test_ddp_cpu_trains_on_the_folder(images, tmp_path):
    overrides = [a for a in TINY if not a.startswith("trainer=")]
    run_cli("litlab-train", *overrides, "trainer=ddp_cpu", f"data.data_dir={images}", cwd=tmp_path)
    (run_dir,) = (tmp_path / "logs" / "mnist_folder" / "runs").iterdir()
    assert final_metrics(run_dir)["test/acc"] >= 0.9
