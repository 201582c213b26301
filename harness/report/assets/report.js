// scaling-harness report: draws the grid, the curve and one transcript at a time from the page's own data.
// Model text is only ever put on screen with textContent (text nodes), never parsed as markup; every cell's
// samples are decoded (DecompressionStream) only when the cell is opened or searched; the grid and the
// sample lists draw only the rows on screen.
"use strict";
(function () {
  const INDEX = JSON.parse(document.getElementById("report-index").textContent);
  const RUNS = INDEX.runs;
  const F = {};
  INDEX.sample_fields.forEach((name, i) => { F[name] = i; });
  const ROW_H = 28, LIST_H = 30, OVERSCAN = 6, CACHE_CELLS = 64;
  const INSERTION = {
    "wait": "the Wait cue, inserted by the harness where the model stopped before its budget (budgets.wait_cue)",
    "think-close": "the close tag, written by the harness when the thinking budget was spent",
    "answer-cue": "the answer cue, appended by the harness before the forced answer (budgets.answer_cue)",
  };
  const GRADE = { c: "correct", w: "wrong", n: "no answer", f: "failed" };
  const FILTERS = [
    ["wrong", "wrong", (s) => s[F.correct] === false],
    ["noanswer", "no answer extracted", (s) => s[F.tick] === "n"],
    ["budget", "hit the budget", (s) => s[F.hit_budget] === true],
    ["failed", "failed", (s) => s[F.tick] === "f"],
    ["disagrees", "disagrees with the majority", (s) => s[F.disagrees] === true],
  ];
  const state = {
    cell: null, // {r, ci}: the open cell
    point: null, // {r, b, k}: a curve point's samples
    group: null, // vote class the list is narrowed to
    sample: null, // {r, ci, s}: the open transcript
    filters: new Set(),
    query: "",
    matches: null, // Map "r|ci" -> per-sample match counts, while a search is shown
    sort: "fetched",
  };

  // ---- small DOM helpers: text always goes in as text nodes ----
  function h(tag, props, ...kids) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") el.className = value;
      else if (key === "text") el.textContent = value;
      else if (key === "data") for (const [k, v] of Object.entries(value)) el.dataset[k] = v;
      else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
      else el.setAttribute(key, value === true ? "" : String(value));
    }
    for (const kid of kids.flat()) {
      if (kid === null || kid === undefined || kid === false) continue;
      el.append(kid instanceof Node ? kid : String(kid));
    }
    return el;
  }
  const SVG = "http://www.w3.org/2000/svg";
  function s(tag, attrs, ...kids) {
    const el = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
      else if (key === "data") for (const [k, v] of Object.entries(value)) el.dataset[k] = v;
      else el.setAttribute(key, String(value));
    }
    for (const kid of kids) el.append(kid instanceof Node ? kid : String(kid));
    return el;
  }
  const $ = (id) => document.getElementById(id);
  const fmt = (v, digits) => (v === null || v === undefined ? "–" : typeof v === "number" ?
    (Number.isInteger(v) ? v.toLocaleString("en-US") : v.toFixed(digits === undefined ? 3 : digits)) : String(v));
  const pct = (v) => (v === null || v === undefined ? "–" : (100 * v).toFixed(1) + "%");

  // ---- derived lookups ----
  RUNS.forEach((run, r) => {
    run.r = r;
    run.cellAt = new Map();
    run.cells.forEach((c, i) => run.cellAt.set(c.p + "|" + c.b, i));
    run.problemAt = new Map(run.problems.map((p, i) => [p.id, i]));
    run.budgetAt = new Map(run.budgets.map((b, i) => [b, i]));
    run.flipAt = new Map(run.flips.map((f) => [f.p + "|" + run.budgetAt.get(f.after), f]));
  });

  // ---- cells' payloads: decoded on demand, a few dozen kept ----
  const cache = new Map();
  const texts = new Map(); // a split report's cells, as its per-problem files delivered them
  window.harnessReportCells = function (id, text) { texts.set(id, text); };
  function afterParse() {
    return document.readyState === "loading" ?
      new Promise((ok) => document.addEventListener("DOMContentLoaded", ok, { once: true })) : Promise.resolve();
  }
  const files = new Map(); // per-problem file -> the promise of its loading
  function loadFile(name) {
    if (!files.has(name)) {
      files.set(name, new Promise((ok, fail) => {
        const tag = h("script", { src: name });
        tag.addEventListener("load", ok);
        tag.addEventListener("error", () => fail(new Error(name + " could not be loaded: keep the " + INDEX.split +
          " folder beside the page")));
        document.head.append(tag);
      }));
    }
    return files.get(name);
  }
  async function cellText(run, ci) {
    const id = "cell-" + run.id + "-" + ci;
    if (INDEX.split) {
      if (!texts.has(id)) await loadFile(INDEX.split + "/" + run.id + "-" + run.cells[ci].p + ".js");
      if (!texts.has(id)) throw new Error("cell " + id + " is missing from its file");
      return texts.get(id);
    }
    await afterParse();
    const el = document.getElementById(id);
    if (!el) throw new Error("cell " + id + " is missing from the page");
    return el.textContent;
  }
  // report_page.BASE85: 4 bytes in 5 characters, none of them markup
  const BASE85 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!#$%()*+-;=?@^_`{|}~,.:";
  const DIGIT = new Uint8Array(128);
  for (let i = 0; i < BASE85.length; i++) DIGIT[BASE85.charCodeAt(i)] = i;
  function unbase85(text) {
    const rest = text.length % 5, groups = Math.ceil(text.length / 5);
    const out = new Uint8Array(groups * 4);
    for (let g = 0, at = 0; g < groups; g++) {
      let v = 0;
      for (let j = 0; j < 5; j++, at++) v = v * 85 + (at < text.length ? DIGIT[text.charCodeAt(at)] : 84);
      out[4 * g] = v >>> 24; out[4 * g + 1] = (v >>> 16) & 255; out[4 * g + 2] = (v >>> 8) & 255; out[4 * g + 3] = v & 255;
    }
    return out.subarray(0, rest ? out.length - (5 - rest) : out.length);
  }
  async function loadCell(r, ci) {
    const key = r + "|" + ci;
    if (cache.has(key)) {
      const hit = cache.get(key);
      cache.delete(key);
      cache.set(key, hit);
      return hit;
    }
    const bytes = unbase85(await cellText(RUNS[r], ci));
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate-raw"));
    const payload = JSON.parse(await new Response(stream).text());
    cache.set(key, payload);
    while (cache.size > CACHE_CELLS) cache.delete(cache.keys().next().value);
    return payload;
  }

  // ---- colours ----
  function fractionColour(f) {
    if (f === null || f === undefined) return "#e6e9ed";
    return "hsl(" + Math.round(120 * f) + ", 55%, " + Math.round(78 - 6 * f) + "%)";
  }
  function matchColour(n, most) {
    if (!n) return "#f1f3f5";
    const t = Math.log(1 + n) / Math.log(1 + Math.max(most, 1));
    return "hsl(212, 70%, " + Math.round(88 - 40 * t) + "%)";
  }

  // ---- rows: every problem of one run, or the problems two runs share ----
  function rowsInOrder() {
    const [a, b] = RUNS;
    let rows = a.problems.map((p, i) => ({ id: p.id, at: [i, b ? b.problemAt.get(p.id) : undefined] }));
    if (b) rows = rows.filter((row) => row.at[1] !== undefined);
    if (state.sort === "fetched") return rows;
    if (!b) {
      const order = a.hardest_first.map((i) => rows[i]);
      return state.sort === "hardest" ? order : order.reverse();
    }
    const level = (row) => {
      const d = RUNS.map((run, r) => run.problems[row.at[r]].difficulty).filter((v) => v !== null);
      return d.length ? d.reduce((x, y) => x + y, 0) / d.length : null;
    };
    const keyed = rows.map((row, i) => [level(row), i, row]);
    keyed.sort((x, y) => (x[0] === null) - (y[0] === null) || (x[0] || 0) - (y[0] || 0) || x[1] - y[1]);
    const order = keyed.map((k) => k[2]);
    return state.sort === "hardest" ? order : order.reverse();
  }
  let rows = [];

  // ---- what the filters, a vote group and the search leave of a cell's samples ----
  function passes(sample) {
    for (const [name, , test] of FILTERS) if (state.filters.has(name) && !test(sample)) return false;
    return true;
  }
  function matchesOf(r, ci) { return state.matches ? state.matches.get(r + "|" + ci) : undefined; }
  function shown(r, ci) {
    const cell = RUNS[r].cells[ci];
    const counts = matchesOf(r, ci);
    return cell.samples.map((sample, si) => ({ r, ci, si, sample }))
      .filter(({ sample, si }) => passes(sample) && (!state.matches || (counts && counts[si] > 0)));
  }
  const narrowing = () => state.filters.size > 0 || state.matches !== null;

  // ---- the grid ----
  function columnsOf(run) {
    return run.budgets.map((b, bi) => ({ kind: "budget", bi, label: b }))
      .concat(run.vote.ks.map((k, ki) => ({ kind: "vote", ki, k, label: "maj@" + k })));
  }
  function differs(row, r, col) {
    if (RUNS.length < 2) return false;
    const other = RUNS[1 - r];
    const run = RUNS[r];
    if (col.kind === "vote") {
      const ko = other.vote.ks.indexOf(col.k);
      if (ko < 0 || other.vote.budget !== run.vote.budget) return false;
      const x = run.vote.values[row.at[r]][col.ki], y = other.vote.values[row.at[1 - r]][ko];
      return x !== null && y !== null && Math.abs(x - y) > 1e-9;
    }
    const bo = other.budgetAt.get(run.budgets[col.bi]);
    if (bo === undefined) return false;
    const here = run.cellAt.get(row.at[r] + "|" + col.bi), there = other.cellAt.get(row.at[1 - r] + "|" + bo);
    if (here === undefined || there === undefined) return false;
    const c1 = run.cells[here], c2 = other.cells[there];
    return c1.correct * c2.graded !== c2.correct * c1.graded || c1.verdict !== c2.verdict;
  }
  let mostMatches = 0;
  function cellElement(row, r, col) {
    const run = RUNS[r];
    const p = row.at[r];
    const data = { p: run.problems[p].id, b: col.kind === "vote" ? (run.vote.budget || "") : run.budgets[col.bi] };
    if (RUNS.length > 1) data.r = run.id;
    if (col.kind === "vote") {
      data.k = String(col.k);
      const ci = run.cellAt.get(p + "|" + run.budgetAt.get(run.vote.budget));
      const v = run.vote.values[p][col.ki];
      const el = h("div", { class: "cell vote", data, role: "gridcell", tabindex: "0",
        title: "maj@" + col.k + " at " + run.vote.budget + ": the expected accuracy of a vote of " + col.k +
          " samples drawn from this problem's pool" + (v === null ? " (fewer samples than k)" : " = " + fmt(v)) },
        h("span", { class: "value", text: v === null ? "–" : v.toFixed(2) }));
      el.style.background = fractionColour(v);
      if (differs(row, r, col)) el.classList.add("differs");
      if (state.point && state.point.r === r && state.point.b === run.vote.budget && state.point.k === col.k)
        el.classList.add("column");
      if (ci !== undefined) el.addEventListener("click", () => openCell(r, ci));
      return el;
    }
    const ci = run.cellAt.get(p + "|" + col.bi);
    if (ci === undefined) return h("div", { class: "cell empty", data, role: "gridcell" });
    const cell = run.cells[ci];
    const el = h("div", { class: "cell budget", data, role: "gridcell", tabindex: "0" });
    const verdict = cell.verdict === null ? "·" : cell.verdict === 1 ? "✓" : cell.verdict === 0 ? "✗" : "½";
    const flip = run.flipAt.get(p + "|" + col.bi);
    const counts = matchesOf(r, ci);
    let title = run.problems[p].id + " at " + run.budgets[col.bi] + ": " + cell.correct + " of " + cell.graded +
      " graded correct; majority vote " + (cell.verdict === null ? "none (every sample failed)" :
      cell.verdict === 1 ? "right" : cell.verdict === 0 ? "wrong" : "tied, the right answer among the tied") +
      (cell.tie ? " (tie)" : "");
    if (flip) title += "; flip: " + flip.direction.replace(/-/g, " ") + " from " + flip.before;
    if (state.matches) {
      const total = counts ? counts.reduce((x, y) => x + y, 0) : 0;
      el.style.background = matchColour(total, mostMatches);
      el.append(h("span", { class: "count", text: counts ? String(total) : "…" }));
      title += "; " + total + " matches of the search";
    } else {
      el.style.background = fractionColour(cell.graded ? cell.correct / cell.graded : null);
    }
    if (state.filters.size) {
      const n = shown(r, ci).length;
      if (!n) el.classList.add("dim");
      else if (!state.matches) el.append(h("span", { class: "count", text: String(n) }));
      title += "; " + n + " samples pass the filters";
    }
    el.setAttribute("title", title);
    el.append(h("span", { class: "verdict", text: verdict }));
    if (flip) el.append(h("span", { class: "flip", text: flip.direction === "right-to-wrong" ? "↘" : "↗" }));
    const ticks = h("span", { class: "ticks" });
    for (const t of cell.ticks) ticks.append(h("span", { class: "tick t-" + t }));
    el.append(ticks);
    if (differs(row, r, col)) el.classList.add("differs");
    if (state.cell && state.cell.r === r && state.cell.ci === ci) el.classList.add("selected");
    if (state.point && state.point.r === r && state.point.b === run.budgets[col.bi] && state.point.k === 1)
      el.classList.add("column");
    el.addEventListener("click", () => openCell(r, ci));
    el.addEventListener("keydown", (e) => { if (e.key === "Enter") openCell(r, ci); });
    return el;
  }
  function rowElement(row, i) {
    const el = h("div", { class: "row", role: "row", data: { row: String(i) } },
      h("div", { class: "pid", title: row.id + " (gold: " + RUNS[0].problems[row.at[0]].gold + ")", text: row.id }));
    el.style.top = i * ROW_H + "px";
    RUNS.forEach((run, r) => {
      if (r) el.append(h("div", { class: "gap" }));
      for (const col of columnsOf(run)) el.append(cellElement(row, r, col));
    });
    return el;
  }
  function drawHead() {
    const head = $("grid-head");
    head.replaceChildren(h("div", { class: "pid", text: RUNS.length > 1 ? "problem (shared)" : "problem" }));
    RUNS.forEach((run, r) => {
      if (r) head.append(h("div", { class: "gap" }));
      for (const col of columnsOf(run)) {
        const selected = state.point && state.point.r === r &&
          (col.kind === "budget" ? state.point.b === col.label && state.point.k === 1 : state.point.k === col.k);
        head.append(h("div", { class: "col" + (selected ? " selected" : ""),
          title: (RUNS.length > 1 ? run.id + ": " : "") + (col.kind === "vote" ? "vote of " + col.k + " at " +
            run.vote.budget : "budget " + col.label),
          text: (RUNS.length > 1 ? run.id + " " : "") + col.label }));
      }
    });
  }
  let drawQueued = false;
  function drawRows() {
    drawQueued = false;
    const scroll = $("grid-scroll"), space = $("grid-space");
    const top = Math.max(0, scroll.scrollTop - space.offsetTop), height = scroll.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / ROW_H) - OVERSCAN);
    const last = Math.min(rows.length, Math.ceil((top + height) / ROW_H) + OVERSCAN);
    space.replaceChildren(...rows.slice(first, last).map((row, j) => rowElement(row, first + j)));
  }
  function drawGrid() {
    rows = rowsInOrder();
    $("grid-space").style.height = rows.length * ROW_H + "px";
    const width = 220 + RUNS.reduce((w, run) => w + 76 * columnsOf(run).length, 0) + 16 * (RUNS.length - 1);
    $("grid-space").style.minWidth = width + "px";
    drawHead();
    drawRows();
  }
  function scrollToRow(r, p) {
    const i = rows.findIndex((row) => row.at[r] === p);
    if (i < 0) return;
    const scroll = $("grid-scroll"), at = $("grid-space").offsetTop + i * ROW_H;
    if (at < scroll.scrollTop + $("grid-head").offsetHeight || at + ROW_H > scroll.scrollTop + scroll.clientHeight)
      scroll.scrollTop = Math.max(0, at - scroll.clientHeight / 2);
  }

  // ---- flips ----
  function drawFlips() {
    const box = $("flips");
    box.replaceChildren();
    RUNS.forEach((run) => {
      const title = (RUNS.length > 1 ? run.id + ": " : "") + run.flips.length + " flip" +
        (run.flips.length === 1 ? "" : "s") + " (the majority verdict changed from one budget to the next: ↘ right " +
        "then wrong, ↗ wrong then right; ties skipped)";
      const list = h("ul");
      for (const f of run.flips) {
        const ci = run.cellAt.get(f.p + "|" + run.budgetAt.get(f.after));
        list.append(h("li", null, h("button", { class: "link flip-link", onclick: () => openCell(run.r, ci),
          text: run.problems[f.p].id + ": " + (f.direction === "right-to-wrong" ? "right at " + f.before +
            ", wrong at " + f.after : "wrong at " + f.before + ", right at " + f.after) })));
      }
      box.append(h("details", { open: run.flips.length <= 12 }, h("summary", { text: title }), list));
    });
  }

  // ---- the side: a cell's vote groups and samples, then one transcript ----
  function openCell(r, ci, keepSample) {
    state.cell = { r, ci };
    state.point = null;
    state.group = null;
    if (!keepSample) state.sample = null;
    const run = RUNS[r], cell = run.cells[ci];
    if (!keepSample) setHash({ r: run.id, p: run.problems[cell.p].id, b: run.budgets[cell.b] });
    loadCell(r, ci).catch(() => {}); // warm: the transcripts are then one click away
    drawCellPane();
    drawList();
    drawRows();
    drawHead();
    markCurve();
    if (!keepSample) clearTranscript();
  }
  function drawCellPane() {
    const pane = $("cell-pane");
    if (!state.cell) { pane.replaceChildren(); return; }
    const { r, ci } = state.cell;
    const run = RUNS[r], cell = run.cells[ci], problem = run.problems[cell.p];
    const table = h("table", { class: "groups" }, h("tr", null, h("th", { text: "vote class (answers as written)" }),
      h("th", { text: "votes" }), h("th", { text: "grade" }), h("th", { text: "" })));
    for (const g of cell.groups) {
      const won = cell.winners.includes(g.class);
      const tr = h("tr", { class: "group" + (state.group === g.class ? " active" : ""), data: { class: g.class },
        title: "show only the " + g.samples.length + " samples that voted for this class" },
      h("td", null, h("code", { text: g.spellings.join("  =  ") }),
        g.spellings.length === 1 && g.spellings[0] === g.class ? null : h("span", { class: "note", text: "  [" + g.class + "]" })),
      h("td", { text: String(g.samples.length) }),
      h("td", { text: g.correct ? "✓ right" : "✗ wrong" }),
      h("td", null, won ? h("span", { class: cell.tie ? "tie" : "winner", text: cell.tie ? "tie" : "★ majority" }) : null));
      tr.addEventListener("click", () => { state.group = state.group === g.class ? null : g.class; drawCellPane(); drawList(); });
      table.append(tr);
    }
    const unvoted = cell.samples.length - cell.groups.reduce((n, g) => n + g.samples.length, 0);
    pane.replaceChildren(...[
      h("h2", { text: (RUNS.length > 1 ? run.id + " · " : "") + problem.id + " · budget " + run.budgets[cell.b] }),
      h("dl", { class: "facts" },
        h("dt", { text: "gold" }), h("dd", null, h("code", { text: problem.gold })),
        h("dt", { text: "graded correct" }), h("dd", { text: cell.correct + " of " + cell.graded +
          (cell.graded ? " (" + pct(cell.correct / cell.graded) + ")" : "") }),
        h("dt", { text: "majority vote" }), h("dd", { text: cell.verdict === null ? "none: every sample failed" :
          cell.verdict === 1 ? "right" : cell.verdict === 0 ? "wrong" :
          "a tie the right answer is part of (scores " + fmt(cell.verdict, 2) + ")" })),
      h("h3", { text: "Vote groups" + (cell.tie ? " (tie)" : "") }),
      cell.groups.length ? table : h("p", { class: "note", text: "no sample gave an answer" }),
      unvoted ? h("p", { class: "note", text: unvoted + " sample(s) cast no vote (no answer, or failed)" }) : null,
    ].filter(Boolean));
  }
  function listed() {
    if (state.cell) {
      const { r, ci } = state.cell;
      const keep = state.group === null ? null : new Set(RUNS[r].cells[ci].groups.find((g) => g.class === state.group).samples);
      return shown(r, ci).filter(({ sample }) => !keep || keep.has(sample[F.sample]));
    }
    const out = [];
    RUNS.forEach((run, r) => {
      if (state.point && state.point.r !== r) return;
      if (!state.point && !narrowing()) return;
      run.cells.forEach((cell, ci) => {
        if (state.point && run.budgets[cell.b] !== state.point.b) return;
        out.push(...shown(r, ci));
      });
    });
    return out;
  }
  let listRows = [];
  function drawList() {
    listRows = listed();
    const head = $("list-head");
    const what = state.cell ? "samples of this cell" : state.point ? "samples behind the point at budget " +
      state.point.b + (state.point.k > 1 ? " (the pool maj@" + state.point.k + " votes from)" : "") :
      narrowing() ? "samples of the run" : "";
    const narrowed = [...state.filters].map((f) => FILTERS.find((x) => x[0] === f)[1]);
    if (state.group !== null) narrowed.push("voted " + state.group);
    if (state.matches) narrowed.push("matching the search");
    head.textContent = what ? listRows.length + " " + what + (narrowed.length ? ": " + narrowed.join(", ") : "") :
      "Click a cell, a curve point or a flip; or set a filter or a search.";
    $("list-space").style.height = listRows.length * LIST_H + "px";
    $("list-scroll").scrollTop = 0;
    drawListRows();
  }
  function drawListRows() {
    const scroll = $("list-scroll"), space = $("list-space");
    const top = scroll.scrollTop, height = scroll.clientHeight || 300;
    const first = Math.max(0, Math.floor(top / LIST_H) - OVERSCAN);
    const last = Math.min(listRows.length, Math.ceil((top + height) / LIST_H) + OVERSCAN);
    space.replaceChildren(...listRows.slice(first, last).map((item, j) => sampleRow(item, first + j)));
  }
  function sampleRow(item, i) {
    const { r, ci, si, sample } = item;
    const run = RUNS[r], cell = run.cells[ci];
    const inserted = Object.entries(sample[F.insertions] || {}).map(([k, n]) => n + "× " + k).join(", ");
    const counts = matchesOf(r, ci);
    const open = state.sample && state.sample.r === r && state.sample.ci === ci && state.sample.s === sample[F.sample];
    const el = h("div", { class: "sample-row" + (open ? " open" : ""), role: "button", tabindex: "0",
      data: { p: run.problems[cell.p].id, b: run.budgets[cell.b], s: String(sample[F.sample]) } },
    h("span", { class: "grade g-" + sample[F.tick], text: GRADE[sample[F.tick]] }),
    h("span", { class: "what", text: (state.cell ? "" : run.problems[cell.p].id + " @" + run.budgets[cell.b] + " ") +
      "#" + sample[F.sample] + "  answer " + (sample[F.answer] === null ? "–" : sample[F.answer]) + "  · " +
      fmt(sample[F.completion_tokens]) + " tokens" + (inserted ? "  · " + inserted : "") +
      (sample[F.status] !== "ok" ? "  · " + sample[F.status] : "") +
      (counts ? "  · " + counts[si] + " matches" : "") }));
    el.style.top = i * LIST_H + "px";
    el.addEventListener("click", () => openSample(r, ci, sample[F.sample]));
    el.addEventListener("keydown", (e) => { if (e.key === "Enter") openSample(r, ci, sample[F.sample]); });
    return el;
  }

  function clearTranscript() {
    const box = $("transcript");
    box.replaceChildren();
    box.dataset.state = "empty";
  }
  let opening = 0;
  async function openSample(r, ci, s) {
    const run = RUNS[r], cell = run.cells[ci];
    const row = cell.samples.find((x) => x[F.sample] === s);
    const box = $("transcript");
    if (!row) {
      box.replaceChildren(h("p", { class: "error", text: "sample " + s + " is not in this cell" }));
      box.dataset.state = "error";
      return;
    }
    if (!state.cell || state.cell.r !== r || state.cell.ci !== ci) openCell(r, ci, true);
    state.sample = { r, ci, s };
    setHash({ r: run.id, p: run.problems[cell.p].id, b: run.budgets[cell.b], s: String(s) });
    drawListRows();
    const ticket = ++opening;
    box.dataset.state = "loading";
    box.replaceChildren(h("p", { class: "note", text: "decoding this cell's samples…" }));
    let payload;
    try {
      payload = await loadCell(r, ci);
    } catch (err) {
      box.replaceChildren(h("p", { class: "error", text: String(err) }));
      box.dataset.state = "error";
      return;
    }
    if (ticket !== opening) return;
    const t = payload.samples.find((x) => x.sample === s);
    box.replaceChildren(...transcript(run, cell, row, payload.prompt, t));
    box.dataset.state = "ready";
    box.dataset.p = run.problems[cell.p].id;
    box.dataset.b = run.budgets[cell.b];
    box.dataset.s = String(s);
  }
  function transcript(run, cell, row, prompt, t) {
    const v = (name) => row[F[name]];
    const tick = v("tick");
    const reasoning = v("reasoning_tokens"), completion = v("completion_tokens");
    const answerTokens = reasoning !== null && completion !== null ? completion - reasoning : null;
    const problem = run.problems[cell.p];
    const facts = [
      ["extracted answer", v("answer") === null ? "none" : v("answer")],
      ["gold", problem.gold],
      ["grade", GRADE[tick] + (v("disagrees") ? " (outvoted: not the majority's answer)" : "")],
      ["status", v("status")],
      ["finish reason", v("finish_reason")],
      ["tokens", "reasoning " + fmt(reasoning) + (v("reasoning_count") ? " (" + v("reasoning_count") + ")" : "") +
        " · answer " + fmt(answerTokens) + " · prompt " + fmt(v("prompt_tokens")) + " · cached " +
        fmt(v("cached_input_tokens")) + " (of " + fmt(v("input_tokens")) + " input over the chain)"],
      ["requests", fmt(v("requests"))],
      ["latency", v("latency_s") === null ? "–" : fmt(v("latency_s"), 2) + " s"],
    ];
    if (v("answer_logprob") !== null) facts.push(["answer log-probability", fmt(v("answer_logprob"), 4)]);
    if (v("hit_budget")) facts.push(["budget", "hit: the thinking reached the budget (or a token limit cut it)"]);
    const out = [
      h("h2", null, (RUNS.length > 1 ? run.id + " · " : "") + problem.id + " · budget " + run.budgets[cell.b] +
        " · sample " + v("sample") + "  ", h("span", { class: "grade g-" + tick, text: GRADE[tick] })),
      h("dl", { class: "facts" }, facts.flatMap(([k, x]) => [h("dt", { text: k }), h("dd", { class: "fact-" +
        k.replace(/[^a-z]+/g, "-"), text: String(x) })])),
    ];
    if (v("error") !== null) out.push(h("pre", { class: "error", text: "error: " + v("error") }));
    out.push(h("details", { class: "prompt" }, h("summary", { text: "Prompt (" + prompt.length.toLocaleString("en-US") +
      " characters, as sent)" }), h("pre", { text: prompt })));
    if (!t || !t.pieces) {
      out.push(h("p", { class: "note", text: t && t.missing ? t.missing : "no transcript: the sample has no response" }));
      return out;
    }
    const needle = state.query.toLowerCase();
    let block = null, kind = null;
    const inThinking = {};
    for (const [region, pieceKind] of t.pieces) {
      if (region === "thinking" && pieceKind in INSERTION) inThinking[pieceKind] = (inThinking[pieceKind] || 0) + 1;
    }
    const inserted = Object.entries(inThinking).map(([k, n]) => n + "× " + k).join(", ");
    for (const [region, pieceKind, text] of t.pieces) {
      const want = region === "thinking" ? "thinking" : "answer";
      if (want !== kind) {
        kind = want;
        const body = h("pre", { class: "body" });
        if (kind === "thinking") {
          const first = !out.some((x) => x.classList && x.classList.contains("thinking"));
          block = h("details", { class: "thinking" }, h("summary", { text: "Thinking · " + fmt(reasoning) + " tokens" +
            (first && inserted ? " · the harness inserted " + inserted + " (marked)" : "") }), body);
        } else {
          const thought = t.pieces.some((x) => x[0] === "thinking");
          block = h("div", { class: "answer-flow" }, h("h3", { text: thought ? "After the thinking: the answer (graded)" :
            "The text, all of it graded as the answer (no thinking block)" }), body);
        }
        out.push(block);
      }
      block.querySelector("pre.body").append(piece(region, pieceKind, text, needle));
    }
    return out;
  }
  function piece(region, kind, text, needle) {
    if (kind in INSERTION) return h("mark", { class: "ins ins-" + kind, title: INSERTION[kind], data: { kind } }, text);
    const el = h("span", { class: kind === "reasoning" ? "reasoning-field" : region === "between" ? "tag" : "said",
      title: kind === "reasoning" ? "the server's separate reasoning field" : region === "between" ?
        "the thinking's tag, written by the model" : null });
    if (!needle) { el.append(text); return el; }
    const lower = text.toLowerCase();
    let at = 0;
    for (let i = lower.indexOf(needle); i !== -1; i = lower.indexOf(needle, i + needle.length)) {
      el.append(text.slice(at, i), h("mark", { class: "hit" }, text.slice(i, i + needle.length)));
      at = i + needle.length;
    }
    el.append(text.slice(at));
    return el;
  }

  // ---- search: every cell decoded in turn, matches counted per sample ----
  let searching = 0;
  async function search(query) {
    const ticket = ++searching;
    state.query = query;
    const status = $("search-status");
    if (!query) { state.matches = null; status.textContent = ""; redraw(); return; }
    const needle = query.toLowerCase();
    const found = new Map();
    state.matches = found;
    mostMatches = 0;
    const total = RUNS.reduce((n, run) => n + run.cells.length, 0);
    let done = 0, hits = 0;
    for (const run of RUNS) {
      for (let ci = 0; ci < run.cells.length; ci++) {
        let payload;
        try {
          payload = await loadCell(run.r, ci);
        } catch (err) {
          status.textContent = "search stopped: " + err.message;
          return;
        }
        if (ticket !== searching) return;
        const counts = payload.samples.map((t) => count(t.pieces, needle));
        const bySample = new Map(payload.samples.map((t, i) => [t.sample, counts[i]]));
        const perRow = run.cells[ci].samples.map((x) => bySample.get(x[F.sample]) || 0);
        found.set(run.r + "|" + ci, perRow);
        const sum = perRow.reduce((x, y) => x + y, 0);
        hits += sum;
        mostMatches = Math.max(mostMatches, sum);
        if (++done % 25 === 0) { status.textContent = "searching… " + done + " of " + total + " cells"; drawRows(); }
      }
    }
    status.textContent = hits.toLocaleString("en-US") + " matches of \u201c" + query + "\u201d in thinking and answers";
    redraw();
  }
  function count(pieces, needle) {
    if (!pieces) return 0;
    const text = pieces.map((p) => p[2]).join("").toLowerCase();
    let n = 0;
    for (let i = text.indexOf(needle); i !== -1; i = text.indexOf(needle, i + needle.length)) n++;
    return n;
  }
  function redraw() {
    drawRows();
    drawList();
    if (state.sample) openSample(state.sample.r, state.sample.ci, state.sample.s);
  }

  // ---- overview: provenance, the numbers, the curve ----
  function facts(pairs) {
    const shown = (v) => v === null || v === undefined ? "–" : Array.isArray(v) ? fmt(v[0]) + "–" + fmt(v[1]) : String(v);
    return h("dl", { class: "facts" }, pairs.flatMap(([k, v]) => [h("dt", { text: k }), h("dd", { text: shown(v) })]));
  }
  function numbers(table, first) {
    if (!table.columns.length) return null;
    const cell = (v) => Array.isArray(v) ? fmt(v[0]) + "–" + fmt(v[1]) : fmt(v);
    return h("table", { class: "numbers" }, h("tr", null, h("th", { text: first }), table.columns.map((c) => h("th", { text: c }))),
      table.rows.map((row) => h("tr", null, row.map((v, i) => h("td", { text: i ? cell(v) : String(v) })))));
  }
  function overview() {
    const box = $("overview");
    $("runs-label").textContent = RUNS.map((run) => (RUNS.length > 1 ? run.id + ": " : "") + run.label).join("   vs.   ");
    for (const run of RUNS) {
      const p = run.provenance, sum = run.summary;
      box.append(h("div", { class: "run-card", data: { run: run.id } },
        h("h2", { text: (RUNS.length > 1 ? run.id + " · " : "") + run.label }),
        facts([["model", p.model], ["server", p.server], ["API key", p.api_key_env ? "from $" + p.api_key_env + " (never written)" : "none"],
          ["method", p.method + (p.chat_template ? " (template " + p.chat_template + ")" : "")], ["budgets", p.budgets.join(", ")],
          ["dataset", p.dataset + " (" + fmt(p.problems) + " problems)"], ["dataset sha256", p.dataset_sha256],
          ["samples", fmt(p.samples)],
          ["store", fmt(p.store_responses) + " responses, " + (p.store_bytes / 1048576).toFixed(2) + " MB (" + p.store_shards.join(", ") + ")"]]),
        h("h3", { text: "The run's numbers (metrics.json)" }),
        sum.sentences.map(([k, text]) => h("p", { class: "sentence" }, h("b", { text: k + ": " }), text)),
        facts(sum.scalars),
        numbers(sum.by_budget, "budget"), numbers(sum.by_k, "k"),
        h("div", { class: "sections" }, sum.sections.map(([name, leaves]) =>
          h("details", { class: "section" }, h("summary", { text: name }), facts(leaves)))),
        h("details", null, h("summary", { text: "metrics.json, all of it" }),
          h("pre", { text: JSON.stringify(run.metrics, null, 2) })),
        h("details", null, h("summary", { text: "params (as the run used them)" }), h("pre", { text: JSON.stringify(run.params, null, 2) })),
        h("h3", { text: "Accuracy vs. tokens (click a point for its samples)" }), curve(run)));
    }
  }
  function curve(run) {
    const pts = run.curve.filter((c) => c.log2_tokens !== null && c.log2_tokens !== undefined && c.maj_at_k !== null);
    const W = 560, H = 250, L = 44, R = 14, T = 10, B = 34;
    if (!pts.length) return h("p", { class: "note", text: "curve.csv has no point to draw" });
    let x0 = Math.min(...pts.map((c) => c.log2_tokens)), x1 = Math.max(...pts.map((c) => c.log2_tokens));
    if (x1 - x0 < 1) { x0 -= 0.5; x1 += 0.5; }
    const X = (v) => L + (v - x0) / (x1 - x0) * (W - L - R), Y = (v) => T + (1 - v) * (H - T - B);
    const svg = s("svg", { class: "curve", viewBox: "0 0 " + W + " " + H, role: "img",
      "aria-label": "accuracy (maj@k) against log2 of the tokens used, for " + run.label });
    for (let y = 0; y <= 1.0001; y += 0.25) {
      svg.append(s("line", { class: "grid", x1: L, x2: W - R, y1: Y(y), y2: Y(y) }),
        s("text", { x: L - 6, y: Y(y) + 3, "text-anchor": "end" }, Math.round(100 * y) + "%"));
    }
    for (let x = Math.ceil(x0); x <= Math.floor(x1); x++) {
      svg.append(s("line", { class: "axis", x1: X(x), x2: X(x), y1: H - B, y2: H - B + 4 }),
        s("text", { x: X(x), y: H - B + 15, "text-anchor": "middle" }, String(2 ** x)));
    }
    svg.append(s("line", { class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B }),
      s("text", { x: (L + W - R) / 2, y: H - 4, "text-anchor": "middle" }, "tokens used per problem (log scale)"));
    const single = pts.filter((c) => c.k === 1);
    const votes = pts.filter((c) => c.k > 1 && c.budget === run.vote.budget);
    const line = (list, cls) => list.length > 1 ? s("polyline", { class: "series " + cls,
      points: list.map((c) => X(c.log2_tokens) + "," + Y(c.maj_at_k)).join(" ") }) : null;
    const base = single.find((c) => c.budget === run.vote.budget);
    for (const l of [line(single, "k1"), line(base ? [base, ...votes] : votes, "vote")]) if (l) svg.append(l);
    for (const c of single.concat(votes)) {
      const cls = c.k === 1 ? "k1" : "vote";
      if (c.maj_lo !== undefined && c.maj_lo !== null)
        svg.append(s("line", { class: "bar " + cls, x1: X(c.log2_tokens), x2: X(c.log2_tokens), y1: Y(c.maj_lo), y2: Y(c.maj_hi) }));
      const dot = s("circle", { class: "point " + cls, cx: X(c.log2_tokens), cy: Y(c.maj_at_k), r: 5,
        data: { b: c.budget, k: String(c.k), run: run.id }, tabindex: 0,
        onclick: () => selectPoint(run.r, c.budget, c.k) },
      s("title", null, "budget " + c.budget + ", k = " + c.k + ": maj@k " + pct(c.maj_at_k) +
        (c.maj_lo !== undefined && c.maj_lo !== null ? " (95% CI " + pct(c.maj_lo) + "–" + pct(c.maj_hi) + ")" : "") +
        " at " + fmt(c.mean_tokens, 0) + " tokens; click for its samples"));
      svg.append(dot);
    }
    return svg;
  }
  function markCurve() {
    document.querySelectorAll("svg.curve .point").forEach((dot) => {
      const on = state.point && dot.dataset.run === RUNS[state.point.r].id && dot.dataset.b === state.point.b &&
        Number(dot.dataset.k) === state.point.k;
      dot.classList.toggle("selected", Boolean(on));
    });
  }
  function selectPoint(r, b, k) {
    state.point = { r, b, k };
    state.cell = null;
    state.group = null;
    state.sample = null;
    drawCellPane();
    drawList();
    drawHead();
    drawRows();
    markCurve();
    clearTranscript();
  }

  // ---- controls ----
  function controls() {
    const box = $("controls");
    const sort = h("select", { id: "sort", "aria-label": "row order" },
      h("option", { value: "fetched", text: "problems as fetched" }),
      h("option", { value: "hardest", text: "hardest first" }),
      h("option", { value: "easiest", text: "easiest first" }));
    sort.addEventListener("change", () => { state.sort = sort.value; drawGrid(); });
    const filters = FILTERS.map(([name, label]) => {
      const input = h("input", { type: "checkbox", id: "filter-" + name, data: { filter: name } });
      input.addEventListener("change", () => {
        if (input.checked) state.filters.add(name); else state.filters.delete(name);
        drawRows();
        drawList();
      });
      return h("label", null, input, " " + label);
    });
    const query = h("input", { type: "search", id: "search", placeholder: "search thinking and answers",
      "aria-label": "full-text search over thinking and answers" });
    let timer = 0;
    query.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => search(query.value.trim()), 300); });
    query.addEventListener("keydown", (e) => { if (e.key === "Enter") { clearTimeout(timer); search(query.value.trim()); } });
    const legend = h("span", { class: "legend" }, "share correct", ...[0, 0.5, 1].map((f) => {
      const sw = h("span", { class: "swatch", title: pct(f) });
      sw.style.background = fractionColour(f);
      return sw;
    }), "ticks: ", h("span", { class: "swatch t-c" }), "right ", h("span", { class: "swatch t-w" }), "wrong ",
    h("span", { class: "swatch t-n" }), "no answer ", h("span", { class: "swatch t-f" }), "failed · ✓ ✗ ½ majority vote · ↘ ↗ flip");
    box.append(h("label", null, "rows: ", sort), ...filters, query, h("span", { id: "search-status" }));
    if (RUNS.length > 1) {
      let n = 0;
      for (const row of rowsInOrder()) for (const col of columnsOf(RUNS[0])) if (differs(row, 0, col)) n++;
      box.append(h("span", { id: "diff-status", text: n + " cells differ between A and B (dashed)" }));
    }
    box.append(legend);
  }

  // ---- the deep link: #p=<problem>&b=<budget>&s=<sample> (and r=A|B with two runs) ----
  function setHash(parts) {
    const keys = RUNS.length > 1 ? ["r", "p", "b", "s"] : ["p", "b", "s"];
    const hash = "#" + keys.filter((k) => parts[k] !== undefined).map((k) => k + "=" + encodeURIComponent(parts[k])).join("&");
    if (location.hash !== hash) history.replaceState(null, "", hash);
  }
  function readHash() {
    const out = {};
    for (const part of location.hash.replace(/^#/, "").split("&")) {
      const eq = part.indexOf("=");
      if (eq < 0) continue;
      try { out[part.slice(0, eq)] = decodeURIComponent(part.slice(eq + 1)); } catch (err) { /* not encoded: ignored */ }
    }
    return out;
  }
  function follow() {
    const link = readHash();
    if (link.p === undefined) return;
    const run = RUNS.find((x) => x.id === (link.r || RUNS[0].id)) || RUNS[0];
    const p = run.problemAt.get(link.p), b = run.budgetAt.get(link.b);
    const ci = p === undefined || b === undefined ? undefined : run.cellAt.get(p + "|" + b);
    if (ci === undefined) {
      const box = $("transcript");
      box.replaceChildren(h("p", { class: "error", text: "The link names problem " + link.p + " at budget " + link.b +
        ", which this report does not have." }));
      box.dataset.state = "error";
      return;
    }
    scrollToRow(run.r, p);
    openCell(run.r, ci, link.s !== undefined);
    if (link.s !== undefined) openSample(run.r, ci, Number(link.s));
  }

  if (RUNS.length > 1) document.body.classList.add("two-runs");
  overview();
  controls();
  drawGrid();
  performance.mark("report-grid"); // benchmarks/bench_report.py: when the grid was drawn
  drawFlips();
  drawList();
  $("grid-scroll").addEventListener("scroll", () => { if (!drawQueued) { drawQueued = true; requestAnimationFrame(drawRows); } });
  $("list-scroll").addEventListener("scroll", () => requestAnimationFrame(drawListRows));
  window.addEventListener("resize", () => requestAnimationFrame(drawRows));
  window.addEventListener("hashchange", follow);
  follow();
  document.documentElement.dataset.ready = "true";
})();
