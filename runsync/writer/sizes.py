"""A write kept within the service's size limits before it is sent (issue 20 §5): a run whose config would grow
past the limit, or whose write alone is a request over the body limit, is refused with its reason; the others are
grouped into requests whose bodies are within the limit."""
from __future__ import annotations

from typing import Any, Protocol

from runsync.fields.limits import config_bytes, config_too_large, max_config_bytes, request_too_large
from runsync.model import RunRecord
from runsync.writer.patches import config_after

Write = tuple[str, dict[str, Any]]  # (storage id, the upsert fields), as the backend takes them


class MeasuresWrites(Protocol):
    def write_request_bytes(self, writes: list[Write]) -> int:
        """The body of the request `upsert_runs(writes)` sends, in bytes."""
        ...


def size_refusal(backend: MeasuresWrites, record: RunRecord, fields: dict[str, Any],
                 body_limit: int | None) -> tuple[int, str | None]:
    """(the run's write request alone in bytes, why the service would refuse it for its size or None).

    The plan refused configs over the limit already; asked again here, as the config may have grown since."""
    config_limit = max_config_bytes()
    if config_limit and "raw_config" in fields:
        config_size = config_bytes(config_after(record, fields))
        if config_size > config_limit:
            return 0, f"not sent: {config_too_large(config_size, config_limit)}"
    if not body_limit:
        return 0, None
    size = backend.write_request_bytes([(record.storage_id, fields)])
    if size > body_limit:
        return size, f"not sent: {request_too_large(size, body_limit)}"
    return size, None


def by_body_limit(backend: MeasuresWrites, writes: list[Write], sizes: list[int],
                  limit: int | None) -> list[list[int]]:
    """The writes' indices in order, grouped into requests whose bodies are within `limit` bytes.

    Grouped by the sum of each write's request alone (`sizes`), which is more than they take together (each alone
    carries the whole envelope and a longer document); a group is then measured whole, and halved in the unlikely
    case it is over."""
    if not writes:
        return []
    if not limit:
        return [list(range(len(writes)))]
    groups: list[list[int]] = [[]]
    total = 0
    for index, size in enumerate(sizes):
        if groups[-1] and total + size > limit:
            groups.append([])
            total = 0
        groups[-1].append(index)
        total += size
    out: list[list[int]] = []
    while groups:
        group = groups.pop(0)
        if len(group) > 1 and backend.write_request_bytes([writes[i] for i in group]) > limit:
            half = (len(group) + 1) // 2
            groups[:0] = [group[:half], group[half:]]
            continue
        out.append(group)
    return out


__all__ = ["by_body_limit", "size_refusal"]
