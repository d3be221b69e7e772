// The page `infinisheet serve` serves: a spreadsheet grid over a sheet of
// any size. It fetches only the cells in view (and a screen around them),
// draws only those, and follows other writers' edits through the server's
// event stream. Keyboard and mouse work as in other spreadsheet apps:
// arrows, Tab, Enter, Home/End, Page Up/Down, Shift to select, typing to
// edit, Escape to cancel, Delete to clear; a name box goes to a cell or a
// range; copy and paste carry ranges as tab-separated text (a paste is one
// block entry in the log). On a server with a token it rides on the
// session cookie signing in at /login gave it (the token is never in a
// URL); a read-only session edits nothing.
"use strict";
// Pixels: a row's height (the column heads' too), a column's width. The
// row heads are as wide as the longest row number in the scrolling space
// (`frame().head`).
const ROW = 24, COL = 100;
// The most pixels of scrolling space: browsers cap an element's size, so
// a sheet taller or wider than this scrolls in proportion.
const MAX_SPACE = 4_000_000;
// A sheet's last row and column (zero-based).
const LAST = 2 ** 32 - 1;
// The most cells one copy reads (the server's own cap on a read).
const COPY_LIMIT = 100_000;

const $ = (id) => document.getElementById(id);
const grid = $("grid"), scroller = $("scroller"), space = $("space"), view = $("view"), layer = $("layer");
const editor = $("editor"), picker = $("sheet"), namebox = $("namebox"), status = $("status"), news = $("news");
const problem = $("problem"), problemText = $("problem-text");

let sheet = null, events = null, writable = true, gone = null;
// `known`: the end of the entries the event stream announced (or a write
// of this page answered); reads ask for at least those.
let known = 0;
// The sheet's size in use, as the last read said.
let size = { rows: 0, cols: 0 };
// The cells of the last range read (`"row,col"` to the cell's JSON), the
// range, and the log's end it held.
let cells = new Map(), fetched = null, fetchedAt = -1;
// The selection: the active cell (`anchor`, where typing edits and
// plain arrows move from) and the corner Shift moves (`cursor`).
let cursor = { row: 0, col: 0 }, anchor = { row: 0, col: 0 };
// The cell being edited, or null; `entering`: the edit began by typing,
// so arrows end it and move (as they do in other spreadsheet apps) rather
// than move in the text.
let editing = null, entering = false;
// Where the view is, in virtual pixels from A1's corner (exact, however
// large the sheet), and the scroller position that was set for it.
let vy = 0, vx = 0, setTop = -1, setLeft = -1;
// Writes not yet landed (of any sheet: they are sent in order, one at a
// time, each to the sheet it was made in); what they show until they
// land (`"row,col"` to `{ text, until }`, of the open sheet); the entries
// this page wrote; entries heard while writes were in flight, judged when
// they are done.
let saving = 0, queue = Promise.resolve();
const showing = new Map();
const mine = [];
let heard = [];
// Whether the server cannot be reached (reads, writes or the stream).
let offline = { read: false, write: false, stream: false };

const key = (row, col) => row + "," + col;
const enc = encodeURIComponent;

function columnName(c) {
  let name = "";
  for (c += 1; c > 0; c = Math.floor((c - 1) / 26)) name = String.fromCharCode(65 + ((c - 1) % 26)) + name;
  return name;
}
const refOf = (row, col) => columnName(col) + (row + 1);

// `B7` → { row: 6, col: 1 }, or null if it is not a cell in the sheet.
function parseRef(text) {
  const m = /^\s*([A-Za-z]{1,7})([1-9][0-9]{0,9})\s*$/.exec(text);
  if (!m) return null;
  let col = 0;
  for (const ch of m[1].toUpperCase()) col = col * 26 + (ch.charCodeAt(0) - 64);
  const row = Number(m[2]) - 1;
  return col - 1 <= LAST && row <= LAST ? { row, col: col - 1 } : null;
}

function selection() {
  return {
    top: Math.min(anchor.row, cursor.row), bottom: Math.max(anchor.row, cursor.row),
    left: Math.min(anchor.col, cursor.col), right: Math.max(anchor.col, cursor.col),
  };
}
const rangeText = (s) => s.top === s.bottom && s.left === s.right
  ? refOf(s.top, s.left) : `${refOf(s.top, s.left)}:${refOf(s.bottom, s.right)}`;

class Failure extends Error {
  constructor(message, { status = 0, offline = false } = {}) {
    super(message); this.status = status; this.offline = offline;
  }
  // Worth trying again: the server was not reached, or was busy.
  get retryable() { return this.offline || this.status === 503; }
}

