"""The size limits of the tracker's service, kept before anything is sent (issue 20 §5), and how a run config is
measured against its limit.

W&B refuses a run config over 15 MB ("run config cannot exceed 15 MB", HTTP 400; deeppavlov/AutoIntent#202) and
asks for requests under ~10 MB (wandb/wandb#208). Whether its MB is 10**6 or 2**20 bytes is not known: the
smaller, so runsync never sends what the service may refuse. A self-hosted server may differ:
RUNSYNC_MAX_CONFIG_BYTES / RUNSYNC_MAX_REQUEST_BYTES set others (0: no limit).

These are the tracker's capabilities; they belong with the backend's (runsync/backend/) once it describes them.
"""
from __future__ import annotations

import json
import os
from typing import Any

from runsync.errors import ConfigError

MAX_CONFIG_BYTES = 15_000_000
MAX_REQUEST_BYTES = 10_000_000
CONFIG_ENV = "RUNSYNC_MAX_CONFIG_BYTES"
REQUEST_ENV = "RUNSYNC_MAX_REQUEST_BYTES"


def _limit(env: str, default: int) -> int | None:
    text = os.environ.get(env, "").strip()
    if not text:
        return default
    try:
        value = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise ConfigError(f"{env}={text!r}: expected a whole number of bytes (0: no limit)") from None
    if value < 0:
        raise ConfigError(f"{env}={text!r}: expected a whole number of bytes (0: no limit)")
    return value or None


def max_config_bytes() -> int | None:
    """The largest run config the service stores, in bytes (None: no limit)."""
    return _limit(CONFIG_ENV, MAX_CONFIG_BYTES)


def max_request_bytes() -> int | None:
    """The largest request body the service takes, in bytes (None: no limit)."""
    return _limit(REQUEST_ENV, MAX_REQUEST_BYTES)


def config_bytes(raw_config: dict[str, Any]) -> int:
    """A run's stored config (wrapped, as read from W&B) measured as the service does: UTF-8 bytes of its compact
    JSON, the \\uXXXX escapes of control characters included. runsync sends config text in the same form, so
    what it sends is never longer than the config it lands in."""
    text = json.dumps(raw_config, ensure_ascii=False, separators=(",", ":"))
    return len(text.encode("utf-8", "surrogatepass"))


def megabytes(size: int) -> str:
    """A limit as the service's messages write it: "15 MB", "0.02 MB"."""
    return f"{size / 1_000_000:g} MB"


def config_too_large(size: int, limit: int) -> str:
    """Why a write is refused: the run's config would be `size` bytes."""
    return (f"the run's config would be {size:,} bytes, over W&B's limit of {limit:,} bytes "
            f"(it answers \"run config cannot exceed {megabytes(limit)}\")")


def request_too_large(size: int, limit: int) -> str:
    """Why a run's write is not sent: its request alone would be `size` bytes."""
    return f"its write alone is a request of {size:,} bytes, over W&B's limit of {limit:,} bytes per request"
