"""Weights & Biases without surprises: offline on its own, resumable, no secret recorded."""

from __future__ import annotations

import functools
import logging
import os
import platform
import re
import shlex
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from hydra.experimental.callback import Callback
from omegaconf import OmegaConf

import litlab

REDACTED = "<redacted>"
# Whole words of a name (``hf_token``, ``api_key``; not ``max_tokens`` or ``monkey``) ...
_SECRET_WORDS = {"key", "apikey", "token", "secret", "password", "passwd", "credentials"}
# ... or anywhere in it (``dbpassword``, ``client_secret_id``).
_SECRET_PARTS = ("password", "passwd", "secret")
_OFFLINE = ("offline", "dryrun")
# ``scheme://user:password@host``: the password, up to the ``@``. Hydra's sweeper escapes the
# colons of a grid's overrides (``postgresql\://bob\:pw@host``): those too.
_URL_PASSWORD = re.compile(r"([A-Za-z][\w+.-]*\\?://[^\s/:@'\"\\]*\\?:)([^\s@/'\"]+)(?=@)")
# ``db.password=hunter2`` inside a longer text (a command line, Hydra's override_dirname).
_KEY_VALUE = re.compile(r"([\w.+~/-]+)=([^\s,'\"]+)")


def is_secret(name: str) -> bool:
    """``WANDB_API_KEY``, ``hf_token``, ``dbPassword``: a word of the name says it is a secret.

    Whole words only for key and token, so ``max_tokens`` or ``monkey`` stay visible.
    """
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", str(name)).lower()
    words = re.split(r"[^a-z0-9]+", spaced)
    return any(w in _SECRET_WORDS for w in words) or any(p in spaced for p in _SECRET_PARTS)


def _secret_values() -> list[str]:
    return [v for k, v in os.environ.items() if is_secret(k) and len(v) >= 8]


def redact_text(text: str, _secrets: list[str] | None = None) -> str:
    """``text`` with URL passwords, ``<secret key>=value`` pairs and environment secrets hidden."""
    secrets = _secret_values() if _secrets is None else _secrets
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    text = _URL_PASSWORD.sub(lambda m: m.group(1) + REDACTED, text)
    return _KEY_VALUE.sub(
        lambda m: f"{m.group(1)}={REDACTED}" if is_secret(_last_name(m.group(1))) else m.group(0),
        text,
    )


def _last_name(key: str) -> str:
    return key.lstrip("+~").split(".")[-1]


def redact(value: Any, _secrets: list[str] | None = None) -> Any:
    """A copy of ``value`` with secret-looking keys and any secret from the environment hidden."""
    secrets = _secret_values() if _secrets is None else _secrets
    if isinstance(value, dict):
        return {
            k: REDACTED if is_secret(k) and isinstance(v, str) and v else redact(v, secrets)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v, secrets) for v in value]
    if isinstance(value, str):
        return redact_text(value, secrets)
    return value


def redact_overrides(overrides: list[str]) -> list[str]:
    """``+db.password=hunter2`` -> ``+db.password=<redacted>``; URL passwords masked too."""
    out = []
    for item in overrides:
        key, eq, _ = item.partition("=")
        out.append(f"{key}={REDACTED}" if eq and is_secret(_last_name(key)) else item)
    return redact(out)


def overrides() -> list[str]:
    """The command-line overrides of this run, as Hydra parsed them (secrets hidden)."""
    from hydra.core.hydra_config import HydraConfig

    try:
        return redact_overrides(list(HydraConfig.get().overrides.task))
    except Exception:  # no Hydra app around (a config built by hand)
        return []


_typed_command: list[str] | None = None


def set_command(argv: list[str]) -> None:
    """The command the user typed, for a process that runs on its behalf (a SLURM job)."""
    global _typed_command
    _typed_command = list(argv)


def command_line(argv: list[str] | None = None) -> list[str]:
    """The command that started this run, program name first, with its secrets hidden."""
    argv = list(argv if argv is not None else (_typed_command or sys.argv))
    if not argv:
        return []
    prog = [Path(argv[0]).name]
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if prog == ["__main__.py"] and spec:  # python -m litlab.sweep
        prog = ["python", "-m", spec.name.removesuffix(".__main__")]
    return [*prog, *redact_overrides(argv[1:])]


def shell_command(argv: list[str] | None = None) -> str:
    return shlex.join(command_line(argv))


class RedactFilter(logging.Filter):
    """Hydra prints each job's overrides (``#0 : db.password=...``): hide the secrets first."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact_text(message)
        if clean != message:
            record.msg, record.args = clean, ()
        return True


class RedactHydraFiles(Callback):
    """Hydra saves the command line as typed in ``.hydra/`` and ``multirun.yaml``; each job
    rewrites those files with the secrets hidden as soon as it starts (registered in
    configs/hydra/default.yaml)."""

    def on_job_start(self, config, **kwargs: Any) -> None:
        hydra = config.hydra
        if hydra.output_subdir is not None:
            where = Path(hydra.runtime.output_dir) / hydra.output_subdir
            for name in ("config.yaml", "hydra.yaml", "overrides.yaml"):
                redact_yaml(where / name)
        if str(hydra.mode) == "RunMode.MULTIRUN":
            redact_yaml(Path(hydra.sweep.dir) / "multirun.yaml")

    def on_multirun_end(self, config, **kwargs: Any) -> None:
        redact_yaml(Path(config.hydra.sweep.dir) / "multirun.yaml")


def redact_yaml(path: Path) -> None:
    """Rewrite a saved config with its secrets hidden (interpolations kept as written)."""
    if not path.is_file():
        return
    data = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    clean = redact_overrides(data) if isinstance(data, list) else redact(data)
    if clean != data:
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        OmegaConf.save(OmegaConf.create(clean), tmp)
        os.replace(tmp, path)


# --- wandb mode ------------------------------------------------------------------------------


def _base_url() -> str:
    if os.environ.get("WANDB_BASE_URL"):
        return os.environ["WANDB_BASE_URL"]
    import wandb  # only reached with a key or a netrc file: the run imports wandb anyway

    return str(wandb.Settings().base_url)


def has_api_key() -> bool:
    """A key in ``WANDB_API_KEY``, or the netrc entry ``wandb login`` writes."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    path = Path(os.environ.get("NETRC", Path.home() / ".netrc")).expanduser()
    if not path.is_file():
        return False
    import netrc

    try:
        return netrc.netrc(path).authenticators(urlparse(_base_url()).hostname or "") is not None
    except (netrc.NetrcParseError, OSError):
        return False


