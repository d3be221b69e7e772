// The browser test of `infinisheet serve`'s page, run by `cargo xtask test`
// (xtask/src/browser.rs) in Debian's Chromium through playwright-core:
// the page opens a sheet and shows A1, an edit of B2 made in the page
// lands in the sheet, and an edit by a separate `infinisheet set` process
// appears without a reload. A screenshot is left as an artifact.
//
//   PLAYWRIGHT_MODULES=DIR node page.mjs URL INFINISHEET_BINARY HOME SCREENSHOT
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";

// playwright-core lives in the cache directory xtask installed it into
// (PLAYWRIGHT_MODULES), not beside this script.
const require = createRequire(`${process.env.PLAYWRIGHT_MODULES}/`);
const { chromium } = require("playwright-core");

const [url, binary, home, screenshot] = process.argv.slice(2);
const cell = (ref) => `.cell[data-ref="${ref}"]`;
const step = (what) => console.log(`browser: ${what}`);

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
} finally {
  await browser.close();
}
