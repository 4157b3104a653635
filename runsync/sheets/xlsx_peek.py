"""The project an XLSX export records, read in milliseconds from the start of its metadata sheet, so that a plan
can start connecting to the tracker before the sheet is read (importing the client takes ~1 s). Only a guess:
the plan reads the metadata properly and uses this only to choose which client to start."""
from __future__ import annotations

import json
import re
import zipfile
from xml.sax.saxutils import unescape

from runsync.sheets.meta import FORMAT_MARKER
from runsync.sheets.xlsx_fast import sheet_paths
from runsync.sheets.xlsx_text import META_SHEET

HEAD_BYTES = 64 * 1024  # the metadata header row comes first; runsync writes it as inline text


def peek_project(path: str) -> str | None:
    """The `project` in the metadata header of runsync's own XLSX export; None when it can't be told quickly
    (not an XLSX, no metadata sheet, a re-saved file whose text moved to the shared strings)."""
    try:
        with zipfile.ZipFile(path) as zf:
            member = sheet_paths(zf).get(META_SHEET)
            if member is None:
                return None
            with zf.open(member) as fh:
                head = fh.read(HEAD_BYTES).decode("utf-8", "replace")
    except (OSError, zipfile.BadZipFile, KeyError, ValueError):
        return None
    first_row = head.split("</row>", 1)[0]
    if FORMAT_MARKER not in first_row:
        return None
    text = unescape("".join(re.findall(r"<t(?:\s[^>]*)?>([^<]*)</t>", first_row)), {"&quot;": '"', "&apos;": "'"})
    found = re.search(r'"project":\s*("(?:[^"\\]|\\.)*")', text)
    if found is None:
        return None
    try:
        project = json.loads(found.group(1))
    except ValueError:
        return None
    return project if isinstance(project, str) and project else None