@functools.lru_cache(maxsize=4)
def reachable(url: str, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to ``url``'s host opens within ``timeout`` s (DNS included)."""
    parsed = urlparse(url)
    address = (parsed.hostname or "", parsed.port or (80 if parsed.scheme == "http" else 443))
    ok: list[bool] = []

    def connect() -> None:
        try:
            socket.create_connection(address, timeout=timeout).close()
            ok.append(True)
        except OSError:
            pass

    # A thread, because a DNS lookup ignores socket timeouts and can hang for a long time.
    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(ok)


def wandb_mode() -> str:
    """``logger.wandb.mode`` when left to litlab: ``WANDB_MODE`` if set, else online only with a
    key and a server that answers, else offline. Offline never prompts and never waits."""
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if has_api_key() and reachable(_base_url()):
        return "online"
    return "offline"


def is_offline(mode: str | None) -> bool:
    return mode in _OFFLINE


def _new_run_id() -> str:
    import secrets
    import string

    alphabet = string.ascii_lowercase + string.digits  # wandb's own id alphabet
    return "".join(secrets.choice(alphabet) for _ in range(8))


def wandb_init_kwargs(node: dict, previous: dict | None) -> dict:
    """What ``WandbLogger`` gets on top of its config: the run id (the previous one when this run
    resumes another), and wandb's own console chatter off when offline (litlab prints one line)."""
    kwargs: dict[str, Any] = {}
    if not (node.get("id") or node.get("version")):
        kwargs["id"] = (previous or {}).get("id") or _new_run_id()
    # wandb's own metadata holds sys.argv, secrets typed on the command line included (and the
    # git remote, which may carry a token); litlab records the redacted overrides instead.
    settings: dict[str, Any] = {"x_disable_meta": True}
    if is_offline(node.get("mode")):
        settings["silent"] = True
    kwargs["settings"] = {**settings, **(node.get("settings") or {})}
    return kwargs


def wandb_loggers(loggers) -> list:
    from lightning.pytorch.loggers import WandbLogger

    return [lg for lg in loggers if isinstance(lg, WandbLogger)]


def _rank_zero() -> bool:
    from lightning.pytorch.utilities import rank_zero_only  # Lightning only once a run runs

    return rank_zero_only.rank == 0


def log_run_info(loggers, info: dict) -> None:
    """The run's story (git, versions, hardware, overrides) next to its config in wandb."""
    if not _rank_zero():
        return
    for lg in wandb_loggers(loggers):
        lg.experiment.config.update({"litlab": info}, allow_val_change=True)


def finish_wandb(loggers, metrics: dict[str, float], failed: bool) -> dict | None:
    """Final metrics into the run summary, then close the run (Lightning leaves it open, and the
    next run in this process would join it). Returns where the run is, and prints it once."""
    where = None
    if not _rank_zero():
        return None
    for lg in wandb_loggers(loggers):
        run = lg._experiment  # None: wandb was never started (e.g. the config check failed)
        if run is None:
            continue
        if metrics:
            run.summary.update(metrics)
        offline = is_offline(run.settings.mode)
        where = {"id": run.id, "project": run.project, "mode": run.settings.mode}
        run_dir = str(Path(run.dir).parent)  # <run dir>/wandb/offline-run-<time>-<id>
        where["dir" if offline else "url"] = run_dir if offline else run.url
        run.finish(exit_code=1 if failed else 0)
        if offline:
            print(f"wandb: offline run in {run_dir}; upload it with: wandb sync {run_dir}")
        elif run.url:
            print(f"wandb: {run.url}")
    return where


# --- what a run records about itself ------------------------------------------------------------


def _git(*args: str) -> str | None:
    root = Path(litlab.__file__).resolve().parents[2]
    try:
        out = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_info() -> dict:
    """The commit of the code that ran, and whether uncommitted changes ran with it."""
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def versions() -> dict:
    import lightning
    import torch

    out = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "litlab": litlab.__version__,
        "cuda": torch.version.cuda,
    }
    if "wandb" in sys.modules:
        out["wandb"] = sys.modules["wandb"].__version__
    return out


def host_info() -> dict:
    return {"hostname": socket.gethostname(), "platform": platform.platform(), "pid": os.getpid()}


def hardware(trainer) -> dict:
    return {
        "accelerator": type(trainer.accelerator).__name__.removesuffix("Accelerator").lower(),
        "devices": trainer.num_devices,
        "num_nodes": trainer.num_nodes,
        "world_size": trainer.world_size,
        "strategy": type(trainer.strategy).__name__,
        "precision": str(trainer.precision),
    }


def parameter_counts(model) -> dict:
    params = list(model.parameters())
    return {
        "total": sum(p.numel() for p in params),
        "trainable": sum(p.numel() for p in params if p.requires_grad),
    }
