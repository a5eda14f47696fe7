"""Code that the notebooks in ``notebooks/`` teach with, kept importable and tested."""
