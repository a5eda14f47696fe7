from litlab.data.base import TensorDataModule
from litlab.data.image import ImageDataModule
from litlab.data.mnist import MNISTDataModule
from litlab.data.synthetic import BlobsDataModule, LinearDataModule, SineDataModule

__all__ = [
    "BlobsDataModule",
    "ImageDataModule",
    "LinearDataModule",
    "MNISTDataModule",
    "SineDataModule",
    "TensorDataModule",
]
