"""Counted nouns as people write them: `1 run`, `2 runs`, `1,906 runs`. Pure, imports nothing of runsync."""
from __future__ import annotations


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """`n` and the noun, singular for exactly one: counted(1, "conflict") -> "1 conflict"; thousands with commas."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"
