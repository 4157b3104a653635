"""Rewrite the sample sheets from the demo project: python sample_sheets/regenerate.py"""
from pathlib import Path

from runsync.demo import write_sample_sheets

if __name__ == "__main__":
    for path in write_sample_sheets(Path(__file__).parent):
        print(path)
