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

Pure: the index and the cells' payloads in, the page's text (and the side files' texts) out, whole
(`page`) or in pieces to write one after another (`frame`, `cell_element`, `problem_files`, `cell_line`).
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


@dataclass(frozen=True)
class Frame:
    """The page around its cells: the HTML before them and after them. The cells go in between, one
    `cell_element` each (a single file) or none (split: they are in the `problem_files`)."""

    head: str
    tail: str


def cell_id(run: str, cell: int) -> str:
    return f"cell-{run}-{cell}"


def page(index: dict[str, Any], payloads: dict[str, list[str]], split: bool, files_dir: str) -> Page:
    """The page for `index` (its `runs`, each with an `id`) and each run's packed cells, in cell order,
    as one string: what the report's streamed write puts on disk piece by piece (build.py), for a page
    small enough to hold at once (the tests compare the two).

    `split`: the cells go to `files_dir`/<run>-<problem>.js, one file per problem (what a cell needs is
    then one small script away); otherwise each cell is a non-executing element of the page itself."""
    around = frame(index, split, files_dir)
    files = {name: "".join(cell_line(run, c, payloads[run][c]) for c in cells)
             for name, run, cells in problem_files(index)} if split else {}
    elements = "" if split else "".join(cell_element(run["id"], c, text) for run in index["runs"]
                                        for c, text in enumerate(payloads[run["id"]]))
    return Page(around.head + elements + around.tail, files)


def frame(index: dict[str, Any], split: bool, files_dir: str) -> Frame:
    """The page's HTML before and after its cells: the policy, style, script, index and title filled in.

    The template is cut at {{CELLS}} before anything is filled in, then each part is filled in one pass,
    as the whole page was: text put in (a model's answer in the index) is never read for placeholders."""
    script, style = asset("report.js"), asset("report.css")
    for name, text in (("report.js", script), ("report.css", style)):
        if re.search(r"</(script|style)", text, re.IGNORECASE):
            raise ValueError(f"{ASSETS}/{name} contains a closing tag, which would end its inline element early")
    index = {**index, "split": files_dir if split else None}
    policy = (CSP_SPLIT if split else CSP_SINGLE).format(script=csp_hash(script), style=csp_hash(style))
    values = {"CSP": policy, "STYLE": style, "SCRIPT": script, "INDEX": inline_json(index),
              "TITLE": _escape_text(" | ".join(run["label"] for run in index["runs"]))}
    parts = asset("report.html").split("{{CELLS}}")
    if len(parts) != 2:
        raise ValueError(f"{ASSETS}/report.html must hold {{{{CELLS}}}} once (it holds it {len(parts) - 1} times)")
    head, tail = (_PLACEHOLDER.sub(lambda m: values[m.group(1)], part) for part in parts)
    return Frame(head, tail)


def cell_element(run: str, cell: int, text: str) -> str:
    """One cell of a single-file page: its packed payload in a non-executing element, ending in a newline."""
    return f'<script type="application/octet-stream" id="{cell_id(run, cell)}">{text}</script>\n'


def cell_line(run: str, cell: int, text: str) -> str:
    """One cell of a split page: a line of its problem's script file, ending in a newline."""
    return f"window.harnessReportCells({json.dumps(cell_id(run, cell))},{json.dumps(text)});\n"


def problem_files(index: dict[str, Any]) -> list[tuple[str, str, list[int]]]:
    """A split page's script files: each one's name, its run's id and its cells (every cell of one
    problem, in cell order), sorted by name."""
    return sorted((f"{run['id']}-{problem}.js", run["id"], cells)
                  for run in index["runs"] for problem, cells in _cells_by_problem(run).items())


def _cells_by_problem(run: dict[str, Any]) -> dict[int, list[int]]:
    by: dict[int, list[int]] = {}
    for i, cell in enumerate(run["cells"]):
        by.setdefault(cell["p"], []).append(i)
    return by


def _escape_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
