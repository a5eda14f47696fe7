"""Where the MNIST CNN lived before ``litlab.models.image`` took images of any shape.

Checkpoints store ``_target_: litlab.models.MNISTClassifier``: that name stays, as the
``ImageClassifier`` whose defaults are MNIST's (one channel, 28x28, ten classes).
"""

from __future__ import annotations

from litlab.models.image import ImageClassifier, conv_net

MNISTClassifier = ImageClassifier

__all__ = ["MNISTClassifier", "conv_net"]
