"""Drive a real headless Chromium: open a page (with a URL fragment), let its scripts run, read back the DOM.

Each Chromium gets its own profile directory and no network features (no component updates, sync or
background fetches); a timeout kills its whole process group (Chromium forks a zygote and renderers).
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import uuid
from html.parser import HTMLParser
from pathlib import Path

import pytest

TIMEOUT = 120  # a cold start and a 5,000-row page on a busy 2-core CI machine
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
         "--disable-default-apps", "--mute-audio")


def chromium() -> str:
    """The chromium binary; without it a browser test fails on CI and is skipped elsewhere."""
    for name in ("chromium", "chromium-browser"):
        if path := shutil.which(name):
            return path
    message = "headless Chromium is needed: apt-get install --no-install-recommends chromium"
    if os.environ.get("CI"):
        pytest.fail(message + " (CI installs it in .ci/run)")
    pytest.skip(message)


def dump_dom(page: Path, fragment: str = "", *, scripts: bool = True) -> str:
    """The page's DOM once it has loaded and its scripts have run, as Chromium serialises it.
    `fragment`: the URL's #part (without the #). No --virtual-time-budget: it would fake the clock scripts read.
    `scripts=False` opens a copy without its <script> elements: Chromium's own switch for that
    (--blink-settings=scriptEnabled=false) also stops --dump-dom, which prints nothing then."""
    if not scripts:
        copy = page.with_name(f"{page.stem}-noscript{page.suffix}")
        copy.write_text(re.sub(r"<script\b.*?</script>", "", page.read_text(encoding="utf-8"), flags=re.S | re.I),
                        encoding="utf-8")
        page = copy
    profile = page.parent / f"chromium-profile-{uuid.uuid4().hex[:8]}"
    url = page.resolve().as_uri() + (f"#{fragment}" if fragment else "")
    args = [chromium(), *FLAGS, f"--user-data-dir={profile}", "--dump-dom", url]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8",
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"chromium timed out after {TIMEOUT}s on {url}\n{err[-2000:]}") from None
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert proc.returncode == 0 and "<html" in out, f"chromium: exit {proc.returncode}\n{err[-2000:]}"
    return out


class Dom(HTMLParser):
    """A dumped DOM: the runs table's rows in order (first cell's text, hidden or not), elements by id, tags."""

    def __init__(self, table_id: str = "runsync-runs") -> None:
        super().__init__()
        self.table_id = table_id
        self.rows: list[tuple[str, bool]] = []  # (run id, hidden) in DOM order
        self.by_id: dict[str, str] = {}  # element id -> its text
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self._open: list[tuple[str, str | None]] = []  # (tag, id) of open elements with text we collect
        self._texts: dict[str, list[str]] = {}
        self._in_table = self._in_body = False
        self._row: list[object] | None = None  # [hidden, first cell's text, cells seen]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        if a.get("id"):
            self._texts[a["id"]] = []
        if tag == "table" and a.get("id") == self.table_id:
            self._in_table = True
        elif self._in_table and tag == "tbody":
            self._in_body = True
        elif self._in_body and tag == "tr":
            self._row = ["hidden" in a, "", 0]
        elif self._row is not None and tag in ("th", "td"):
            self._row[2] += 1
        if tag not in ("br", "input", "meta", "img", "hr", "link"):
            self._open.append((tag, a.get("id")))

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            open_tag, element_id = self._open.pop()
            if element_id is not None:
                self.by_id[element_id] = "".join(self._texts.pop(element_id, []))
            if open_tag == tag:
                break
        if tag == "tr" and self._row is not None:
            self.rows.append((self._row[1].strip(), self._row[0]))
            self._row = None
        elif tag == "tbody":
            self._in_body = False
        elif tag == "table":
            self._in_table = False

    def handle_data(self, data: str) -> None:
        for texts in self._texts.values():
            texts.append(data)
        if self._row is not None and self._row[2] == 1 and not self._row[1]:
            self._row[1] = data  # the run id: the first text of the row's first cell (its link)


def parse_dom(text: str) -> Dom:
    dom = Dom()
    dom.feed(text)
    dom.close()
    return dom