async function api(path, options = {}) {
  let reply;
  try {
    reply = await fetch(path, { ...options, credentials: "same-origin" });
  } catch {
    throw new Failure("the server cannot be reached", { offline: true });
  }
  // No session (or it ended): sign in, and come back.
  if (reply.status === 401) {
    location.href = "/login?next=" + enc(location.pathname + location.search);
    throw new Failure("signing in", { status: 401 });
  }
  let body = {};
  try { body = await reply.json(); } catch { /* not JSON: the status says it */ }
  if (!reply.ok) throw new Failure(body.error || reply.statusText || `status ${reply.status}`, { status: reply.status });
  return body;
}

const wait = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---- what the page says ----

function say() {
  let state, text;
  if (!sheet) { state = "none"; text = "no sheet open"; }
  else if (gone) { state = "gone"; text = gone; }
  else if (offline.read || offline.write) {
    state = "offline"; text = saving ? "Offline: not saved yet, retrying…" : "Offline, retrying…";
  } else if (offline.stream) {
    state = "offline"; text = saving ? "Saving… (others' edits paused, retrying)" : "Others' edits paused, retrying…";
  } else if (saving) { state = "saving"; text = "Saving…"; }
  else if (!writable) { state = "read-only"; text = "Read-only: this session can look, not edit"; }
  else { state = "saved"; text = "All changes saved"; }
  status.dataset.state = state;
  status.textContent = text;
}

function showProblem(text) {
  problemText.textContent = text;
  problem.hidden = false;
}
$("problem-close").addEventListener("click", () => { problem.hidden = true; grid.focus(); });

// Entries the stream told that this page did not write: someone else's.
function judgeNews() {
  if (saving) return;
  const theirs = heard.find(([start, end]) => {
    for (let id = start; id < end; id++) if (!mine.some(([a, b]) => a <= id && id < b)) return true;
    return false;
  });
  heard = [];
  if (theirs) {
    const where = theirs[2] ? ` (${theirs[2]})` : "";
    news.textContent = `Someone else's edit arrived${where} ${new Date().toLocaleTimeString()}`;
    news.dataset.at = String(known);
  }
}

// ---- the view: where it is, and drawing it ----

const rowExtent = () => Math.min(LAST + 1, Math.max(1000, size.rows + 100, cursor.row + 100, anchor.row + 100));
const colExtent = () => Math.min(LAST + 1, Math.max(26, size.cols + 10, cursor.col + 10, anchor.col + 10));

// One direction's scrolling: `total` virtual pixels in at most MAX_SPACE
// real ones, `ratio` virtual pixels a real one.
function axis(extent, unit, client) {
  const total = extent * unit, real = Math.min(total, MAX_SPACE);
  const ratio = real > client ? Math.max(1, (total - client) / (real - client)) : 1;
  return { total, real, ratio, most: Math.max(0, total - client) };
}

function frame() {
  const w = scroller.clientWidth, h = scroller.clientHeight;
  const HEAD = Math.max(50, 9 * String(rowExtent()).length + 14);
  const ay = axis(rowExtent(), ROW, h - ROW), ax = axis(colExtent(), COL, w - HEAD);
  vy = Math.min(Math.max(0, vy), ay.most);
  vx = Math.min(Math.max(0, vx), ax.most);
  const top = Math.floor(vy / ROW), left = Math.floor(vx / COL);
  return {
    w, h, ay, ax, top, left, head: HEAD, dy: vy - top * ROW, dx: vx - left * COL,
    rows: Math.ceil((h - ROW) / ROW) + 1, cols: Math.ceil((w - HEAD) / COL) + 1,
    full: Math.max(1, Math.floor((h - ROW) / ROW)), fullCols: Math.max(1, Math.floor((w - HEAD) / COL)),
  };
}

// Sizes the scrolling space to the sheet and puts the scrollbars where
// the view is.
function place() {
  const f = frame();
  space.style.height = (f.ay.real + ROW) + "px";
  space.style.width = (f.ax.real + f.head) + "px";
  const top = Math.round(vy / f.ay.ratio), left = Math.round(vx / f.ax.ratio);
  if (scroller.scrollTop !== top) scroller.scrollTop = top;
  if (scroller.scrollLeft !== left) scroller.scrollLeft = left;
  setTop = scroller.scrollTop; setLeft = scroller.scrollLeft;
}

let drawing = false;
function schedule() {
  // The name box says the selection at once; the grid is drawn on the
  // next frame.
  if (document.activeElement !== namebox) namebox.value = rangeText(selection());
  if (drawing) return;
  drawing = true;
  requestAnimationFrame(() => { drawing = false; draw(); });
}

function valueText(cell) {
  if (!cell) return "";
  if (cell.error) return cell.error;
  if (cell.value === true) return "TRUE";
  if (cell.value === false) return "FALSE";
  if (cell.value === null || cell.value === undefined) return "";
  return typeof cell.value === "number" ? String(cell.value).replace("e+", "e") : String(cell.value);
}
// As `get` shows it: through its number format.
const shownText = (cell) => (cell && cell.shown !== undefined ? cell.shown : valueText(cell));

