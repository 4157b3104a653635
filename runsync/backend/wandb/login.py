"""Where the W&B host and key come from, found the way `wandb.Api()` finds them (never its interactive prompt),
and a quick TCP probe so that "cannot connect" is said at once, not after the client's deadline."""
from __future__ import annotations

import os
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

from runsync.backend.wandb.transport import classic_base_url, classic_key_source
from runsync.errors import BackendError, ConfigError

# A TCP connect to the server before the client's first request: "connection refused" is then said at once,
# not after the client's ~19 s deadline as "the service process is busy".
PROBE_SECONDS = 5.0


def resolve_host(base_url: str | None) -> tuple[str | None, str]:
    """The host `wandb.Api()` will use, and where it comes from: base_url, WANDB_BASE_URL, else the settings
    file's (`wandb login --host`)."""
    if base_url:
        return base_url.rstrip("/"), "given to runsync"
    if os.environ.get("WANDB_BASE_URL"):
        return os.environ["WANDB_BASE_URL"].rstrip("/"), "from WANDB_BASE_URL"
    try:
        from wandb.sdk import wandb_setup

        url: str | None = wandb_setup.singleton().settings.base_url
    except Exception:  # a private path of the newer clients; an older one is asked its own way (transport.py)
        url = classic_base_url()
    origin = "from wandb's settings (`wandb login --host`) or its default"
    return (str(url).rstrip("/") if url else None), origin


def find_credentials(host: str | None, origin: str, api_key: str | None, secrets: list[str],
                     scrub: Callable[[BaseException], str]) -> str | None:
    """Say where the key will come from, or raise ConfigError naming every place looked at.

    Looks where `wandb.Api()` looks, without its interactive prompt (a command must not stop to ask).
    Returns None when the client's own lookup cannot be reproduced: `wandb.Api()` then decides. Every key
    found is added to `secrets` (scrubbed from messages); `origin` says where `host` came from.
    """
    if api_key:
        return "the api_key given to runsync"
    if os.environ.get("WANDB_API_KEY"):
        secrets.append(os.environ["WANDB_API_KEY"])
        return "WANDB_API_KEY"
    if os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return "WANDB_IDENTITY_TOKEN_FILE"
    if not host:
        return None
    try:
        from wandb.sdk import wandb_setup
        from wandb.sdk.lib.wbauth import authenticate, wbnetrc
    except Exception:  # an older client (transport.py): ask it where its key is, so it never prompts
        found = classic_key_source(host)
        if found is None:
            return None
        if found[1]:
            secrets.append(found[1])
            return found[0]
        raise ConfigError(f"no W&B credentials for {host} (host {origin}): WANDB_API_KEY is not "
                          f"set and {found[0]} has no entry for machine {urlsplit(host).hostname}",
                          hint=f"run `wandb login --host {host}` (or set WANDB_API_KEY)") from None
    netrc_path = str(wbnetrc._get_netrc_file_path())
    netloc = urlsplit(host).netloc
    try:
        key = wbnetrc.read_netrc_auth(host=host)
    except ValueError as exc:  # not a URL the client accepts
        raise ConfigError(f"W&B host {host!r} is not usable: {exc}") from None
    except Exception as exc:  # AuthenticationError: an entry whose key has the wrong form
        raise ConfigError(f"the key for machine {netloc} in {netrc_path} is not a W&B API key: "
                          f"{scrub(exc)}", hint=f"run `wandb login --relogin --host {host}`") from None
    if key:
        secrets.append(key)
        return f"{netrc_path} (machine {netloc})"
    try:
        settings = wandb_setup.singleton().settings
        if settings.api_key and str(settings.base_url).rstrip("/") == host:
            secrets.append(settings.api_key)
            return "wandb settings"
        if authenticate.session_credentials(host=host):
            return "this process's wandb login"
    except Exception:
        return None
    raise ConfigError(
        f"no W&B credentials for {host} (host {origin}): WANDB_API_KEY is not set and "
        f"{netrc_path} has no entry for machine {netloc} (where `wandb login` writes it)",
        hint=f"run `wandb login --host {host}` (or set WANDB_API_KEY); "
             "for a local try-out, `runsync demo` needs no account",
    )


def probe(base_url: str) -> None:
    """Raise BackendError("cannot connect to URL: ...") unless a TCP connection to the host opens in time.

    Skipped when a proxy carries the traffic (the sidecar then never connects to the host itself).
    """
    parts = urlsplit(base_url)
    host = parts.hostname
    if not host or parts.scheme not in ("http", "https"):
        return
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return
    import urllib.request

    if os.environ.get("WANDB__PROXIES") or (
        urllib.request.getproxies().get(parts.scheme) and not urllib.request.proxy_bypass(host)
    ):
        return
    try:
        socket.create_connection((host, port), timeout=PROBE_SECONDS).close()
        return
    except socket.gaierror as exc:
        error = BackendError(f"cannot connect to {base_url}: the host name {host} does not resolve "
                             f"({exc.strerror or exc})")
    except TimeoutError:
        error = BackendError(f"cannot connect to {base_url}: no answer from {host}:{port} within {PROBE_SECONDS:g} s")
    except OSError as exc:
        error = BackendError(f"cannot connect to {base_url}: {exc.strerror or exc}",
                             hint="is the server running, and WANDB_BASE_URL right?")
    error.no_retry = True  # type: ignore[attr-defined]
    raise error


# Statuses a W&B API never answers its login check with: the address is some other web server (a UI, a proxy's
# page, a path below the API). 401/403 are the key's; 407/408/429 and 5xx are the way's, not the address's (but
# 501: the server does not do POST). wandb-core retries some (405) until its deadline: those stay "did not answer".
_NOT_AN_API_STATUSES = frozenset(range(300, 500)) - {401, 403, 407, 408, 429} | {501}
# How the clients say an answer was not JSON: wandb-core (Go) and the classic client (Python's json).
_NOT_JSON = ("looking for beginning of value", "Expecting value")


def not_an_api(host: str, origin: str, text: str, status: int | None) -> BackendError | None:
    """The error for a host that answered HTTP but is not a W&B API, or None when the failure looks like W&B's.

    `text`: the client's message (it may hold the whole page, which is never shown); `status`: the answer's.
    """
    import html
    import re

    title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
    page = f', a page titled "{_short(html.unescape(title.group(1)))}"' if title and title.group(1).strip() else ""
    if status in _NOT_AN_API_STATUSES:
        what = f"HTTP {status}{page}"
    elif any(marker in text for marker in _NOT_JSON):
        what = ("it answers with a web page, not JSON" if "<" in text
                else "its answer is not JSON")
    else:
        return None
    setting = {"given to runsync": "base_url", "from WANDB_BASE_URL": "WANDB_BASE_URL"}.get(
        origin, "the host of `wandb login --host`")
    parts = urlsplit(host)
    hints = []
    if parts.path.strip("/"):
        hints.append(f"try the address without the path {parts.path.rstrip('/')}")
    hints.append("W&B's cloud API is https://api.wandb.ai (not the web address https://wandb.ai); a W&B "
                 "server's is the address you log in to it with (`wandb login --host URL`)")
    return BackendError(f"{host}: not a W&B API ({what}); {setting} should be the API address",
                        hint="; ".join(hints))


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"
