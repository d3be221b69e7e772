// The browser test of `infinisheet serve`'s page, run by `cargo xtask test`
// (xtask/src/browser.rs) in Debian's Chromium through playwright-core. The
// page as a spreadsheet user meets it: the keyboard (arrows, Tab, Enter,
// Home/End, Page Down, typing to edit, Escape to cancel, Delete to clear),
// the name box (a far cell, a range, a mistake), mouse and Shift
// selection, copy and paste of tab-separated ranges (a 100 x 10 paste is
// one log entry), number formats, the sheet picker with folders, the
// status line (saving, saved, offline and retrying), a visible error when
// a write fails, and an edit by a separate `infinisheet set` process
// arriving while the user is editing another cell. Every read the page
// makes is of about its view. A screenshot of the demo sheet is left as
// an artifact. Then a page of another origin (a second loopback port)
// tries what a hostile site would — fetches in no-cors mode and form posts
// at the server — and the catalog is unchanged; and on a server with a
// token the page signs in through /login, with the token in no URL.
//
//   PLAYWRIGHT_MODULES=DIR node page.mjs URL INFINISHEET_BINARY HOME SCREENSHOT SERVER_LOG TOKEN_URL TOKEN DEMO_SHEET
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { createRequire } from "node:module";

// playwright-core lives in the cache directory xtask installed it into
// (PLAYWRIGHT_MODULES), not beside this script.
const require = createRequire(`${process.env.PLAYWRIGHT_MODULES}/`);
const { chromium } = require("playwright-core");

const [url, binary, home, screenshot, serverLog, tokenUrl, token, demo] = process.argv.slice(2);
const cell = (ref) => `.cell[data-ref="${ref}"]`;
const step = (what) => console.log(`browser: ${what}`);
const cli = (...args) => execFileSync(binary, ["--home", home, ...args]).toString();
const check = (ok, what) => { if (!ok) throw new Error(what); };