function box(className, x, y, width, height) {
  const div = document.createElement("div");
  div.className = className;
  div.style.left = x + "px"; div.style.top = y + "px";
  if (width !== undefined) div.style.width = width + "px";
  if (height !== undefined) div.style.height = height + "px";
  return div;
}

function draw() {
  const f = frame();
  view.style.width = f.w + "px"; view.style.height = f.h + "px";
  const HEAD = f.head;
  const x = (c) => HEAD + (c - f.left) * COL - f.dx, y = (r) => ROW + (r - f.top) * ROW - f.dy;
  // Gridlines everywhere, moving with the cells.
  view.style.backgroundPosition = `${HEAD - f.dx - 1}px ${ROW - f.dy - 1}px`;
  const out = document.createDocumentFragment();
  const bottom = Math.min(LAST, f.top + f.rows), right = Math.min(LAST, f.left + f.cols);
  for (let r = f.top; r <= bottom; r++) {
    for (let c = f.left; c <= right; c++) {
      const k = key(r, c), cell = cells.get(k), pending = showing.get(k);
      if (!cell && !pending) continue;
      const div = box("cell", x(c), y(r));
      if (pending) div.classList.add("saving");
      else if (typeof cell.value === "number") div.classList.add("num");
      else if (typeof cell.value === "boolean") div.classList.add("bool");
      div.dataset.ref = refOf(r, c);
      div.textContent = pending ? pending.text : shownText(cell);
      out.appendChild(div);
    }
  }
  const s = selection();
  // The selection, cut to the view (its far corners may be far away).
  const t = Math.max(s.top, f.top - 1), b = Math.min(s.bottom, bottom + 1);
  const l = Math.max(s.left, f.left - 1), rr = Math.min(s.right, right + 1);
  if ((s.top !== s.bottom || s.left !== s.right) && t <= b && l <= rr) {
    out.appendChild(box("sel", x(l), y(t), (rr - l + 1) * COL, (b - t + 1) * ROW));
  }
  out.appendChild(box("cursor", x(cursor.col), y(cursor.row)));
  for (let c = f.left; c <= right; c++) {
    const head = box("head", x(c), 0);
    if (c >= s.left && c <= s.right) head.classList.add("on");
    head.textContent = columnName(c);
    out.appendChild(head);
  }
  for (let r = f.top; r <= bottom; r++) {
    const head = box("head", 0, y(r), HEAD);
    if (r >= s.top && r <= s.bottom) head.classList.add("on");
    head.textContent = r + 1;
    out.appendChild(head);
  }
  out.appendChild(box("head corner", 0, 0, HEAD));
  layer.replaceChildren(out);
  if (editing) {
    editor.style.left = x(editing.col) + "px"; editor.style.top = y(editing.row) + "px";
    editor.style.width = Math.max(COL, Math.min(3 * COL, 8 * editor.value.length + 12)) + "px";
  }
  if (document.activeElement !== namebox) namebox.value = rangeText(s);
  if (!fetched || f.top < fetched.top || f.left < fetched.left || bottom > fetched.bottom || right > fetched.right) load();
}

// Makes `at` (the selection's moving corner unless said) visible.
function reveal(at = cursor) {
  const f = frame();
  if (at.row < f.top || (at.row === f.top && f.dy > 0)) vy = at.row * ROW;
  else if (at.row >= f.top + f.full) vy = (at.row - f.full + 1) * ROW;
  if (at.col < f.left || (at.col === f.left && f.dx > 0)) vx = at.col * COL;
  else if (at.col >= f.left + f.fullCols) vx = (at.col - f.fullCols + 1) * COL;
  place();
  schedule();
}

const clampRC = (row, col) => ({ row: Math.min(LAST, Math.max(0, row)), col: Math.min(LAST, Math.max(0, col)) });
// Extending moves the selection's far corner; otherwise the active cell
// moves and the selection is that cell.
function goTo(row, col, extend) {
  cursor = clampRC(row, col);
  if (!extend) anchor = { ...cursor };
  reveal();
}
const move = (dr, dc, extend) => (extend
  ? goTo(cursor.row + dr, cursor.col + dc, true)
  : goTo(anchor.row + dr, anchor.col + dc, false));

scroller.addEventListener("scroll", () => {
  // Scrolled by the user (not by `place`): the view follows the bars.
  const f = frame();
  if (scroller.scrollTop !== setTop) vy = scroller.scrollTop * f.ay.ratio;
  if (scroller.scrollLeft !== setLeft) vx = scroller.scrollLeft * f.ax.ratio;
  setTop = scroller.scrollTop; setLeft = scroller.scrollLeft;
  schedule();
});
window.addEventListener("resize", () => { place(); schedule(); });

