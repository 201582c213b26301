"""The `report` stage: this project's offline page, outputs/report.html (built by harness/report/)."""

from __future__ import annotations

from pathlib import Path

from ..files import REPORT
from ..params import Params
from ..report.build import write_report


def run(params: Params) -> None:
    write_report([Path(".")], REPORT)
