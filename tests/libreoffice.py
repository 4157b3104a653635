"""Drive a real LibreOffice Calc headless: re-save a sheet, or open it, type into cells and save.

Each soffice gets its own profile directory (so runs can go in parallel and never touch a user's) and a
timeout that kills its whole process group. Editing goes through Python-UNO, which imports only in the
system Python (/usr/bin/python3), not in the test venv, so the UNO part runs as a child script.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pytest

SYSTEM_PYTHON = "/usr/bin/python3"
TIMEOUT = 90  # a cold first start on a busy 2-core CI machine can take several seconds
CSV_FILTER = "Text - txt - csv (StarCalc)"
XLSX_FILTER = "Calc MS Excel 2007 XML"

# CSV filter options (see /work/shared/SPREADSHEETS.md): separator, quote, encoding, first line.
UTF8 = "44,34,76,1"
CP932 = "44,34,60,1"
SEMICOLON_UTF8 = "59,34,76,1"
# Export tokens 7-9: quote all text cells off, (8) unused on export, save cell content as shown.
AS_SHOWN_UTF8 = "44,34,76,1,,0,false,true,true"


def soffice() -> str:
    """The soffice binary; without it a LibreOffice test fails on CI and is skipped elsewhere."""
    path = shutil.which("soffice")
    if path and os.path.exists(SYSTEM_PYTHON):
        return path
    message = "LibreOffice (soffice) and python3-uno are needed: apt-get install libreoffice-calc-nogui python3-uno"
    if os.environ.get("CI"):
        pytest.fail(message + " (CI installs them in .ci/run)")
    pytest.skip(message)


def _profile(work: Path) -> str:
    path = work / f"lo-profile-{uuid.uuid4().hex[:8]}"
    return f"-env:UserInstallation={path.as_uri()}"


def _run(args: Sequence[str], *, cwd: Path | None = None, timeout: float = TIMEOUT,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run in a new process group; on timeout kill the group (soffice forks oosplash + soffice.bin)."""
    proc = subprocess.Popen(list(args), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env=None if env is None else {**os.environ, **env})
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"{args[0]} timed out after {timeout}s\n{out}\n{err}") from None
    if proc.returncode != 0:
        shown = " ".join(a if len(a) < 200 else a[:60] + "..." for a in args)  # not the whole UNO script
        raise AssertionError(f"{shown}: exit {proc.returncode}\n{out}\n{err}")
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def locale_env(locale: str) -> dict[str, str]:
    """The environment of a Calc whose user locale is `locale` ("de_DE"): its own formats and separators.
    Calc takes the locale from LANG/LC_ALL and has its own locale data (the system needs no de_DE locale)."""
    return {"LANG": f"{locale}.UTF-8", "LC_ALL": f"{locale}.UTF-8"}


def convert(sources: Sequence[Path], outdir: Path, convert_to: str, *, infilter: str | None = None,
            locale: str | None = None) -> list[Path]:
    """`soffice --headless --convert-to` every source into `outdir` in one start; the re-saved paths.
    `locale`: the user locale Calc runs in (its profile is new, so it takes the environment's)."""
    outdir.mkdir(parents=True, exist_ok=True)
    args = [soffice(), _profile(outdir.parent), "--headless", "--norestore"]
    if infilter:
        args.append(f"--infilter={infilter}")
    _run([*args, "--convert-to", convert_to, "--outdir", str(outdir), *map(str, sources)],
         env=locale_env(locale) if locale else None)
    ext = convert_to.split(":", 1)[0]
    out = [outdir / f"{Path(s).stem}.{ext}" for s in sources]
    missing = [p for p in out if not p.exists()]
    assert not missing, f"soffice wrote nothing for {missing}"
    return out


@dataclass
class Edit:
    """One cell changed in Calc. `how`: "string" (setString), "value" (a number), "input" (parsed as if
    typed: numbers, TRUE, =formulas), "format" (`value` is a number format code such as 0.00)."""

    column: str  # header text of the column
    run_id: str  # the row is found by the id column
    value: object
    how: str = "string"


@dataclass
class Job:
    """Open `source` (with `in_options` for a CSV), type `edits`, save to `target` (`out_options` for CSV)."""

    source: str
    target: str
    edits: list[Edit] = field(default_factory=list)
    in_options: str | None = None
    out_options: str | None = None