// ---- reading ----

let loading = false, again = false;
async function load() {
  if (!sheet) return;
  if (loading) { again = true; return; }
  loading = true;
  const forSheet = sheet;
  let delay = 500;
  try {
    do {
      again = false;
      const f = frame();
      // The view and a screen around it.
      const want = {
        top: Math.max(0, f.top - f.rows), bottom: Math.min(LAST, f.top + 2 * f.rows),
        left: Math.max(0, f.left - 2), right: Math.min(LAST, f.left + f.cols + 2),
      };
      const at = known;
      let data;
      try {
        data = await api(`/api/cells?sheet=${enc(forSheet)}&range=${rangeText(want)}&at=${at}`);
      } catch (err) {
        if (!err.retryable || forSheet !== sheet) throw err;
        offline.read = true; say();
        await wait(delay); delay = Math.min(2 * delay, 8000);
        again = true;
        continue;
      }
      if (forSheet !== sheet) return;
      offline.read = false;
      const fresh = new Map();
      if (data.range) {
        const first = parseRef(data.range.split(":")[0]);
        data.rows.forEach((row, i) => row.forEach((cell, j) => {
          if (cell) fresh.set(key(first.row + i, first.col + j), cell);
        }));
      }
      cells = fresh; fetched = want; fetchedAt = data.end;
      size = { rows: data.sheet_rows, cols: data.sheet_columns };
      // What was being saved shows as saved once a read holds it.
      for (const [k, shown] of showing) if (shown.until !== null && shown.until <= fetchedAt) showing.delete(k);
      place();
      say();
      schedule();
    } while (again && forSheet === sheet);
  } catch (err) {
    if (forSheet === sheet) showProblem(`Reading ${forSheet}: ${err.message}`);
  } finally {
    loading = false;
  }
}

// ---- writing ----

// Sends `body` (a POST /api/cells object), showing `texts` (`"row,col"` to
// text) in the grid meanwhile. A write that cannot reach the server is
// tried again until it can; one the server refuses is said, and undone
// on the page.
function write(body, texts, what) {
  const forSheet = sheet, shown = new Map();
  for (const [k, text] of texts) { const s = { text, until: null }; showing.set(k, s); shown.set(k, s); }
  saving++; say(); schedule();
  const done = queue.then(() => send(forSheet, body, shown, what));
  queue = done.catch(() => {});
  return done;
}

// One write, after every write made before it has landed or failed: two
// edits of a cell land in the order they were made, however often either
// is retried. A write that cannot reach the server is sent again until it
// can (also after the page moved to another sheet); one the server
// refuses is said, and taken back from the grid.
async function send(forSheet, body, shown, what) {
  let delay = 500, landed = null;
  try {
    for (;;) {
      try {
        landed = await api(`/api/cells?sheet=${enc(forSheet)}`, {
          method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
        });
        offline.write = false;
        break;
      } catch (err) {
        if (err.retryable) {
          offline.write = true; say();
          await wait(delay); delay = Math.min(2 * delay, 8000);
          continue;
        }
        offline.write = false;
        const where = forSheet === sheet ? "" : ` (in ${forSheet})`;
        if (err.status !== 401) showProblem(`${what}${where} was not saved: ${err.message}`);
        return false;
      }
    }
    if (forSheet === sheet) {
      mine.push([landed.start, landed.end]);
      if (mine.length > 500) mine.splice(0, mine.length - 500);
      known = Math.max(known, landed.end);
    }
    return true;
  } finally {
    saving--;
    if (forSheet === sheet) {
      // Until a read holds it (landed), or taken back (refused); a newer
      // edit of the cell shows instead if there is one.
      for (const [k, s] of shown) {
        if (showing.get(k) !== s) continue;
        if (landed) s.until = landed.end; else showing.delete(k);
      }
    }
    judgeNews();
    say();
    schedule();
    if (forSheet === sheet) { fetched = null; load(); }
  }
}
// Leaving with writes not landed: the browser asks first.
window.addEventListener("beforeunload", (e) => { if (saving) e.preventDefault(); });

