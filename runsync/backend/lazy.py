"""A tracker's client, made on first use or on a thread ahead of it: importing a tracker's client takes a while
(wandb ~1 s, mlflow ~2 s), so a plan starts it while the sheet is read. Shared by every tracker's connection."""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class LazyClient(Generic[T]):
    """`make()` once, thread-safe; `start(name)` makes it on a thread. The first `get()` after a failed start
    raises what the thread met (once: a later `get()` tries again)."""

    def __init__(self, make: Callable[[], T]) -> None:
        self._make = make
        self._value: T | None = None
        self._lock = threading.Lock()
        self._early_error: BaseException | None = None

    @property
    def made(self) -> T | None:
        """The client if made already, else None (never makes it)."""
        return self._value

    def get(self) -> T:
        with self._lock:
            if self._value is None:
                early, self._early_error = self._early_error, None
                if early is not None:
                    raise early
                self._value = self._make()
            return self._value

    def start(self, name: str) -> None:
        """Make the client on a daemon thread named `name`; whoever uses it first waits for it."""
        def make() -> None:
            try:
                self.get()
            except BaseException as exc:  # noqa: BLE001  # handed to whoever uses the connection first
                self._early_error = exc

        threading.Thread(target=make, name=name, daemon=True).start()
