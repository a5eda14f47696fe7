from litlab.data.arrays import ArrayDataModule
from litlab.data.base import TensorDataModule
from litlab.data.folder import ImageFolderDataModule
from litlab.data.image import ImageDataModule
from litlab.data.mnist import MNISTDataModule
from litlab.data.synthetic import BlobsDataModule, LinearDataModule, SineDataModule
from litlab.data.table import TableDataModule
from litlab.data.workers import WorkerDataModule

__all__ = [
    "ArrayDataModule",
    "BlobsDataModule",
    "ImageDataModule",
    "ImageFolderDataModule",
    "LinearDataModule",
    "MNISTDataModule",
    "SineDataModule",
    "TableDataModule",
    "TensorDataModule",
    "WorkerDataModule",
]
