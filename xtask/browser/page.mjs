// The browser test of `infinisheet serve`'s page, run by `cargo xtask test`
// (xtask/src/browser.rs) in Debian's Chromium through playwright-core:
// the page opens a sheet and shows A1, an edit of B2 made in the page
// lands in the sheet, and an edit by a separate `infinisheet set` process
// appears without a reload. A screenshot is left as an artifact. Then a
// page of another origin (a second loopback port) tries what a hostile
// site would — fetches in no-cors mode and form posts at the server — and
// the catalog is unchanged; and on a server with a token the page signs in
// through /login, with the token in no URL.
//
//   PLAYWRIGHT_MODULES=DIR node page.mjs URL INFINISHEET_BINARY HOME SCREENSHOT SERVER_LOG TOKEN_URL TOKEN
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { createRequire } from "node:module";

// playwright-core lives in the cache directory xtask installed it into
// (PLAYWRIGHT_MODULES), not beside this script.
const require = createRequire(`${process.env.PLAYWRIGHT_MODULES}/`);
const { chromium } = require("playwright-core");

const [url, binary, home, screenshot, serverLog, tokenUrl, token] = process.argv.slice(2);
const cell = (ref) => `.cell[data-ref="${ref}"]`;
const step = (what) => console.log(`browser: ${what}`);

// Waits until `done()` holds, checking it as the page's own polls do,
// for at most 30 s.
async function waitUntil(done, what) {
  const deadline = Date.now() + 30000;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1000, height: 600 } });
  page.on("pageerror", (err) => { console.error(`page error: ${err}`); process.exitCode = 1; });
  await page.goto(`${url}/?sheet=s`);
  await page.waitForSelector(`${cell("A1")}:has-text("42")`, { timeout: 30000 });
  step("A1 shows 42");

  // Double-click B2 (row 1, column 1: past the 50 px row heads and the
  // 24 px column heads), type, Enter.
  await page.locator("#space").dblclick({ position: { x: 50 + 100 + 20, y: 24 + 24 + 8 } });
  const editor = page.locator("#editor");
  await editor.waitFor({ timeout: 10000 });
  if ((await editor.getAttribute("data-ref")) !== "B2") throw new Error("the editor is not on B2");
  await editor.fill("hello");
  await editor.press("Enter");
  await page.waitForSelector(`${cell("B2")}:has-text("hello")`, { timeout: 30000 });
  const stored = execFileSync(binary, ["--home", home, "get", "s", "B2", "--raw"]).toString().trim();
  if (stored !== "hello") throw new Error(`the sheet holds ${JSON.stringify(stored)} at B2`);
  step("B2 edited in the page is in the sheet");

  // Another process edits C3; the page shows it without a reload. Several
  // rounds: each is a fresh race between the event stream and the
  // server's own view of the sheet (the page's reads ask for what the
  // stream announced).
  await page.waitForFunction(() => document.body.dataset.live === "true", null, { timeout: 30000 });
  for (const value of ["3", "4", "5", "6", "7"]) {
    execFileSync(binary, ["--home", home, "set", "s", "C3", value, "--no-worker"]);
    await page.waitForSelector(`${cell("C3")}:text-is("${value}")`, { timeout: 30000 });
  }
  step("C3 set by another process appeared live");
  // A sheet of any size: scrolled to row 5,000 (set before the page
  // opened), the page fetches that viewport and shows it.
  await page.evaluate(() => { document.getElementById("scroller").scrollTop = 4990 * 24; });
  await page.waitForSelector(`${cell("A5000")}:has-text("far")`, { timeout: 30000 });
  step("A5000 shows after scrolling there");
  await page.evaluate(() => { document.getElementById("scroller").scrollTop = 0; });
  await page.waitForSelector(`${cell("A1")}:has-text("42")`, { timeout: 30000 });
  await page.screenshot({ path: screenshot });
  step(`screenshot in ${screenshot}`);

  // A page of another origin: what any site the user visits could try.
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
  const listed = execFileSync(binary, ["--home", home, "ls"]).toString().trim();
  const a1 = execFileSync(binary, ["--home", home, "get", "s", "A1", "--raw"]).toString().trim();
  if (listed !== "s" || a1 !== "42") throw new Error(`the catalog changed: ls ${JSON.stringify(listed)}, A1 ${JSON.stringify(a1)}`);
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
} finally {
  await browser.close();
}
