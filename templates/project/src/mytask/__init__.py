"""mytask: a data module (``mytask.data``) and a task (``mytask.model``) trained by litlab."""