def run_jobs(jobs: Sequence[Job], work: Path) -> None:
    """Do every job in one soffice session driven over UNO (one start, ~1-2 s, for all of them)."""
    pipe = f"runsync{uuid.uuid4().hex[:10]}"
    spec = {"soffice": soffice(), "profile": _profile(work), "pipe": pipe, "timeout": TIMEOUT,
            "jobs": [asdict(j) for j in jobs]}
    _run([SYSTEM_PYTHON, "-c", UNO_SCRIPT, json.dumps(spec)], cwd=work, timeout=TIMEOUT + 30)
    for job in jobs:
        assert Path(job.target).exists(), f"LibreOffice did not write {job.target}"


# Runs in /usr/bin/python3 (where `uno` lives). Kept to the few calls a person's actions map to.
UNO_SCRIPT = r'''
import json, os, signal, subprocess, sys, time, traceback, uno
from com.sun.star.beans import PropertyValue
from pathlib import Path

spec = json.loads(sys.argv[1])
CSV, XLSX = "Text - txt - csv (StarCalc)", "Calc MS Excel 2007 XML"

def props(**kw):
    out = []
    for k, v in kw.items():
        p = PropertyValue(); p.Name = k; p.Value = v; out.append(p)
    return tuple(out)

# soffice stays in this script's process group (the test started the script in a new session), so
# killing that group - here on failure, or by the test on timeout - takes soffice.bin with it.
proc = subprocess.Popen([spec["soffice"], spec["profile"], "--headless", "--invisible", "--norestore",
                         "--nologo", "--accept=pipe,name=%s;urp;StarOffice.ComponentContext" % spec["pipe"]],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    local = uno.getComponentContext()
    resolver = local.ServiceManager.createInstanceWithContext("com.sun.star.bridge.UnoUrlResolver", local)
    deadline = time.time() + spec["timeout"]
    while True:
        try:
            ctx = resolver.resolve("uno:pipe,name=%s;urp;StarOffice.ComponentContext" % spec["pipe"])
            break
        except Exception:
            if time.time() > deadline or proc.poll() is not None:
                raise SystemExit("could not connect to soffice")
            time.sleep(0.1)
    desktop = ctx.ServiceManager.createInstanceWithContext("com.sun.star.frame.Desktop", ctx)
    for job in spec["jobs"]:
        src = Path(job["source"]).resolve()
        load = {"Hidden": True}
        if src.suffix.lower() == ".csv":
            load.update(FilterName=CSV, FilterOptions=job["in_options"] or "44,34,76,1")
        doc = desktop.loadComponentFromURL(src.as_uri(), "_blank", 0, props(**load))
        if doc is None:
            raise SystemExit("could not open %s" % src)
        sheets = doc.Sheets
        sheet = sheets.getByName("runs") if sheets.hasByName("runs") else sheets.getByIndex(0)
        header = {}
        col = 0
        while sheet.getCellByPosition(col, 0).getString():
            header[sheet.getCellByPosition(col, 0).getString()] = col
            col += 1
        id_col = header["id"]
        for edit in job["edits"]:
            row = 1
            while sheet.getCellByPosition(id_col, row).getString() != edit["run_id"]:
                row += 1
                if row > 100000:
                    raise SystemExit("run %s not in the sheet" % edit["run_id"])
            cell = sheet.getCellByPosition(header[edit["column"]], row)
            if edit["how"] == "value":
                cell.setValue(edit["value"])
            elif edit["how"] == "format":  # a number format, as Format > Cells does; the value stays
                formats, locale = doc.NumberFormats, uno.createUnoStruct("com.sun.star.lang.Locale")
                key = formats.queryKey(edit["value"], locale, False)
                cell.NumberFormat = key if key != -1 else formats.addNew(edit["value"], locale)
            elif edit["how"] == "input":
                cell.setFormula(edit["value"])  # parsed like typed input: numbers, TRUE, =formulas
            else:
                cell.setString(edit["value"])
        dst = Path(job["target"]).resolve()
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.suffix.lower() == ".csv":
            store = props(FilterName=CSV, FilterOptions=job["out_options"] or "44,34,76,1")
        else:
            store = props(FilterName=XLSX)
        doc.storeToURL(dst.as_uri(), store)
        doc.close(True)
    try:
        desktop.terminate()
    except Exception:
        pass  # the bridge goes away as soffice exits
    proc.wait(timeout=30)
except BaseException:
    traceback.print_exc()
    sys.stderr.flush()
    os.killpg(0, signal.SIGKILL)
'''
