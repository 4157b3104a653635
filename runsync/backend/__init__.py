"""Everything that knows W&B lives in this package."""
from runsync.backend.wandb.client import WandbBackend, parse_project_path

__all__ = ["WandbBackend", "parse_project_path"]