// Waits until `done()` holds, checking it as the page's own polls do,
// for at most 30 s.
async function waitUntil(done, what) {
  const deadline = Date.now() + 30000;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
try {
  const context = await browser.newContext({ viewport: { width: 1000, height: 600 } });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: url });
  const page = await context.newPage();
  page.on("pageerror", (err) => { console.error(`page error: ${err}`); process.exitCode = 1; });
  // Every range the page reads: it reads about its view, never the sheet.
  const reads = [];
  page.on("request", (request) => {
    const asked = new URL(request.url());
    if (asked.pathname === "/api/cells" && request.method() === "GET") reads.push(asked.searchParams.get("range"));
  });
  const text = (ref) => page.locator(cell(ref)).textContent({ timeout: 30000 });
  // Shows `value` read from the sheet (not the page's own edit still on its way).
  const shows = (ref, value) => page.waitForSelector(`${cell(ref)}:not(.saving):text-is("${value}")`, { timeout: 30000 });
  const namebox = page.locator("#namebox");
  const go = async (where) => { await namebox.fill(where); await namebox.press("Enter"); };
  const state = () => page.locator("#status").getAttribute("data-state");
  const end = () => page.evaluate(async () => (await (await fetch("/api/cells?sheet=s&range=A1")).json()).end);
  const stored = (ref) => cli("get", "s", ref, "--raw").trim();

  await page.goto(`${url}/?sheet=s`);
  await shows("A1", "42");
  await page.waitForFunction(() => document.body.dataset.live === "true", null, { timeout: 30000 });
  await waitUntil(async () => (await state()) === "saved", "the status to say saved");
  check((await page.locator("#status").textContent()) === "All changes saved", "the status speaks storage");
  step("A1 shows 42; the status says all changes are saved");

  // The keyboard: arrows move, typing starts an edit, Enter saves and
  // moves down, Tab right, Home to column A, Escape cancels an edit.
  await page.locator("#grid").focus();
  await page.keyboard.press("ArrowRight");
  await page.keyboard.press("ArrowDown");
  check((await namebox.inputValue()) === "B2", `arrows led to ${await namebox.inputValue()}`);
  await page.keyboard.type("hello");
  check((await page.locator("#editor").getAttribute("data-ref")) === "B2", "typing did not edit B2");
  await page.keyboard.press("Enter");
  await shows("B2", "hello");
  await waitUntil(async () => (await state()) === "saved", "the edit to be saved");
  check(stored("B2") === "hello", `the sheet holds ${stored("B2")} at B2`);
  check((await namebox.inputValue()) === "B3", "Enter did not move down");
  await page.keyboard.press("Tab");
  await page.keyboard.type("x");
  await page.keyboard.press("Escape");
  check(await page.locator("#editor").isHidden(), "Escape left the editor open");
  check((await namebox.inputValue()) === "C3", "Tab did not move right");
  await page.keyboard.press("Home");
  check((await namebox.inputValue()) === "A3", "Home did not go to column A");
  await page.keyboard.press("PageDown");
  const paged = await namebox.inputValue();
  check(/^A(2[0-9])$/.test(paged), `Page Down led to ${paged}`);
  await page.keyboard.press("Control+Home");
  check((await namebox.inputValue()) === "A1", "Ctrl+Home did not go to A1");
  // One character is an edit too; arrows end an edit begun by typing.
  await go("A7");
  await page.keyboard.type("7");
  await page.keyboard.press("Enter");
  await page.keyboard.type("8");
  await page.keyboard.press("ArrowRight");
  check((await namebox.inputValue()) === "B8", `the arrow after typing led to ${await namebox.inputValue()}`);
  await shows("A8", "8");
  await waitUntil(async () => (await state()) === "saved", "the edits to be saved");
  check(stored("A7") === "7" && stored("A8") === "8", `one-character edits: ${stored("A7")}, ${stored("A8")}`);
  await waitUntil(async () => (await state()) === "saved", "the status to say saved");
  check(stored("C3") === "", "an edit cancelled with Escape was saved");
  step("arrows, typing, Enter, Tab, Home, Page Down, Escape");

  // Shift and the mouse select ranges; Delete clears one in one entry.
  cli("set", "s", "D2", "1", "--no-worker");
  cli("set", "s", "E3", "2", "--no-worker");
  await shows("E3", "2");
  await go("D2");
  await page.keyboard.press("Shift+ArrowRight");
  await page.keyboard.press("Shift+ArrowDown");
  check((await namebox.inputValue()) === "D2:E3", `Shift+arrows selected ${await namebox.inputValue()}`);
  // Escape leaves the active cell (where the selection began), and typing
  // edits it.
  await page.keyboard.press("Escape");
  check((await namebox.inputValue()) === "D2", `Escape left ${await namebox.inputValue()}`);
  await page.keyboard.type("z");
  check((await page.locator("#editor").getAttribute("data-ref")) === "D2", "typing over a selection did not edit its active cell");
  await page.keyboard.press("Escape");
  // Where B2 is (read at once: the grid redraws its cells every frame).
  await page.waitForSelector(cell("B2"));
  const box = await page.evaluate((sel) => { const r = document.querySelector(sel).getBoundingClientRect(); return { x: r.x, y: r.y }; }, cell("B2"));
  await page.mouse.click(box.x + 10, box.y + 10);
  await page.keyboard.down("Shift");
  await page.mouse.click(box.x + 2 * 100 + 10, box.y + 24 + 10);
  await page.keyboard.up("Shift");
  check((await namebox.inputValue()) === "B2:D3", `Shift+click selected ${await namebox.inputValue()}`);
  await page.mouse.move(box.x + 10, box.y + 10);
  await page.mouse.down();
  await page.mouse.move(box.x + 3 * 100 + 10, box.y + 24 + 10, { steps: 4 });
  await page.mouse.up();
  check((await namebox.inputValue()) === "B2:E3", `dragging selected ${await namebox.inputValue()}`);
  const before = await end();
  await page.keyboard.press("Delete");
  await page.waitForSelector(cell("E3"), { state: "detached", timeout: 30000 });
  await waitUntil(async () => (await state()) === "saved", "the clear to be saved");
  check((await end()) === before + 1, "clearing a range took more than one entry");
  check(stored("B2") === "" && stored("E3") === "" && stored("A1") === "42", "Delete cleared the wrong cells");
  step("Shift+arrows, Shift+click and a drag select ranges; Delete clears one in one entry");

  // The name box: a far cell, a range, a mistake.
  await go("A5000");
  await shows("A5000", "far");
  check((await namebox.inputValue()) === "A5000", "the name box does not name the cell");
  await go("A1000000");
  await page.waitForSelector(".head:text-is('1000000')", { timeout: 30000 });
  check((await namebox.inputValue()) === "A1000000", "the name box did not go to A1000000");
  const head = await page.locator(".head:text-is('1000000')").evaluate((el) => el.scrollWidth <= el.clientWidth);
  check(head, "row 1000000's number does not fit its head");
  await go("c7:d9");
  check((await namebox.inputValue()) === "C7:D9", `the range is ${await namebox.inputValue()}`);
  await go("C:D");
  check((await namebox.inputValue()) === "C1:D4294967296", `whole columns are ${await namebox.inputValue()}`);
  await go("nowhere");
  await page.waitForSelector("#problem:visible", { timeout: 30000 });
  check((await page.locator("#problem-text").textContent()).includes("is not a cell like A1000000"), "no error for a bad name");
  await page.click("#problem-close");
  step("the name box goes to A5000, A1000000 and a range, and says what a bad name is");

  // Reading a far viewport reads that viewport, nothing more.
  const cells = (range) => {
    const [a, b = a] = range.split(":");
    const at = (ref) => { const m = /^([A-Z]+)(\d+)$/.exec(ref); let c = 0; for (const ch of m[1]) c = c * 26 + ch.charCodeAt(0) - 64; return [Number(m[2]), c]; };
    const [r1, c1] = at(a), [r2, c2] = at(b);
    return (r2 - r1 + 1) * (c2 - c1 + 1);
  };
  const largest = Math.max(...reads.map(cells));
  check(largest <= 3000, `a read asked for ${largest} cells: ${reads.find((r) => cells(r) === largest)}`);
  const drawn = await page.locator("#layer > div").count();
  check(drawn < 1000, `${drawn} elements drawn for one view`);
  step(`${reads.length} reads, the largest ${largest} cells; ${drawn} elements drawn`);

  // Number formats show as `get` shows them; numbers to the right.
  cli("set", "s", "F1", "2.5", "--format", "0.00", "--no-worker");
  cli("set", "s", "G1", "1234567.891", "--format", "#,##0.00", "--no-worker");
  await go("A1");
  await shows("F1", "2.50");
  await shows("G1", "1,234,567.89");
  const align = await page.locator(cell("F1")).evaluate((el) => getComputedStyle(el).textAlign);
  check(align === "right", `a number is aligned ${align}`);
  check(cli("get", "s", "F1:G1").includes("1,234,567.89"), "get shows it otherwise");
  // Typing over a formatted number keeps its format.
  await go("F1");
  await page.keyboard.type("3");
  await page.keyboard.press("Enter");
  await shows("F1", "3.00");
  step("number formats shown as get shows them, numbers right-aligned, kept when typed over");

  // Copy and paste within the page carries cells exactly: formats, and
  // text that would read as another value.
  cli("set", "s", "H1", "'TRUE", "--no-worker");
  await shows("H1", "TRUE");
  await go("F1:H1");
  await page.keyboard.press("Control+C");
  await go("F3");
  await page.keyboard.press("Control+V");
  await shows("G3", "1,234,567.89");
  await shows("F3", "3.00");
  await waitUntil(async () => (await state()) === "saved", "the paste to be saved");
  const h3 = JSON.parse(cli("get", "s", "H3", "--json")).rows[0][0];
  check(h3.value === "TRUE", `the text TRUE pasted as ${JSON.stringify(h3)}`);
  // One value over a range fills it, in one entry.
  await page.evaluate(() => navigator.clipboard.writeText("fill"));
  await go("I1:I4");
  const fillStart = await end();
  await page.keyboard.press("Control+V");
  await shows("I4", "fill");
  await waitUntil(async () => (await state()) === "saved", "the fill to be saved");
  check((await end()) === fillStart + 1 && stored("I2") === "fill", "a value pasted over I1:I4 did not fill it in one entry");
  // Cells on the clipboard that are not its text (another page put them
  // there) are not pasted: the text is.
  await go("L1");
  await page.evaluate(() => {
    const data = new DataTransfer();
    data.setData("text/plain", "harmless");
    data.setData("application/x-infinisheet-cells", JSON.stringify([[{ value: "EVIL", format: "0.00" }]]));
    document.dispatchEvent(new ClipboardEvent("paste", { clipboardData: data, bubbles: true }));
  });
  await shows("L1", "harmless");
  step("copy and paste within the page keep formats and text; one value fills a range; crafted cells are not pasted");

  // Paste: 100 rows of 10 tab-separated fields from the clipboard are one
  // block entry; a quoted field keeps its tab and line break; an empty
  // field is an empty cell.
  const rows = [];
  for (let r = 0; r < 100; r++) rows.push(Array.from({ length: 10 }, (_, c) => (c === 0 ? `row ${r + 1}` : String(r * 10 + c))));
  rows[3][4] = "two\tparts\nand a line";
  rows[5][6] = "";
  const tsv = rows.map((row) => row.map((f) => (/[\t\n"]/.test(f) ? `"${f.replace(/"/g, '""')}"` : f)).join("\t")).join("\r\n") + "\r\n";
  await page.evaluate((t) => navigator.clipboard.writeText(t), tsv);
  await go("B20");
  const pasteStart = await end();
  await page.keyboard.press("Control+V");
  await shows("B20", "row 1");
  await waitUntil(async () => (await state()) === "saved", "the paste to be saved");
  check((await end()) === pasteStart + 1, `the paste took ${(await end()) - pasteStart} entries`);
  const got = JSON.parse(cli("get", "s", "B20:K119", "--json")).rows;
  const want = rows.map((row) => row.map((f) => (f === "" ? null : /^[0-9]+$/.test(f) ? Number(f) : f)));
  const values = got.map((row) => row.map((c) => (c ? c.value : undefined)));
  check(JSON.stringify(values) === JSON.stringify(want), `the pasted cells are ${JSON.stringify(values).slice(0, 300)}`);
  check((await namebox.inputValue()) === "B20:K119", "the paste is not selected");
  step("a 100 x 10 paste from the clipboard is one entry, every cell as pasted");

  // Copy: a range as tab-separated text, as the paste came in.
  await go("B22:F24");
  await page.keyboard.press("Control+C");
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  const wantCopy = rows.slice(2, 5).map((row) => row.slice(0, 5).map((f) => (/[\t\n"]/.test(f) ? `"${f.replace(/"/g, '""')}"` : f)).join("\t")).join("\n");
  check(copied === wantCopy, `copied ${JSON.stringify(copied)}`);
  step("copying B22:F24 gives tab-separated text");

  // Another process edits while the user edits a different cell: the
  // edit arrives, the user's own is untouched, and the page says so.
  await page.waitForFunction(() => document.body.dataset.live === "true", null, { timeout: 30000 });
  await go("B5");
  await page.keyboard.type("mine");
  for (const value of ["3", "4", "5"]) {
    cli("set", "s", "C3", value, "--no-worker");
    await shows("C3", value);
  }
  check((await page.locator("#editor").inputValue()) === "mine", "the edit in progress changed");
  check(await page.locator("#editor").isVisible(), "the editor closed");
  await page.waitForSelector("#news:has-text('Someone else')", { timeout: 30000 });
  await page.keyboard.press("Enter");
  await shows("B5", "mine");
  check(stored("B5") === "mine", "the user's edit was not saved");
  step("another process's edits of C3 arrived while B5 was being edited; both kept");

  // A write the server refuses is said, visibly; the grid does not keep it.
  await page.evaluate(() => navigator.clipboard.writeText("x\t".repeat(600000)));
  await go("A30");
  await page.keyboard.press("Control+V");
  await page.waitForSelector("#problem:visible", { timeout: 30000 });
  const refusal = await page.locator("#problem-text").textContent();
  check(refusal.includes("was not saved") && refusal.includes("KiB at a time"), `the refusal says ${refusal}`);
  await page.waitForSelector(cell("A30"), { state: "detached", timeout: 30000 });
  await page.click("#problem-close");
  step(`a refused write is shown: ${refusal}`);

  // Offline: edits wait and are retried, in the order they were made;
  // the status says so.
  await go("J1");
  await context.setOffline(true);
  await page.keyboard.type("first");
  await page.keyboard.press("Enter");
  await waitUntil(async () => (await state()) === "offline", "the status to say offline");
  check((await page.locator("#status").textContent()).includes("retrying"), "offline without retrying");
  await go("J1");
  await page.keyboard.type("second");
  await page.keyboard.press("Enter");
  await context.setOffline(false);
  await waitUntil(async () => (await state()) === "saved", "the status to say saved again");
  check(stored("J1") === "second", `two edits made offline landed as ${stored("J1")}`);
  step("offline: the status says retrying, and the edits land in order once back");

  // Another process's edit far away; a scroll there shows it.
  await page.evaluate(() => { const s = document.getElementById("scroller"); s.scrollLeft = 0; s.scrollTop = 4990 * 24; });
  await shows("A5000", "far");
  step("A5000 shows after scrolling there");

  // The sheet picker lists the catalog, folders too; the demo sheet.
  const options = await page.locator("#sheet optgroup[label='demo/'] option").allTextContents();
  check(options.length === 1 && demo.endsWith(options[0]), `the demo folder lists ${options}`);
  // An edit in progress when the sheet changes is saved to its own sheet.
  await go("K1");
  await page.keyboard.type("switched");
  await page.selectOption("#sheet", demo);
  await shows("A1", "item 1");
  await waitUntil(async () => (await state()) === "saved", "the edit to be saved");
  check(stored("K1") === "switched", "an edit in progress was lost with the sheet change");
  await shows("B3", "2.50");
  await page.screenshot({ path: screenshot });
  step(`the sheet picker opens ${demo}; screenshot in ${screenshot}`);
  await page.goBack();
  await shows("A1", "42");
  check((await page.locator("#sheet").inputValue()) === "s", "Back did not lead back to s");
  await context.close();

  // A page of another origin: what any site the user visits could try.
  const listedBefore = cli("ls") + cli("ls", "demo");
  const evil = createServer((_, reply) => {
    reply.setHeader("Content-Type", "text/html");
    reply.end(`<!doctype html><body>
<iframe name="one"></iframe><iframe name="two"></iframe>
<form id="cells" method="post" enctype="text/plain" target="one" action="${url}/api/cells?sheet=s"><input name='{"A1":"pwned","x":"' value='"}'></form>
<form id="storage" method="post" target="two" action="${url}/api/storage"><input name="x" value="y"></form>
<script>
(async () => {
  const wipe = new Uint8Array([3, 0, 5]);
  for (const [path, body, type] of [["/api/storage", wipe, "text/plain"], ["/api/cells?sheet=s", '{"A1":"pwned"}', "text/plain"], ["/api/storage", wipe, "application/x-www-form-urlencoded"]]) {
    await fetch("${url}" + path, { method: "POST", mode: "no-cors", credentials: "include", headers: { "Content-Type": type }, body }).catch(() => {});
  }
  document.getElementById("cells").submit();
  document.getElementById("storage").submit();
})();
</script></body>`);
  });
  await new Promise((done) => evil.listen(0, "127.0.0.1", done));
  const evilUrl = `http://127.0.0.1:${evil.address().port}/`;
  try {
    const other = await browser.newPage();
    await other.goto(evilUrl);
    // Each of the five reached the server and was refused: its access log
    // says so (the event to wait for; no sleep).
    const refused = () => readFileSync(serverLog, "utf8").split("\n")
      .filter((line) => line.includes("method=POST") && line.includes("status=403")).length;
    await waitUntil(() => refused() >= 5, "the server refusing five cross-site posts");
    await other.close();
  } finally {
    evil.close();
  }
  const listed = cli("ls") + cli("ls", "demo");
  const a1 = cli("get", "s", "A1", "--raw").trim();
  if (listed !== listedBefore || a1 !== "42") throw new Error(`the catalog changed: ls ${JSON.stringify(listed)}, A1 ${JSON.stringify(a1)}`);
  step("a page of another origin changed nothing (five posts refused)");

  // A server with a token: the page signs in, and the token is in no URL.
  const signed = await browser.newPage({ viewport: { width: 1000, height: 600 } });
  const urls = [];
  signed.on("request", (request) => urls.push(request.url()));
  await signed.goto(`${tokenUrl}/?sheet=s`);
  await signed.waitForURL(/\/login\?next=/, { timeout: 30000 });
  await signed.fill("#token", "wrong");
  await signed.click("button[type=submit]");
  await signed.waitForSelector("text=That is not this server's token.", { timeout: 30000 });
  await signed.fill("#token", token);
  await signed.click("button[type=submit]");
  await signed.waitForSelector(`${cell("A1")}:has-text("42")`, { timeout: 30000 });
  await signed.waitForFunction(() => document.body.dataset.live === "true", null, { timeout: 30000 });
  if (!signed.url().endsWith("/?sheet=s")) throw new Error(`signing in did not lead back to the sheet: ${signed.url()}`);
  if (urls.some((u) => u.includes(token))) throw new Error(`the token rode in a URL: ${urls.filter((u) => u.includes(token))}`);
  const cookies = await signed.context().cookies();
  if (!cookies.some((c) => c.httpOnly && c.sameSite === "Strict")) throw new Error(`no HttpOnly, SameSite=Strict session: ${JSON.stringify(cookies)}`);
  if (await signed.evaluate(() => document.cookie) !== "") throw new Error("a script can read the session cookie");
  step("signed in with the token through /login; the token in no URL, the session cookie HttpOnly and SameSite=Strict");
  await signed.click("#signout button");
  await signed.waitForURL(/\/login/, { timeout: 30000 });
  const after = await signed.evaluate(async () => (await fetch("/api/sheets")).status);
  if (after !== 401) throw new Error(`after signing out /api/sheets answered ${after}`);
  step("signed out: the session is gone");
} catch (err) {
  // What the first page showed when a step failed, beside the screenshot.
  for (const open of browser.contexts().flatMap((c) => c.pages())) {
    const said = await open.evaluate(() => ["status", "problem-text", "namebox", "news"]
      .map((id) => `${id}: ${JSON.stringify(document.getElementById(id)?.value ?? document.getElementById(id)?.textContent)}`)
      .join(", ")).catch(() => "");
    console.error(`on failure, ${open.url()}: ${said}`);
    await open.screenshot({ path: screenshot.replace(/\.png$/, "-failure.png") }).catch(() => {});
  }
  throw err;
} finally {
  await browser.close();
}
