"""`runsync sandbox`: seed and serve the W&B-compatible sandbox (for tests, the demo, benchmarks)."""
from __future__ import annotations

import ipaddress
import os
import signal
import sys
import tempfile
import threading
from typing import Any

import click


@click.group()
def sandbox() -> None:
    """A local W&B-compatible server that the unmodified wandb client can talk to.

    \b
      runsync sandbox seed --db sb.db --entity e --project p --runs 1000
      rm -f sb.env; runsync sandbox serve --db sb.db --env-file sb.env &
      until [ -s sb.env ]; do sleep 0.2; done; . ./sb.env   # WANDB_BASE_URL, WANDB_API_KEY
      runsync export e/p -o runs.xlsx
      kill %1                                   # stops it (and removes sb.env)

    `serve` keeps running, so `eval "$(runsync sandbox serve ...)"` would wait for it forever: in a
    terminal, copy the two export lines it prints instead.
    """


@sandbox.command()
@click.option("--db", required=True, type=click.Path(dir_okay=False), help="SQLite file to fill.")
@click.option("--entity", default="e", show_default=True)
@click.option("--project", default="p", show_default=True)
@click.option("--runs", default=100, show_default=True, type=click.IntRange(min=0))
@click.option("--seed", default=0, show_default=True, type=int, help="Same seed, same runs.")
@click.option("--demo", is_flag=True, help="Create the demo project (demo/image-classification) instead.")
def seed(db: str, entity: str, project: str, runs: int, seed: int, demo: bool) -> None:
    """Add deterministic, realistic runs to a sandbox database.

    \b
      runsync sandbox seed --db sb.db --entity e --project p --runs 50000 --seed 1
      runsync sandbox seed --db sb.db --demo
    """
    from runsync.sandbox import seed_demo, seed_project

    if demo:
        entity, project = seed_demo(db)
        click.echo(f"seeded {entity}/{project}", err=True)
        return
    try:
        ids = seed_project(db, entity, project, runs=runs, seed=seed)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"seeded {len(ids)} runs into {entity}/{project}", err=True)