// The text an edit starts from: what `set` reads back as the same value
// (text that would read as another value keeps a leading ').
function editText(row, col) {
  const pending = showing.get(key(row, col));
  if (pending) return pending.text;
  const cell = cells.get(key(row, col));
  const text = valueText(cell);
  if (cell && typeof cell.value === "string" && looksLikeValue(text)) return "'" + text;
  return text;
}
function looksLikeValue(text) {
  if (text === "TRUE" || text === "FALSE" || text.startsWith("'") || /^#[A-Z/0!?]+[!?A-Z]*$/.test(text)) return true;
  return /^-?[0-9][0-9.e-]*$/.test(text) && String(Number(text)).replace("e+", "e") === text;
}

function startEdit(initial) {
  if (!sheet || gone) return;
  if (!writable) { showProblem("This session is read-only: it cannot edit"); return; }
  // The active cell; the selection becomes that cell.
  cursor = { ...anchor };
  editing = { ...anchor };
  entering = initial !== null;
  const before = editText(anchor.row, anchor.col);
  editor.value = initial === null ? before : initial;
  editor.dataset.ref = refOf(anchor.row, anchor.col);
  editor.dataset.start = before;
  editor.hidden = false;
  draw();
  editor.focus();
  editor.setSelectionRange(editor.value.length, editor.value.length);
}

function closeEditor() {
  editing = null;
  editor.hidden = true;
  grid.focus({ preventScroll: true });
}

function commit(dr, dc) {
  const at = editing, text = editor.value, changed = text !== editor.dataset.start;
  closeEditor();
  if (changed) {
    const ref = refOf(at.row, at.col);
    // A cell keeps its number format when its value is typed over.
    const cell = cells.get(key(at.row, at.col));
    const value = cell && cell.format ? { input: text, format: cell.format } : text;
    write({ [ref]: value }, new Map([[key(at.row, at.col), text]]), ref);
  }
  goTo(at.row + dr, at.col + dc, false);
}

editor.addEventListener("keydown", (e) => {
  e.stopPropagation();
  if (e.key === "Escape") { e.preventDefault(); closeEditor(); schedule(); }
  else if (e.key === "Enter") { e.preventDefault(); commit(e.shiftKey ? -1 : 1, 0); }
  else if (e.key === "Tab") { e.preventDefault(); commit(0, e.shiftKey ? -1 : 1); }
  else if (entering) {
    const step = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] }[e.key];
    if (step) { e.preventDefault(); commit(...step); }
  }
});
editor.addEventListener("input", schedule);

function clearSelection() {
  if (!writable) { showProblem("This session is read-only: it cannot edit"); return; }
  const s = selection(), texts = new Map();
  const inside = (k) => { const [r, c] = k.split(",").map(Number); return r >= s.top && r <= s.bottom && c >= s.left && c <= s.right; };
  for (const k of [...cells.keys(), ...showing.keys()]) if (inside(k)) texts.set(k, "");
  // Nothing there (as far as what is read shows): no entry.
  const read = fetched && s.top >= fetched.top && s.bottom <= fetched.bottom && s.left >= fetched.left && s.right <= fetched.right;
  if (read && texts.size === 0) return;
  write({ [rangeText(s)]: null }, texts, `Clearing ${rangeText(s)}`);
}

// ---- keyboard and mouse ----

grid.addEventListener("keydown", (e) => {
  if (e.target === editor || !sheet) return;
  const ctrl = e.ctrlKey || e.metaKey, f = frame();
  const handled = () => e.preventDefault();
  switch (e.key) {
    case "ArrowUp": handled(); return move(-1, 0, e.shiftKey);
    case "ArrowDown": handled(); return move(1, 0, e.shiftKey);
    case "ArrowLeft": handled(); return move(0, -1, e.shiftKey);
    case "ArrowRight": handled(); return move(0, 1, e.shiftKey);
    case "Tab": handled(); return move(0, e.shiftKey ? -1 : 1, false);
    case "Enter": handled(); return e.shiftKey ? move(-1, 0, false) : startEdit(null);
    case "F2": handled(); return startEdit(null);
    case "Home": handled(); return goTo(ctrl ? 0 : (e.shiftKey ? cursor : anchor).row, 0, e.shiftKey);
    case "End": handled(); return goTo(ctrl ? Math.max(0, size.rows - 1) : (e.shiftKey ? cursor : anchor).row, Math.max(0, size.cols - 1), e.shiftKey);
    case "PageDown": handled(); vy += f.full * ROW; return move(f.full, 0, e.shiftKey);
    case "PageUp": handled(); vy -= f.full * ROW; return move(-f.full, 0, e.shiftKey);
    case "Escape": handled(); cursor = { ...anchor }; problem.hidden = true; return schedule();
    case "Delete": case "Backspace": handled(); return clearSelection();
  }
  if (ctrl && e.key.toLowerCase() === "a") { handled(); anchor = { row: 0, col: 0 }; cursor = { row: Math.max(0, size.rows - 1), col: Math.max(0, size.cols - 1) }; return schedule(); }
  // Typing starts an edit with what was typed.
  if (!ctrl && !e.altKey && e.key.length === 1) { handled(); startEdit(e.key); }
});

