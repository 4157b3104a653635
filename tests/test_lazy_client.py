"""The client a tracker's connection makes once, on first use or on a thread ahead of it (backend/lazy.py)."""
from __future__ import annotations

import threading
import time

import pytest

from runsync.backend.lazy import LazyClient


def test_made_once_however_many_threads_ask() -> None:
    made: list[int] = []

    def make() -> object:
        time.sleep(0.05)  # long enough for every thread to be waiting
        made.append(1)
        return object()

    client: LazyClient[object] = LazyClient(make)
    client.start("test-lazy")
    got: list[object] = []
    threads = [threading.Thread(target=lambda: got.append(client.get())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 1
    assert len({id(g) for g in got}) == 1 and client.made is got[0]


def test_a_failed_start_is_raised_by_the_first_use_then_tried_again() -> None:
    answers = iter([RuntimeError("refused: key 'k-1' not taken"), "client"])

    def make() -> str:
        answer = next(answers)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    client: LazyClient[str] = LazyClient(make)
    client.start("test-lazy-fail")
    deadline = time.monotonic() + 5
    while client._early_error is None and time.monotonic() < deadline:  # the thread has met the failure
        time.sleep(0.01)
    assert client.made is None
    with pytest.raises(RuntimeError, match="refused"):
        client.get()
    assert client.get() == "client"  # the failure is handed over once; the next use connects itself
    assert client.made == "client"
