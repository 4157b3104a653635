"""Which legacy encoding a non-UTF-8 CSV was saved in, decided from the exported values, never guessed into a write.

Most single-byte code pages decode any byte string, so "decodes without error" is no evidence. The evidence is
the base snapshot: a cell nobody touched still holds its exported text, so the encoding the file was saved in
reads it back. The rule (`choose_encoding`):

1. Evidence. The CSV structure (delimiters, quotes, line ends) is ASCII in every candidate and no multi-byte
   candidate uses those bytes inside a character, so the file is split into cells once. For every row whose id
   is in the base, each exported non-ASCII text of that row (a str value, or one tag) is *checkable* when its
   cell still holds non-ASCII bytes and some candidate can hold the text exactly (an emoji can't: such cells
   are the planner's "encoding can't hold" warnings). A candidate *reproduces* it when the cell, decoded with
   that candidate, contains the text. A text some candidate reproduces is taken as untouched.
2. With untouched texts: a candidate is accepted only if it decodes the whole file and reproduces every one of
   them (none: the cells contradict each other, e.g. rows pasted from two code pages -> refused). Accepted
   candidates that read the whole file alike are one answer; if they differ (only in edited text), the one
   plausible reading wins, else refused. Then every str cell whose ASCII characters show it untouched (the
   exported text's ASCII exactly, non-ASCII where it had non-ASCII, at least one ASCII letter or digit) must
   read back as exported in the chosen encoding, else refused: its neighbours say it was not edited, so a
   different reading means the encoding is wrong (ISO 8859-7 read as cp1253 misreads only `Ά`).
3. Checkable texts, but no candidate reproduces any (an encoding runsync doesn't know) -> refused.
4. No evidence (no base, or none of its non-ASCII text left in the file): only cp932 is read, with a warning,
   and only when it reads as Japanese (plausible text, not mostly half-width katakana): Japanese Excel's "CSV",
   which runsync has always read. Anything else is refused: Russian bytes read as cp1252 are Latin letters,
   Polish ones as cp1257 too, so a plausible-looking reading is no proof, and a 2-way import would write it.

Refused means: save the CSV as "CSV UTF-8".
"""
from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

# Windows code pages first: on a tie, the earlier one names the reading.
SINGLE_BYTE = ("cp1252", "cp1250", "cp1251", "cp1253", "cp1254", "cp1257", "mac_roman", "iso8859-2", "latin-1")
MULTI_BYTE = ("cp932", "gbk", "big5", "cp949")
CANDIDATES = ("cp932", *SINGLE_BYTE, "gbk", "big5", "cp949")
NAMES = {"cp932": "cp932 (Shift-JIS, Japanese Excel's CSV)", "cp1252": "cp1252 (Western Windows)",
         "cp1250": "cp1250 (Central European Windows)", "cp1251": "cp1251 (Cyrillic Windows)",
         "cp1253": "cp1253 (Greek Windows)", "cp1254": "cp1254 (Turkish Windows)",
         "cp1257": "cp1257 (Baltic Windows)", "mac_roman": "Mac Roman", "iso8859-2": "ISO 8859-2",
         "latin-1": "Latin-1", "gbk": "GBK (Chinese)", "big5": "Big5 (Chinese)", "cp949": "cp949 (Korean)"}

ADVICE = 'save the CSV as "CSV UTF-8" (UTF-8) and import that'


@dataclass
class Decision:
    encoding: str | None  # None: can't be decided
    text: str | None
    reason: str  # why, for a warning or the error
    evidence: bool  # decided (or refused) by exported values
    warn: bool = True  # say which encoding was read (False: the exported values alone decided it)


def decode_all(data: bytes) -> dict[str, str]:
    out = {}
    for encoding in CANDIDATES:
        try:
            out[encoding] = data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return out


def _script(ch: str) -> str:
    cp = ord(ch)
    if cp < 0x250 or 0x1E00 <= cp < 0x1F00:
        return "latin"
    if 0x370 <= cp < 0x400 or 0x1F00 <= cp < 0x2000:
        return "greek"
    if 0x400 <= cp < 0x530:
        return "cyrillic"
    if 0x2E80 <= cp < 0xA000 or 0xAC00 <= cp < 0xD7B0 or 0xF900 <= cp < 0xFB00 or 0xFF00 <= cp < 0xFFF0 \
            or 0x1100 <= cp < 0x1200:
        return "cjk"
    return "other"


WORD = re.compile(r"\w+")


def plausible(text: str) -> bool:
    """Text a person could have typed: no control, unassigned or private-use characters, no word mixing
    alphabets (`cr鑪e`, `crиme`), no lower-case letter followed by a non-ASCII capital inside a word (`crËme`)."""
    for ch in text:
        if not ch.isascii() and unicodedata.category(ch) in ("Cc", "Co", "Cn", "Cs") or ch == "\ufffd":
            return False
        if ch.isascii() and ord(ch) < 32 and ch not in "\t\r\n":
            return False
    for word in WORD.findall(text):
        if word.isascii():
            continue
        letters = [c for c in word if unicodedata.category(c) in ("Lu", "Ll", "Lt", "Lo")]
        if len({_script(c) for c in letters}) > 1:
            return False
        for a, b in zip(letters, letters[1:], strict=False):  # neighbours
            if a.islower() and b.isupper() and not b.isascii():
                return False
    return True


