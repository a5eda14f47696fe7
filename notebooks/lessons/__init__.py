"""Code that the notebooks teach with, kept importable (from ``notebooks/``) and tested; not part
of the installed package."""
