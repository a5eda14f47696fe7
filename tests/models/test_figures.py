"""Pictures and predictions come through the datamodule's loaders: any LightningDataModule."""

from io import BytesIO

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from litlab.models import ImageClassifier, PolynomialRegression


class PlainData(L.LightningDataModule):
    """Plain torch DataLoaders, no TensorDataModule; images (if any) scaled by the hook."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        super().__init__()
        self.data = TensorDataset(x, y)
        self.seen: list[torch.dtype] = []

    def test_dataloader(self):
        return DataLoader(self.data, batch_size=7)

    def val_dataloader(self):
        return DataLoader(self.data, batch_size=50)

    def on_after_batch_transfer(self, batch, dataloader_idx):
        x, y = batch
        self.seen.append(x.dtype)
        if x.dtype == torch.uint8:
            x = x.permute(0, 3, 1, 2).float() / 255  # [N, H, W, C] -> [N, C, H, W]
        return x, y


def _png(fig) -> int:
    out = BytesIO()
    fig.savefig(out, format="png")
    return out.tell()


def test_regression_figures_from_plain_dataloaders():
    x = torch.linspace(-1, 1, 30)[:, None]
    data = PlainData(x, 3 * x)
    model = PolynomialRegression(degree=1)
    figures = model.figures(data)
    assert list(figures) == ["fit"] and _png(figures["fit"]) > 1000
    xs, ys, out = model.predict_split(data, "val")
    assert torch.equal(xs, x) and torch.equal(ys, 3 * x) and out.shape == (30, 1)


def test_image_classifier_figures_from_plain_dataloaders():
    images = torch.randint(0, 256, (20, 12, 16, 3), dtype=torch.uint8)  # colour, channels last
    labels = torch.arange(20) % 3
    data = PlainData(images, labels)
    model = ImageClassifier(channels=[4], stem=0, in_channels=3, image_size=[12, 16], num_classes=3)
    x, y, out = model.predict_split(data)
    # x as the loader gives it, before the hook; the model saw the hook's floats.
    assert torch.equal(x, images) and torch.equal(y, labels) and out.dtype == torch.float32
    assert out.shape == (20, 3) and set(data.seen) == {torch.uint8}
    figures = model.figures(data)
    assert set(figures) == {"confusion_matrix", "misclassified"}
    assert all(_png(f) > 1000 for f in figures.values())


def test_figures_read_a_bounded_sample_of_the_split():
    x = torch.linspace(-1, 1, 30)[:, None]
    data = PlainData(x, 3 * x)  # test batches of 7
    model = PolynomialRegression(degree=1)
    whole = model.predict_split(data, limit=None)
    data.seen.clear()
    bounded = model.predict_split(data, limit=10)
    assert len(data.seen) == 2  # two batches read (14 samples), not five
    assert [len(t) for t in whole] == [30] * 3 and [len(t) for t in bounded] == [10] * 3
    assert all(torch.equal(a[:10], b) for a, b in zip(whole, bounded, strict=True))
    assert all(len(t) == 30 for t in model.predict_split(data))  # the default bound: 10 000
