// Opens the gateway's status page in Debian's headless Chromium at a phone's viewport
// (390×844) and prints what it found as one JSON object on stdout
// (tests/edge/status/test_status_browser.py asserts on it): every request the page made,
// console errors, page errors and CSP violations, each source's name, status and
// freshness and each region's counts as the DOM shows them, and whether the page is wider
// than the screen.
//
//   node tests/edge/browser/status_check.mjs http://127.0.0.1:PORT/status?lang=fr \
//       --screenshot FILE
//
// Every request to a host other than the page's own is recorded and aborted.
import { TIMEOUT_MS, emptyReport, openWatchedPage } from "./watched_page.mjs";

const [url, ...rest] = process.argv.slice(2);
if (!url) {
  console.error("usage: status_check.mjs URL --screenshot FILE");
  process.exit(2);
}
const option = (name) => (rest.includes(name) ? rest[rest.indexOf(name) + 1] : null);
const screenshot = option("--screenshot");

const report = emptyReport({
  lang: null,
  title: null,
  switchText: null,
  sources: [],
  regions: [],
  tableRight: null,
  scrollWidth: null,
  clientWidth: null,
  error: null,
});

const { browser, page } = await openWatchedPage(url, report, {
  viewport: { width: 390, height: 844 },
  deviceScaleFactor: 1,
  isMobile: true,
  hasTouch: true,
});
try {
  try {
    await page.goto(url, { waitUntil: "load", timeout: TIMEOUT_MS });
    // What a reader sees: the text as rendered (innerText), not the markup.
    Object.assign(
      report,
      await page.evaluate(() => ({
        lang: document.documentElement.lang,
        title: document.querySelector("h1")?.innerText ?? null,
        switchText: document.querySelector("#lang-switch")?.innerText ?? null,
        sources: [...document.querySelectorAll("[data-source]")].map((card) => ({
          id: card.dataset.source,
          name: card.querySelector('[data-field="name"]')?.innerText ?? null,
          status: card.querySelector('[data-field="status"]')?.dataset.status ?? null,
          statusText: card.querySelector('[data-field="status"]')?.innerText ?? null,
          freshness: card.querySelector('[data-field="freshness"]')?.innerText ?? null,
          visible: card.getBoundingClientRect().width > 0,
        })),
        regions: [...document.querySelectorAll("[data-region]")].map((row) => ({
          region: row.dataset.region,
          clinics: row.querySelector('[data-field="clinics"]')?.innerText ?? null,
          slots: row.querySelector('[data-field="slots"]')?.innerText ?? null,
          right: row.getBoundingClientRect().right,
        })),
        tableRight: document.querySelector(".table")?.getBoundingClientRect().right ?? null,
        scrollWidth: document.documentElement.scrollWidth,
        clientWidth: document.documentElement.clientWidth,
      })),
    );
  } catch (e) {
    report.error = String(e);
  }
  report.cspViolations = await page.evaluate(() => window.__cspViolations ?? []);
  if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(report) + "\n");