def _reads_as_japanese(text: str) -> bool:
    """cp932 that is Japanese: plausible, and not mostly half-width katakana (how GBK/Big5 text reads in cp932)."""
    wide = [c for c in text if not c.isascii()]
    half = sum(1 for c in wide if 0xFF61 <= ord(c) <= 0xFF9F)
    return plausible(text) and half * 2 < len(wide)


def _split(data: bytes) -> list[list[bytes]]:
    """The cells as bytes (Latin-1 keeps every byte; the CSV structure is ASCII in every candidate)."""
    text = data.decode("latin-1")
    first = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first.count)
    rows = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)
    try:
        return [[c.encode("latin-1") for c in row] for row in rows]
    except csv.Error:
        return []


def _holds(text: str, encoding: str) -> bool:
    try:
        return text.encode(encoding).decode(encoding) == text
    except UnicodeError:
        return False


SKELETON_BYTES = re.compile(rb"[\x80-\xff]+")
SKELETON_TEXT = re.compile(r"[^\x00-\x7f]+")


def _looks_untouched(cell: bytes, value: Any) -> bool:
    """A str cell whose ASCII characters are exactly the exported text's, with non-ASCII where it had them,
    and at least one ASCII letter or digit to show it: its ASCII neighbours say nobody edited it."""
    if not isinstance(value, str):
        return False
    skeleton = SKELETON_TEXT.sub("\x00", value).encode("ascii")
    if not any(chr(b).isalnum() for b in skeleton):
        return False
    got = SKELETON_BYTES.sub(b"\x00", cell)
    return got in (skeleton, b"'" + skeleton)  # the formula guard's ' is ASCII


@dataclass
class Evidence:
    checkable: set = field(default_factory=set)  # (row, column, text) still in the file as non-ASCII bytes
    reproduced: dict[str, set] = field(default_factory=dict)  # encoding -> the keys it reads back
    untouched_looking: dict = field(default_factory=dict)  # key -> (row, column) whose ASCII shows no edit


def _evidence(data: bytes, decoded: dict[str, str], base: Mapping[str, Mapping[str, Any]],
              texts_of: Callable[[Any], list[str]], header_name: Callable[[str], str]) -> Evidence:
    """Every exported non-ASCII text still in the file, and which candidates read each back."""
    table = _split(data)
    found = Evidence(reproduced={e: set() for e in decoded})
    if len(table) < 2:
        return found
    holds: dict[str, bool] = {}
    for encoding in decoded:
        columns = {header_name(h.decode(encoding)): i for i, h in enumerate(table[0])}
        if "id" not in columns:
            continue
        id_at = columns["id"]
        for row_no, row in enumerate(table[1:], start=2):
            if id_at >= len(row) or (exported := base.get(row[id_at].decode(encoding).strip())) is None:
                continue
            for column, value in exported.items():
                at = columns.get(column)
                if at is None or at >= len(row) or row[at].isascii():
                    continue  # not in the file, or edited to ASCII (or emptied): no evidence
                cell = None
                for text in texts_of(value):
                    if text not in holds:
                        holds[text] = any(_holds(text, e) for e in CANDIDATES)
                    if not holds[text]:
                        continue  # no candidate can hold it (an emoji): lost in any legacy encoding
                    key = (row_no, column, text)
                    found.checkable.add(key)
                    if _looks_untouched(row[at], value):
                        found.untouched_looking[key] = (row_no, column)
                    cell = row[at].decode(encoding) if cell is None else cell
                    if text in cell:
                        found.reproduced[encoding].add(key)
    return found


def choose_encoding(data: bytes, base: Mapping[str, Mapping[str, Any]] | None,
                    texts_of: Callable[[Any], list[str]], header_name: Callable[[str], str]) -> Decision:
    """The encoding of non-UTF-8 `data` by the rule in this module's docstring."""
    decoded = decode_all(data)
    found = _evidence(data, decoded, base, texts_of, header_name) if base else Evidence()
    untouched = set().union(*found.reproduced.values()) if found.reproduced else set()
    if untouched:
        accepted = [e for e in decoded if found.reproduced[e] == untouched]
        if not accepted:
            return Decision(None, None, "no single encoding reproduces every untouched exported value "
                                        f"({len(untouched)} checked)", True)
        readings = {decoded[e] for e in accepted}
        if len(readings) == 1:
            choice, warn = accepted[0], False
        else:
            fitting = [e for e in accepted if plausible(decoded[e])]
            if len({decoded[e] for e in fitting}) != 1:
                return Decision(None, None, "the exported values fit " + ", ".join(NAMES[e] for e in accepted)
                                + ", which read the edited text differently", True)
            choice, warn = fitting[0], True
        missed = [where for key, where in found.untouched_looking.items() if key not in found.reproduced[choice]]
        if missed:
            row, column = min(missed)
            return Decision(None, None, f"row {row}, column {column!r} looks untouched but doesn't read back as "
                                        f"exported in {NAMES[choice]}, the best fit", True)
        return Decision(choice, decoded[choice], "reproduces the exported values", True, warn=warn)
    if found.checkable:
        return Decision(None, None, f"no known encoding reproduces the exported text still in the file "
                                    f"({len(found.checkable)} value(s))", True)
    if "cp932" in decoded and _reads_as_japanese(decoded["cp932"]):
        return Decision("cp932", decoded["cp932"], "reads as Japanese", False)
    return Decision(None, None, "no exported values to tell its encoding by", False)
