"""The report's bytes: one HTML page that opens from `file://`, loads nothing from the network, runs only
its own script, and shows model text as text, never as markup.

Why each rule:
- Everything is inlined (style, script, data) and a Content-Security-Policy meta tag forbids every load
  (`default-src 'none'`); the one inline script runs because its sha256 is in the policy, so a script
  smuggled in by a model response has no hash and cannot run even if it reached the markup.
- Model text never reaches the markup: it travels as JSON inside non-executing `<script type=...>`
  containers, with `<`, `>`, `&` and U+2028/U+2029 written as JSON escapes (a response holding
  `</script><script>` cannot close its container), and the page's script puts it on screen with
  `textContent` only.
- Each cell's samples are compressed on their own (raw deflate, fixed level, base85) and decoded by the
  browser (`DecompressionStream`) only when the cell is opened: a run of 100 MB of text stays a file a
  browser opens in a second. Past `SINGLE_FILE_LIMIT` the page is an index and the cells move to
  per-problem script files beside it (`fetch` is refused on `file://`, a `<script src>` is not).
- Same inputs, same bytes: sorted keys, no timestamps, a fixed compression level, no paths of the machine.

Pure: the index and the cells' payloads in, the page's text (and the side files' texts) out.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import zlib
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

COMPRESSION_LEVEL = 6  # zlib's default: 2% larger than level 9 on model text, in 56% of its time
# Above this many bytes of encoded cells the report becomes an index page plus per-problem files. Chromium
# draws the grid of any page in ~0.1 s (the cells come after the script), but a cell opens only once the
# whole file is parsed: 2.2 s for 563 MB, 9.6 s for 2.2 GB (benchmarks/README.md, "The report").
SINGLE_FILE_LIMIT = 500_000_000
ASSETS = "assets"
CSP_SINGLE = ("default-src 'none'; script-src '{script}'; style-src '{style}'; img-src data: blob:; "
              "base-uri 'none'; form-action 'none'")
# the per-problem files are scripts next to the page: 'self' lets a file:// page load them, nothing else
CSP_SPLIT = CSP_SINGLE.replace("script-src '{script}'", "script-src '{script}' 'self'")
_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_PLACEHOLDER = re.compile(r"\{\{([A-Z_]+)\}\}")


def inline_json(obj: Any) -> str:
    """JSON safe inside an HTML `<script>` element: no `<`, `>` or `&` (so no `</script>` and no `<!--`),
    no line separators, every key sorted. JSON.parse reads the escapes back as the same characters."""
    text = compact_json(obj)
    return re.sub("[<>&\u2028\u2029]", lambda m: _JSON_ESCAPES[m.group()], text)


def compact_json(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)


def packed(text: str) -> str:
    """One cell's payload (its compact JSON text) as the page carries it: raw deflate, then `base85`. The
    browser inflates it with DecompressionStream('deflate-raw'). Text, not an object: whatever must never
    reach the page (an API key) is taken out of the text first, since nothing can find it once compressed."""
    deflate = zlib.compressobj(COMPRESSION_LEVEL, zlib.DEFLATED, -15)
    return base85(deflate.compress(text.encode("utf-8")) + deflate.flush())


def unpacked(text: str) -> Any:
    """The inverse of `packed` (tests, and anyone reading a report with a script)."""
    return json.loads(zlib.decompress(unbase85(text), -15).decode("utf-8"))


# 85 printable characters with none of < > & " ' \ / : base85 text is inert anywhere in HTML (it can spell
# neither a closing tag nor `<!--`), and 5 characters per 4 bytes instead of base64's 6 per 4 make the
# 4,800-sample benchmark run 6% smaller (benchmarks/README.md).
BASE85 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!#$%()*+-;=?@^_`{|}~,.:"
_POWERS = np.array([85**4, 85**3, 85**2, 85, 1], dtype=np.uint64)


def base85(data: bytes) -> str:
    """Bytes as text, 4 bytes -> 5 characters of BASE85 (a last group of r bytes -> r + 1 characters)."""
    rest = len(data) % 4
    words = np.frombuffer(data + b"\0" * (-len(data) % 4), dtype=">u4").astype(np.uint64)
    digits = (words[:, None] // _POWERS) % 85
    text = np.frombuffer(BASE85.encode("ascii"), dtype=np.uint8)[digits.ravel()].tobytes().decode("ascii")
    return text[: len(text) - (4 - rest) if rest else len(text)]


def unbase85(text: str) -> bytes:
    rest = len(text) % 5
    table = np.zeros(128, dtype=np.uint64)
    table[np.frombuffer(BASE85.encode("ascii"), dtype=np.uint8)] = np.arange(85, dtype=np.uint64)
    codes = np.frombuffer((text + BASE85[-1] * (-len(text) % 5)).encode("ascii"), dtype=np.uint8)
    words = (table[codes].reshape(-1, 5) * _POWERS).sum(axis=1).astype(">u4")
    data = words.tobytes()
    return data[: len(data) - (5 - rest) if rest else len(data)]


def csp_hash(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


def asset(name: str) -> str:
    return resources.files(__package__).joinpath(ASSETS, name).read_text(encoding="utf-8")


@dataclass(frozen=True)
class Page:
    """The report: its HTML, and for a split report the per-problem files (name -> text) beside it."""

    html: str
    files: dict[str, str]


def cell_id(run: str, cell: int) -> str:
    return f"cell-{run}-{cell}"


def page(index: dict[str, Any], payloads: dict[str, list[str]], split: bool, files_dir: str) -> Page:
    """The page for `index` (its `runs`, each with an `id`) and each run's packed cells, in cell order.

    `split`: the cells go to `files_dir`/<run>-<problem>.js, one file per problem (what a cell needs is
    then one small script away); otherwise each cell is a non-executing element of the page itself."""
    script, style = asset("report.js"), asset("report.css")
    for name, text in (("report.js", script), ("report.css", style)):
        if re.search(r"</(script|style)", text, re.IGNORECASE):
            raise ValueError(f"{ASSETS}/{name} contains a closing tag, which would end its inline element early")
    files: dict[str, str] = {}
    index = {**index, "split": files_dir if split else None}
    if split:
        elements = ""
        for run in index["runs"]:
            for problem, cells in _cells_by_problem(run).items():
                lines = [f"window.harnessReportCells({json.dumps(cell_id(run['id'], c))},"
                         f"{json.dumps(payloads[run['id']][c])});" for c in cells]
                files[f"{run['id']}-{problem}.js"] = "\n".join(lines) + "\n"
    else:
        elements = "".join(
            f'<script type="application/octet-stream" id="{cell_id(run["id"], c)}">{text}</script>\n'
            for run in index["runs"] for c, text in enumerate(payloads[run["id"]]))
    policy = (CSP_SPLIT if split else CSP_SINGLE).format(script=csp_hash(script), style=csp_hash(style))
    values = {"CSP": policy, "STYLE": style, "SCRIPT": script, "INDEX": inline_json(index), "CELLS": elements,
              "TITLE": _escape_text(" | ".join(run["label"] for run in index["runs"]))}
    html = _PLACEHOLDER.sub(lambda m: values[m.group(1)], asset("report.html"))  # one pass: inserted text stays
    return Page(html, files)


def _cells_by_problem(run: dict[str, Any]) -> dict[int, list[int]]:
    by: dict[int, list[int]] = {}
    for i, cell in enumerate(run["cells"]):
        by.setdefault(cell["p"], []).append(i)
    return by


def _escape_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