// The cell under a point of the grid, or null (a head or a scrollbar).
function cellAt(event) {
  const rect = grid.getBoundingClientRect(), f = frame();
  const px = event.clientX - rect.left, py = event.clientY - rect.top;
  if (px >= f.w || py >= f.h || px < f.head || py < ROW) return null;
  return {
    row: Math.min(LAST, f.top + Math.floor((py - ROW + f.dy) / ROW)),
    col: Math.min(LAST, f.left + Math.floor((px - f.head + f.dx) / COL)),
  };
}

let dragging = false;
scroller.addEventListener("mousedown", (e) => {
  const at = cellAt(e);
  if (!at || e.button !== 0) return;
  e.preventDefault();
  if (editing) commit(0, 0);
  grid.focus({ preventScroll: true });
  cursor = at;
  if (!e.shiftKey) anchor = { ...at };
  dragging = true;
  schedule();
});
window.addEventListener("mousemove", (e) => {
  if (!dragging) return;
  const at = cellAt(e);
  if (at && (at.row !== cursor.row || at.col !== cursor.col)) { cursor = at; schedule(); }
});
window.addEventListener("mouseup", () => { dragging = false; });
scroller.addEventListener("dblclick", (e) => {
  const at = cellAt(e);
  if (!at) return;
  cursor = at; anchor = { ...at };
  startEdit(null);
});

// ---- the name box ----

namebox.addEventListener("focus", () => namebox.select());
namebox.addEventListener("keydown", (e) => {
  if (e.key === "Escape") { e.preventDefault(); problem.hidden = true; namebox.value = rangeText(selection()); grid.focus(); return; }
  if (e.key !== "Enter") return;
  e.preventDefault();
  const [a, b, extra] = namebox.value.split(":");
  let from = parseRef(a), to = b === undefined ? from : parseRef(b);
  // Whole columns (`C:E`) and rows (`3:5`), to the sheet's edge.
  const cols = b !== undefined && /^\s*[A-Za-z]{1,7}\s*$/.test(a) && /^\s*[A-Za-z]{1,7}\s*$/.test(b);
  const wholeRows = b !== undefined && /^\s*[1-9][0-9]{0,9}\s*$/.test(a) && /^\s*[1-9][0-9]{0,9}\s*$/.test(b);
  if (cols) { from = parseRef(a.trim() + "1"); to = parseRef(b.trim() + "1"); if (to) to = { row: LAST, col: to.col }; }
  if (wholeRows) { from = parseRef("A" + a.trim()); to = parseRef("A" + b.trim()); if (to) to = { row: to.row, col: LAST }; }
  if (!from || !to || extra !== undefined) {
    showProblem(`"${namebox.value.trim()}" is not a cell like A1000000 or a range like B2:D9, C:E or 3:5`);
    return;
  }
  problem.hidden = true;
  // The range's first cell is the active one, in view; the selection
  // reaches to its other corner.
  // The active cell is the range's first.
  anchor = { row: Math.min(from.row, to.row), col: Math.min(from.col, to.col) };
  cursor = { row: Math.max(from.row, to.row), col: Math.max(from.col, to.col) };
  grid.focus({ preventScroll: true });
  reveal(anchor);
});

// ---- copy and paste: tab-separated text, as other spreadsheet apps ----

function tsvField(text) {
  return /[\t\n\r"]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

// Rows of fields from tab-separated text: quoted fields may hold tabs,
// line breaks and doubled quotes; a last line break ends the last row.
function parseTsv(text) {
  const rows = [];
  let row = [], field = "", i = 0, quoted = false;
  if (text.endsWith("\r\n")) text = text.slice(0, -2); else if (text.endsWith("\n")) text = text.slice(0, -1);
  while (i <= text.length) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') { field += '"'; i += 2; continue; }
      if (ch === '"') { quoted = false; i++; continue; }
      if (ch === undefined) { quoted = false; continue; }
      field += ch; i++; continue;
    }
    if (ch === '"' && field === "") { quoted = true; i++; continue; }
    if (ch === "\t") { row.push(field); field = ""; i++; continue; }
    if (ch === "\n" || ch === "\r" || ch === undefined) {
      row.push(field); field = ""; rows.push(row); row = [];
      i += ch === "\r" && text[i + 1] === "\n" ? 2 : 1;
      continue;
    }
    field += ch; i++;
  }
  return rows;
}

const typingIn = () => document.activeElement === editor || document.activeElement === namebox
  || document.activeElement === picker;