def _write_private(path: str, text: str) -> None:
    """Write `text` readable by the owner only, appearing whole (a temp file renamed): it holds the API key."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", dir=directory)  # mode 0600
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@sandbox.command()
@click.option("--db", required=True, type=click.Path(dir_okay=False), help="SQLite file (created if missing).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=0, show_default=True, type=click.IntRange(0, 65535), help="0 picks a free port.")
@click.option("--api-key", default=None, help="Key clients must send (40+ chars); generated when omitted.")
@click.option("--entity", default="e", show_default=True, help="The viewer's default entity.")
@click.option("--latency-ms", default=0.0, type=click.FloatRange(min=0), help="Delay every GraphQL request.")
@click.option("--error-rate", default=0.0, type=click.FloatRange(0, 1), help="Share of requests answered 500.")
@click.option("--rate-limit", default=None, type=click.FloatRange(min=0), help="Requests/s before 429s.")
@click.option("--hang-rate", default=0.0, type=click.FloatRange(0, 1), help="Share of requests never answered.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed for the fault draws.")
@click.option("--max-page-size", default=1000, show_default=True, type=click.IntRange(min=0),
              help="Runs per page beyond which a listing gets HTTP 504, as from the service's gateway (0: no limit).")
@click.option("--overlap-rate", default=0.0, type=click.FloatRange(0, 1),
              help="Share of follow-up pages that repeat or skip a few runs (a live table re-sorted while paging).")
@click.option("--retry-after", is_flag=True,
              help="Send Retry-After with 429s (W&B's carry RateLimit-* headers and may not).")
@click.option("--allow-remote", is_flag=True, help="Allow a non-loopback --host (exposes the sandbox).")
@click.option("--lenient-filters", is_flag=True,
              help="Accept filters the real W&B answers with HTTP 500 (tags + $all, a bare list on tags, "
                   "non-RE2 $regex); by default they get HTTP 500 here too.")
@click.option("--config-merge", type=click.Choice(["merge", "replace"]), default="merge", show_default=True,
              help="How a config sent in upsertBucket lands: merged into the stored one (W&B today) or replacing "
                   "it (older self-hosted servers).")
@click.option("--lost-answer-rate", default=0.0, type=click.FloatRange(0, 1),
              help="Share of writes applied and then answered HTTP 502 (the answer lost).")
@click.option("--live-process-interval", default=None, type=click.FloatRange(min=0, min_open=True),
              help="Seconds: every running run has a simulated process re-sending its stale config this often.")
@click.option("--read-ms-per-run", default=0.0, type=click.FloatRange(min=0),
              help="Server time each run a page or a run read returns costs (a page of 1,000 runs: 20x one of 50).")
@click.option("--quota-per-s", default=None, type=click.FloatRange(min=0, min_open=True),
              help="Per-project quota: this many requests (or --quota-unit mutations) a second before HTTP 429 "
                   "(default: none).")
@click.option("--quota-unit", type=click.Choice(["requests", "mutations"]), default="requests", show_default=True,
              help="What --quota-per-s counts: requests, or the upsertBuckets they execute.")
@click.option("--max-config-bytes", default=15_000_000, show_default=True, type=click.IntRange(min=0),
              help="A run config over this is HTTP 400 \"run config cannot exceed ... MB\", as W&B's (0: no limit).")
@click.option("--max-body-bytes", default=10_000_000, show_default=True, type=click.IntRange(min=0),
              help="A /graphql request body over this is HTTP 413 (0: no limit).")
@click.option("--env-file", type=click.Path(dir_okay=False),
              help="Also write the export lines to this file (mode 0600) once serving; removed on exit.")
def serve(db: str, host: str, port: int, api_key: str | None, entity: str, latency_ms: float,
          error_rate: float, rate_limit: float | None, hang_rate: float, seed: int, lenient_filters: bool,
          allow_remote: bool, config_merge: str, lost_answer_rate: float, live_process_interval: float | None,
          env_file: str | None, read_ms_per_run: float, quota_per_s: float | None, quota_unit: str,
          max_config_bytes: int, max_body_bytes: int, **paging: Any) -> None:
    """Serve a sandbox database until interrupted (Ctrl-C or SIGTERM).

    Prints the environment for the wandb client first (and writes it to --env-file), then serves:

    \b
      export WANDB_BASE_URL=http://127.0.0.1:PORT
      export WANDB_API_KEY=KEY

    \b
    In a script, serve in the background and source the file once it appears:
      rm -f sb.env; runsync sandbox serve --db sb.db --env-file sb.env &
      until [ -s sb.env ]; do sleep 0.2; done; . ./sb.env

    Faults can be changed while it runs: POST /_sandbox/faults with JSON
    {"latency_ms", "error_rate", "rate_limit", "hang_rate", "lost_answer_rate", "max_page_size", "overlap_rate",
    "retry_after", "max_mutations", "write_ms", "read_ms_per_run", "gateway_timeout_s", "quota_per_s",
    "quota_window_s", "quota_unit", "max_config_bytes", "max_body_bytes"}; counters at GET /_sandbox/stats.
    Both need the same API key as /graphql.
    """
    if not _is_loopback(host) and not allow_remote:
        raise click.UsageError(f"--host {host} is not a loopback address; add --allow-remote to serve it")
    if api_key is not None and len(api_key) < 40:
        raise click.BadParameter("must be at least 40 characters", param_hint="--api-key")
    from runsync.sandbox import start

    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    sb = start(db=db, api_key=api_key, host=host, port=port, latency_ms=latency_ms,
               error_rate=error_rate, rate_limit=rate_limit or None, hang_rate=hang_rate,
               seed=seed, entity=entity, strict_filters=not lenient_filters, config_merge=config_merge,
               lost_answer_rate=lost_answer_rate, live_process_interval=live_process_interval,
               read_ms_per_run=read_ms_per_run, quota_per_s=quota_per_s, quota_unit=quota_unit,
               max_config_bytes=max_config_bytes or None, max_body_bytes=max_body_bytes or None, **paging)
    lines = f"export WANDB_BASE_URL={sb.url}\nexport WANDB_API_KEY={sb.api_key}\n"
    try:
        # The only places the key is ever shown: handing it to the user is the point.
        if env_file:
            _write_private(env_file, lines)
        sys.stdout.write(lines)
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
    finally:
        if env_file and os.path.exists(env_file):
            os.unlink(env_file)
        sb.stop()
        for s, handler in previous.items():
            signal.signal(s, handler)
