// Opens GraphiQL in Debian's headless Chromium, runs the preloaded query and prints what
// happened as one JSON object on stdout (tests/edge/test_graphiql_browser.py asserts on it).
// With --subscription, it then puts that document in the editor, runs it (over the
// gateway's WebSocket) and waits until the result shows --expect.
//
//   node tests/edge/browser/graphiql_check.mjs http://127.0.0.1:PORT/graphql \
//       [--screenshot FILE] [--subscription TEXT --expect SUBSTRING]
//
// Every request to a host other than the page's own is recorded and aborted, so a page
// that still reaches for a CDN fails fast instead of hanging on a closed network
// (watched_page.mjs, shared with status_check.mjs).
import { TIMEOUT_MS, emptyReport, openWatchedPage } from "./watched_page.mjs";

const [url, ...rest] = process.argv.slice(2);
if (!url) {
  console.error("usage: graphiql_check.mjs URL [--screenshot FILE] [--subscription TEXT --expect S]");
  process.exit(2);
}
const option = (name) => (rest.includes(name) ? rest[rest.indexOf(name) + 1] : null);
const screenshot = option("--screenshot");
const subscription = option("--subscription");
const expected = option("--expect");

const report = emptyReport({
  editorQuery: null,
  resultText: null,
  dialogOpened: false,
  subscriptionResult: null,
  error: null,
});

const viewport = { width: 1280, height: 800 };
const { browser, page } = await openWatchedPage(url, report, { viewport });
try {
  // GraphiQL's editors are CodeMirror 5 instances: read their whole text, not the lines
  // CodeMirror happens to have rendered.
  const editorText = (selector) =>
    page.evaluate((s) => document.querySelector(s)?.CodeMirror?.getValue() ?? null, selector);
  try {
    await page.goto(url, { waitUntil: "load", timeout: TIMEOUT_MS });
    await page.waitForSelector(".graphiql-query-editor .CodeMirror", { timeout: TIMEOUT_MS });
    report.editorQuery = await editorText(".graphiql-query-editor .CodeMirror");
    await page.click(".graphiql-execute-button", { timeout: TIMEOUT_MS });
    await page.waitForFunction(
      () => (document.querySelector(".result-window .CodeMirror")?.CodeMirror?.getValue() ?? "")
        .includes('"edges"'),
      null,
      { timeout: TIMEOUT_MS },
    );
    report.resultText = await editorText(".result-window .CodeMirror");
    // A dialog injects its own <style> element: it must pass the page's CSP too.
    await page.click('[aria-label="Open settings dialog"]', { timeout: TIMEOUT_MS });
    await page.waitForSelector('[role="dialog"]', { timeout: TIMEOUT_MS });
    report.dialogOpened = true;
    await page.keyboard.press("Escape");
    if (subscription) {
      await page.evaluate(
        (text) => document.querySelector(".graphiql-query-editor .CodeMirror").CodeMirror.setValue(text),
        subscription,
      );
      // GraphiQL reads the document and its operation name from the editor after a pause.
      await page.waitForTimeout(500);
      await page.click(".graphiql-execute-button", { timeout: TIMEOUT_MS });
      await page.waitForFunction(
        (s) => (document.querySelector(".result-window .CodeMirror")?.CodeMirror?.getValue() ?? "")
          .includes(s),
        expected,
        { timeout: 30_000 },
      );
      report.subscriptionResult = await editorText(".result-window .CodeMirror");
    }
  } catch (e) {
    report.error = String(e);
  }
  report.resultText ??= await editorText(".result-window .CodeMirror");
  report.cspViolations = await page.evaluate(() => window.__cspViolations ?? []);
  if (screenshot) await page.screenshot({ path: screenshot });
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(report) + "\n");
