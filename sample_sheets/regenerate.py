"""Rewrite the sample sheets from the demo project: python sample_sheets/regenerate.py

Also the plan report of the edited sheet (`runsync import runs-edited.xlsx --dry-run --report ...`), as
plan-report.xlsx and plan-report.html; their run links point at the demo's throwaway sandbox.
"""
import os
import tempfile
from pathlib import Path

import runsync
from runsync.demo import demo_environment, write_sample_sheets
from runsync.report import write_report

REPORTS = ("plan-report.xlsx", "plan-report.html")


def write_plan_reports(directory: Path) -> list[Path]:
    here = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="runsync-samples-") as tmp, demo_environment(Path(tmp)):
        os.chdir(directory)  # the reports name the sheet as a person would: runs-edited.xlsx
        try:
            plan = runsync.plan("runs-edited.xlsx")
            for name in REPORTS:
                write_report(plan, name, sheet=runsync.read("runs-edited.xlsx"))
        finally:
            os.chdir(here)
    return [directory / name for name in REPORTS]


if __name__ == "__main__":
    folder = Path(__file__).resolve().parent
    for path in [*write_sample_sheets(folder), *write_plan_reports(folder)]:
        print(path)
