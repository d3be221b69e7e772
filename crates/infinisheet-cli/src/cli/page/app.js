// The page `infinisheet serve` serves: a grid over a sheet of any size that
// fetches only the cells in view, edits a cell on double-click, and follows
// other writers' edits through the server's event stream. On a server with
// a token it rides on the session cookie signing in at /login gave it (the
// token is never in a URL); a read-only session edits nothing.
"use strict";
const ROW = 24, COL = 100, HEAD = 50;
const params = new URLSearchParams(location.search);
const scroller = document.getElementById("scroller");
const space = document.getElementById("space");
const select = document.getElementById("sheet");
const status = document.getElementById("status");
// `known`: the end of the entries the event stream has announced.
// `snapshot`: the entry the sheet's latest snapshot covers, as the stream said.
let sheet = null, events = null, rows = 1000, cols = 26, pending = false, known = 0, snapshot = null;
// Whether this session may edit (the server says so with the sheet list).
let writable = true;

function columnName(c) {
  let name = "";
  for (c += 1; c > 0; c = Math.floor((c - 1) / 26)) name = String.fromCharCode(65 + ((c - 1) % 26)) + name;
  return name;
}

async function api(path, options = {}) {
  const reply = await fetch(path, { ...options, credentials: "same-origin" });
  // No session (or it ended): sign in, and come back.
  if (reply.status === 401) {
    location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
    throw new Error("signing in");
  }
  const body = await reply.json();
  if (!reply.ok) throw new Error(body.error || reply.statusText);
  return body;
}

function view() {
  const top = Math.max(0, Math.floor(scroller.scrollTop / ROW));
  const left = Math.max(0, Math.floor(scroller.scrollLeft / COL));
  const height = Math.ceil(scroller.clientHeight / ROW) + 1;
  const width = Math.ceil(scroller.clientWidth / COL) + 1;
  return { top, left, bottom: top + height, right: left + width };
}

function text(cell) {
  if (!cell) return "";
  if (cell.error) return cell.error;
  if (cell.value === true) return "TRUE";
  if (cell.value === false) return "FALSE";
  return cell.value === null ? "" : String(cell.value);
}

async function refresh() {
  if (!sheet) return;
  if (pending) { pending = "again"; return; }
  pending = true;
  try {
    const v = view();
    const range = `${columnName(v.left)}${v.top + 1}:${columnName(v.right)}${v.bottom + 1}`;
    // At least the entries the event stream announced: the server's own
    // view of the sheet may not hold them yet.
    const data = await api(`/api/cells?sheet=${encodeURIComponent(sheet)}&range=${range}&at=${known}`);
    // As far as the sheet goes, and a little past what is in view.
    rows = Math.max(rows, v.bottom + 200, data.sheet_rows + 100);
    cols = Math.max(cols, v.right + 10, data.sheet_columns + 10);
    space.style.height = (rows * ROW + ROW) + "px";
    space.style.width = (cols * COL + HEAD) + "px";
    render(v, data);
    status.textContent = `${sheet} · entry ${data.end}` + (snapshot === null ? "" : ` · snapshot at ${snapshot}`);
  } catch (err) {
    status.textContent = "error: " + err.message;
  } finally {
    const again = pending === "again";
    pending = false;
    if (again) refresh();
  }
}

function render(v, data) {
  space.replaceChildren();
  for (let c = v.left; c <= v.right; c++) {
    const head = document.createElement("div");
    head.className = "head"; head.textContent = columnName(c);
    // Kept in view while the grid scrolls under it.
    head.style.left = (HEAD + c * COL) + "px"; head.style.top = scroller.scrollTop + "px";
    space.appendChild(head);
  }
  for (let r = v.top; r <= v.bottom; r++) {
    const head = document.createElement("div");
    head.className = "head"; head.textContent = r + 1;
    head.style.left = scroller.scrollLeft + "px"; head.style.width = HEAD + "px"; head.style.top = (ROW + r * ROW) + "px";
    space.appendChild(head);
  }
  // The reply covers the range asked, cut to the cells in use.
  const first = data.range ? parseRef(data.range.split(":")[0]) : null;
  (data.rows || []).forEach((cells, i) => cells.forEach((cell, j) => {
    if (!cell || !first) return;
    const r = first.row + i, c = first.col + j;
    const div = document.createElement("div");
    div.className = "cell" + (typeof cell.value === "number" ? " num" : "");
    div.dataset.ref = columnName(c) + (r + 1);
    div.textContent = text(cell);
    div.style.left = (HEAD + c * COL) + "px"; div.style.top = (ROW + r * ROW) + "px";
    space.appendChild(div);
  }));
}

