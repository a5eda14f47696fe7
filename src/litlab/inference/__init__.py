"""Using a trained run: ``litlab.load`` (loading.py), ``litlab-predict`` (predict.py, with the
readers of users' data in inputs.py) and ``litlab-export`` (export.py)."""