document.addEventListener("copy", (e) => {
  if (typingIn() || !sheet) return;
  e.preventDefault();
  const s = selection();
  const count = (s.bottom - s.top + 1) * (s.right - s.left + 1);
  if (count > COPY_LIMIT) { showProblem(`${rangeText(s)} holds ${count} cells; a copy takes at most ${COPY_LIMIT}`); return; }
  const inView = fetched && s.top >= fetched.top && s.bottom <= fetched.bottom && s.left >= fetched.left && s.right <= fetched.right;
  if (inView) {
    const at = (r, c) => cells.get(key(r, c));
    e.clipboardData.setData("text/plain", tsvOf(s, at));
    // For a paste in this page: the cells exactly, formats and all.
    e.clipboardData.setData(CELLS_TYPE, JSON.stringify(blockOf(s, at)));
    return;
  }
  // Beyond what is read: read it, then write the clipboard.
  api(`/api/cells?sheet=${enc(sheet)}&range=${rangeText(s)}&at=${known}`).then((data) => {
    const first = data.range ? parseRef(data.range.split(":")[0]) : null;
    const at = (r, c) => (first && data.rows[r - first.row] ? data.rows[r - first.row][c - first.col] : null);
    return navigator.clipboard.writeText(tsvOf(s, at));
  }).catch((err) => showProblem(`Copying ${rangeText(s)}: ${err.message}`));
});

// The clipboard type that carries cells exactly between pages of serve.
const CELLS_TYPE = "application/x-infinisheet-cells";

// Rows of cells as POST /api/cells takes them exactly (`{"value": ...}`,
// `{"error": ...}`, with the format), `""` for a blank cell.
function blockOf(s, cellAtRC) {
  const rows = [];
  for (let r = s.top; r <= s.bottom; r++) {
    const row = [];
    for (let c = s.left; c <= s.right; c++) {
      const cell = cellAtRC(r, c);
      if (!cell) { row.push(""); continue; }
      const exact = cell.error ? { error: cell.error } : { value: cell.value };
      if (cell.format) exact.format = cell.format;
      row.push(exact);
    }
    rows.push(row);
  }
  return rows;
}

function tsvOf(s, cellAtRC) {
  const lines = [];
  for (let r = s.top; r <= s.bottom; r++) {
    const fields = [];
    for (let c = s.left; c <= s.right; c++) fields.push(tsvField(valueText(cellAtRC(r, c))));
    lines.push(fields.join("\t"));
  }
  return lines.join("\n");
}

document.addEventListener("paste", (e) => {
  if (typingIn() || !sheet) return;
  e.preventDefault();
  const text = e.clipboardData.getData("text/plain");
  if (!text) return;
  if (!writable) { showProblem("This session is read-only: it cannot edit"); return; }
  // Cells copied in a page of serve come exactly as they were; text from
  // elsewhere is read as typed.
  // Only cells whose text is the text on the clipboard: another page
  // could put other cells beside a harmless text.
  let rows = null, exact = false;
  try { rows = JSON.parse(e.clipboardData.getData(CELLS_TYPE) || "null"); } catch { rows = null; }
  if (Array.isArray(rows) && rows.length && rows.every(Array.isArray)) {
    let wide = 0;
    for (const row of rows) wide = Math.max(wide, row.length);
    const s0 = { top: 0, left: 0, bottom: rows.length - 1, right: wide - 1 };
    const at = (r, c) => { const v = rows[r] && rows[r][c]; return v && typeof v === "object" ? v : null; };
    exact = tsvOf(s0, at) === text;
  }
  if (!exact) rows = parseTsv(text);
  const s = selection();
  // One value pasted over a range fills it.
  const count = (s.bottom - s.top + 1) * (s.right - s.left + 1);
  if (rows.length === 1 && rows[0].length === 1 && count > 1 && count <= COPY_LIMIT) {
    rows = Array.from({ length: s.bottom - s.top + 1 }, () => Array(s.right - s.left + 1).fill(rows[0][0]));
  }
  let width = 0;
  for (const row of rows) width = Math.max(width, row.length);
  if (!rows.length || !width) return;
  if (s.top + rows.length - 1 > LAST || s.left + width - 1 > LAST) { showProblem("The paste reaches past the sheet's edge"); return; }
  const texts = new Map();
  const shownAs = (field) => (field && typeof field === "object" ? shownText(field) : field || "");
  rows.forEach((row, i) => row.forEach((field, j) => texts.set(key(s.top + i, s.left + j), shownAs(field))));
  anchor = { row: s.top, col: s.left };
  cursor = { row: s.top + rows.length - 1, col: s.left + width - 1 };
  schedule();
  // One block entry from the selection's first cell; cells copied blank
  // are blank again: the area is cleared first (in the same batch).
  const area = rangeText({ top: s.top, left: s.left, bottom: cursor.row, right: cursor.col });
  const first = refOf(s.top, s.left);
  const cellOf = (v) => (v && typeof v === "object" ? v : null);
  let body = { [first]: rows };
  if (exact && area === first) body = { [first]: cellOf(rows[0][0]) }; // null: blank again
  else if (exact) body = { [area]: null, [first]: rows.map((row) => row.map(cellOf)) };
  write(body, texts, `The paste at ${refOf(s.top, s.left)}`);
});