function parseRef(ref) {
  const m = /^([A-Z]+)(\d+)$/.exec(ref);
  let col = 0;
  for (const ch of m[1]) col = col * 26 + (ch.charCodeAt(0) - 64);
  return { row: Number(m[2]) - 1, col: col - 1 };
}

space.addEventListener("dblclick", (event) => {
  if (!writable) { status.textContent = "read-only: this session cannot edit"; return; }
  const r = Math.floor((event.offsetY + (event.target === space ? 0 : event.target.offsetTop) - ROW) / ROW);
  const c = Math.floor((event.offsetX + (event.target === space ? 0 : event.target.offsetLeft) - HEAD) / COL);
  if (r < 0 || c < 0) return;
  edit(columnName(c) + (r + 1), r, c);
});

function edit(ref, r, c) {
  const box = document.createElement("div");
  box.className = "cell";
  box.style.left = (HEAD + c * COL) + "px"; box.style.top = (ROW + r * ROW) + "px";
  const input = document.createElement("input");
  input.id = "editor"; input.dataset.ref = ref;
  const old = space.querySelector(`.cell[data-ref="${ref}"]`);
  input.value = old ? old.textContent : "";
  box.appendChild(input); space.appendChild(box); input.focus();
  input.addEventListener("keydown", async (e) => {
    if (e.key === "Escape") { box.remove(); return; }
    if (e.key !== "Enter") return;
    try {
      await api(`/api/cells?sheet=${encodeURIComponent(sheet)}`, {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ [ref]: input.value }),
      });
    } catch (err) {
      // Said, and left said: a refresh would write over it.
      box.remove();
      status.textContent = `${ref} not saved: ${err.message}`;
      return;
    }
    box.remove();
    refresh();
  });
}

function follow() {
  if (events) events.close();
  events = new EventSource(`/api/events?sheet=${encodeURIComponent(sheet)}`);
  events.addEventListener("entries", (e) => { known = Math.max(known, JSON.parse(e.data).end); refresh(); });
  events.addEventListener("reset", () => { known = 0; refresh(); });
  events.addEventListener("snapshot", (e) => { snapshot = JSON.parse(e.data).sequence_id; refresh(); });
  events.addEventListener("caught-up", () => { document.body.dataset.live = "true"; });
  // The sheet left its path (removed, moved, replaced): stop following it.
  events.addEventListener("gone", (e) => {
    events.close(); events = null; document.body.dataset.live = "false";
    status.textContent = JSON.parse(e.data).error;
  });
  events.onerror = () => { status.textContent = "reconnecting…"; };
}

async function choose(path) {
  sheet = path; known = 0; snapshot = null;
  history.replaceState(null, "", "?" + new URLSearchParams({ sheet: path }));
  follow();
  await refresh();
}

scroller.addEventListener("scroll", refresh);
window.addEventListener("resize", refresh);
select.addEventListener("change", () => choose(select.value));

(async () => {
  try {
    const { sheets, access, session } = await api("/api/sheets");
    writable = access === "write";
    document.getElementById("signout").hidden = !session;
    for (const path of sheets) select.add(new Option(path, path));
    const wanted = params.get("sheet") || sheets[0];
    if (wanted) { select.value = wanted; await choose(wanted); } else status.textContent = "no sheets yet";
  } catch (err) { status.textContent = "error: " + err.message; }
})();
