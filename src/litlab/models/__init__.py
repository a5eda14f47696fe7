from litlab.models.base import LitTask
from litlab.models.classification import BinaryClassifier, MulticlassClassifier
from litlab.models.image import ImageClassifier
from litlab.models.regression import PolynomialRegression
from litlab.models.seed_cnn import SeedCNN

__all__ = [
    "BinaryClassifier",
    "ImageClassifier",
    "LitTask",
    "MulticlassClassifier",
    "PolynomialRegression",
    "SeedCNN",
]
