"""A W&B project's address: "entity/project", or a W&B page's URL pasted from a browser."""
from __future__ import annotations

from runsync.backend.base import ProjectAddress
from runsync.errors import ConfigError

TRACKER = "wandb"

# First path parts of W&B app pages that are not an entity's (an entity can't take these names).
_APP_ROUTES = frozenset({"site", "home", "settings", "login", "signup", "logout", "authorize", "registry", "orgs",
                         "org", "admin", "subscriptions", "pricing", "support", "create-team", "graphql", "api"})


def parse_project_path(path: str) -> tuple[str, str]:
    """Split "entity/project", or a W&B page's URL pasted from a browser (`https://wandb.ai/team/proj/runs/abc`),
    into (entity, project). An implicit entity is a trap: a bare project name is refused."""
    text = path.strip()
    if text.lower().startswith(("http://", "https://")):
        return _project_of_url(text)
    parts = text.strip("/").split("/")
    if len(parts) != 2 or not all(parts):
        raise ConfigError(f"project must be ENTITY/PROJECT, got {path!r}",
                          hint="or a W&B page's address, https://HOST/ENTITY/PROJECT/..." if len(parts) > 2 else None)
    return parts[0], parts[1]


def project_address(path: str) -> ProjectAddress:
    """`parse_project_path` as the tracker-neutral ProjectAddress."""
    entity, project = parse_project_path(path)
    return ProjectAddress(TRACKER, entity, project)


def _project_of_url(url: str) -> tuple[str, str]:
    """The project a W&B app URL is in: its first two path parts (the app's pages all sit under them)."""
    from urllib.parse import unquote, urlsplit

    parts = [unquote(part) for part in urlsplit(url).path.split("/") if part]
    if len(parts) < 2:
        raise ConfigError(f"{url} names no project: a W&B page's address has ENTITY/PROJECT after the host "
                          "(https://wandb.ai/ENTITY/PROJECT/...)")
    if parts[0].lower() in _APP_ROUTES:
        raise ConfigError(f"{url} is not a project's page: give ENTITY/PROJECT, or the address of a page of "
                          "the project (https://wandb.ai/ENTITY/PROJECT/...)")
    if parts[1] == "projects" and len(parts) == 2:
        raise ConfigError(f"{url} lists the projects of {parts[0]}: give one, {parts[0]}/PROJECT")
    return parts[0], parts[1]
