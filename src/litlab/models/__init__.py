from litlab.models.base import LitTask
from litlab.models.classification import BinaryClassifier
from litlab.models.mnist_cnn import MNISTClassifier
from litlab.models.regression import PolynomialRegression
from litlab.models.seed_cnn import SeedCNN

__all__ = ["BinaryClassifier", "LitTask", "MNISTClassifier", "PolynomialRegression", "SeedCNN"]
