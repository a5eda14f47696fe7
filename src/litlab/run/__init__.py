"""A run, from a composed config to the files in its run dir: ``fit_and_test`` (litlab-train)
and ``evaluate`` (litlab-eval)."""

__all__ = ["Run", "evaluate", "fit_and_test", "plan"]


def __getattr__(name: str):
    # torch and Lightning load only when a run is asked for, not when litlab.run is imported.
    if name == "evaluate":
        from litlab.run.evaluation import evaluate

        return evaluate
    if name in ("Run", "fit_and_test", "plan"):
        from litlab.run import fit

        return getattr(fit, name)
    raise AttributeError(f"module 'litlab.run' has no attribute {name!r}")
