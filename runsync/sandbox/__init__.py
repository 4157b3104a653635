"""A W&B-compatible GraphQL server for tests, the demo and benchmarks, driven by the real wandb client.

    from runsync.sandbox import start, seed_project
    with start(db=":memory:") as sb:
        seed_project(sb.store, "e", "p", runs=100)
        # WANDB_BASE_URL=sb.url WANDB_API_KEY=sb.api_key -> wandb.Api() talks to it
"""
from __future__ import annotations

from .faults import Faults
from .filters import FilterError
from .seed import DEMO_ENTITY, DEMO_PROJECT, seed_demo, seed_project
from .server import Sandbox, generate_api_key, start
from .store import Store

__all__ = [
    "DEMO_ENTITY", "DEMO_PROJECT", "Faults", "FilterError", "Sandbox", "Store",
    "generate_api_key", "seed_demo", "seed_project", "start",
]