// ---- the sheet and its events ----

function follow() {
  if (events) events.close();
  const forSheet = sheet;
  let live = false;
  events = new EventSource(`/api/events?sheet=${enc(sheet)}`);
  events.addEventListener("entries", (e) => {
    const { start, end, edits } = JSON.parse(e.data);
    known = Math.max(known, end);
    const where = (edits || []).map((edit) => edit && (edit.cell || edit.range)).find(Boolean);
    if (live) { heard.push([start, end, where]); judgeNews(); }
    load();
  });
  events.addEventListener("reset", () => { known = 0; fetched = null; load(); });
  events.addEventListener("caught-up", () => {
    live = true; streamDelay = 500;
    offline.stream = false; say();
    document.body.dataset.live = "true";
  });
  events.addEventListener("snapshot", () => {});
  events.addEventListener("open", () => { if (offline.stream) { offline.stream = false; say(); } });
  // The sheet left its path (removed, moved, replaced): stop following it.
  events.addEventListener("gone", (e) => {
    events.close(); events = null; document.body.dataset.live = "false";
    gone = `This sheet is gone: ${JSON.parse(e.data).error}`;
    offline.stream = false;
    say();
  });
  events.onerror = () => {
    if (forSheet !== sheet || gone) return;
    offline.stream = true; document.body.dataset.live = "false"; say();
    // Refused (a busy server, a sheet not there): the browser does not
    // try again, so the page does, after a while; a read says why meanwhile.
    if (events.readyState === EventSource.CLOSED) {
      streamDelay = Math.min(2 * streamDelay, 30000);
      setTimeout(() => { if (forSheet === sheet && !gone) follow(); }, streamDelay);
      fetched = null; load();
    }
  };
}
let streamDelay = 500;

async function choose(path, how = "push") {
  // An edit in progress is saved first, to the sheet it was made in.
  if (editing) commit(0, 0);
  if (how === "push" && path !== sheet) history.pushState(null, "", "?" + new URLSearchParams({ sheet: path }));
  else history.replaceState(null, "", "?" + new URLSearchParams({ sheet: path }));
  sheet = path; known = 0; gone = null; fetched = null; fetchedAt = -1;
  cells = new Map(); showing.clear(); heard = []; mine.length = 0; news.textContent = "";
  size = { rows: 0, cols: 0 }; cursor = { row: 0, col: 0 }; anchor = { row: 0, col: 0 }; vy = 0; vx = 0;
  offline = { read: false, write: false, stream: false };
  document.title = `${path} · Infinisheet`;
  if (picker.value !== path) picker.value = path;
  say();
  follow();
  place();
  await load();
  grid.focus({ preventScroll: true });
}

picker.addEventListener("change", () => choose(picker.value));

// The catalog's sheets, grouped by folder.
function fillPicker(sheets) {
  picker.replaceChildren();
  const groups = new Map();
  for (const path of sheets) {
    const cut = path.lastIndexOf("/");
    const folder = cut < 0 ? "" : path.slice(0, cut + 1);
    if (!groups.has(folder)) groups.set(folder, []);
    groups.get(folder).push(path);
  }
  for (const [folder, paths] of [...groups].sort(([a], [b]) => a.localeCompare(b))) {
    const parent = folder ? Object.assign(document.createElement("optgroup"), { label: folder }) : picker;
    for (const path of paths) parent.appendChild(new Option(path, path));
    if (folder) picker.appendChild(parent);
  }
  if (sheet && !sheets.includes(sheet)) picker.appendChild(new Option(`${sheet} (gone)`, sheet));
  if (sheet) picker.value = sheet;
}

// The list again whenever the picker is opened: sheets come and go.
picker.addEventListener("focus", async () => {
  try { fillPicker((await api("/api/sheets")).sheets); } catch { /* the old list stays */ }
});
window.addEventListener("popstate", () => {
  const wanted = params().get("sheet");
  if (wanted && wanted !== sheet) choose(wanted, "replace");
});

(async () => {
  try {
    const { sheets, access, session } = await api("/api/sheets");
    writable = access === "write";
    $("signout").hidden = !session;
    fillPicker(sheets);
    // The sheet asked for, or the first the picker lists.
    const wanted = params().get("sheet") || (picker.options[0] && picker.options[0].value);
    if (wanted) await choose(wanted, "replace"); else status.textContent = "No sheets yet: create one with `infinisheet new`";
  } catch (err) {
    if (err.status !== 401) showProblem(`Loading the sheet list: ${err.message}`);
  }
})();

function params() { return new URLSearchParams(location.search); }
