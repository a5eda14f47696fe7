"""Secrets never reach a file: hidden in configs, command lines, log lines and Hydra's files."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

import yaml
from hydra.experimental.callback import Callback
from omegaconf import OmegaConf
from typing_extensions import override

from litlab.files import write_text

REDACTED = "<redacted>"
# Whole words of a name (``hf_token``, ``api_key``; not ``max_tokens`` or ``monkey``) ...
_SECRET_WORDS = {"key", "apikey", "token", "secret", "password", "passwd", "credentials"}
# ... or anywhere in it (``dbpassword``, ``client_secret_id``).
_SECRET_PARTS = ("password", "passwd", "secret")
# ``scheme://user:password@host``: the password, up to the ``@``. Hydra's sweeper escapes the
# colons of a grid's overrides (``postgresql\://bob\:pw@host``): those too. Both patterns start
# only where a name starts (the look-behind) and never give back what ``++`` took: linear in the
# text, where retrying from every letter of a long name was quadratic (8 s for 16k characters).
URL_PASSWORD = re.compile(r"(?<![\w+.-])([\w+.-]++\\?://[^\s/:@'\"\\]*\\?:)([^\s@/'\"]++)(?=@)")
# ``db.password=hunter2`` inside a longer text (a command line, Hydra's override_dirname).
_KEY_VALUE = re.compile(r"(?<![\w.+~/-])([\w.+~/-]++)=([^\s,'\"]+)")


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
    text = URL_PASSWORD.sub(lambda m: m.group(1) + REDACTED, text)
    return _KEY_VALUE.sub(
        lambda m: f"{m.group(1)}={REDACTED}" if is_secret(_last_name(m.group(1))) else m.group(0),
        text,
    )


def _last_name(key: str) -> str:
    return key.lstrip("+~").split(".")[-1]


class Public(dict):
    """A mapping known to hold no secret, which ``redact`` copies as it is: the installed
    packages and their versions, where a package may be named like a secret
    (``secretstorage``, which keyring installs on Linux) and its version is still no secret."""


def redact(value: Any, _secrets: list[str] | None = None) -> Any:
    """A copy of ``value`` with secret-looking keys and any secret from the environment hidden."""
    secrets = _secret_values() if _secrets is None else _secrets
    if isinstance(value, Public):
        return Public(value)
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


class RedactFilter(logging.Filter):
    """Hydra prints each job's overrides (``#0 : db.password=...``): hide the secrets first."""

    @override
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

    @override
    def on_job_start(self, config, **kwargs: Any) -> None:
        hydra = config.hydra
        if hydra.output_subdir is not None:
            where = Path(hydra.runtime.output_dir) / hydra.output_subdir
            for name in ("config.yaml", "hydra.yaml", "overrides.yaml"):
                redact_yaml(where / name)
        if str(hydra.mode) == "RunMode.MULTIRUN":
            redact_yaml(Path(hydra.sweep.dir) / "multirun.yaml")

    @override
    def on_multirun_end(self, config, **kwargs: Any) -> None:
        redact_yaml(Path(config.hydra.sweep.dir) / "multirun.yaml")


def redact_yaml(path: Path) -> None:
    """Rewrite a saved config with its secrets hidden (interpolations kept as written).

    libyaml reads it first, ~10x faster than OmegaConf: a file with nothing to hide (most)
    is left as it is. It reads every scalar OmegaConf reads as a string as a string too (and
    some that OmegaConf makes floats), so it misses no secret OmegaConf's reading would find."""
    if not path.is_file():
        return
    quick = yaml.load(path.read_text(encoding="utf-8"), Loader=_FAST_LOADER)
    if _redacted(quick) == quick:
        return
    data = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    clean = _redacted(data)
    if clean != data:
        write_text(path, OmegaConf.to_yaml(OmegaConf.create(clean)))


_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # PyYAML without libyaml: no C


def _redacted(data):
    return redact_overrides(data) if isinstance(data, list) else redact(data)
