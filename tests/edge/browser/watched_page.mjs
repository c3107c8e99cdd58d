// A page of the gateway's, opened in Debian's headless Chromium and watched: what the
// browser checks (graphiql_check.mjs, status_check.mjs) share.
//
//   const { browser, page } = await openWatchedPage(url, report, { viewport: {...} });
//
// Every request the page makes is recorded in report.requests; one to a host other than
// the page's own (data: URLs aside) is recorded in report.externalRequests and aborted, so
// a page that reaches for a CDN fails fast instead of hanging on a closed network. Failed
// requests, console errors, page errors and WebSockets are recorded too; CSP violations
// are kept in the page (window.__cspViolations) for the check to read.
import { chromium } from "playwright-core";

export const TIMEOUT_MS = 15_000;

export function emptyReport(extra) {
  return {
    requests: [],
    externalRequests: [],
    failedRequests: [],
    consoleErrors: [],
    pageErrors: [],
    cspViolations: [],
    websockets: [],
    ...extra,
  };
}

export async function openWatchedPage(url, report, contextOptions) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
  });
  try {
    const context = await browser.newContext(contextOptions);
    const origin = new URL(url).host;
    await context.route("**/*", (route) => {
      const requested = route.request().url();
      if (requested.startsWith("data:") || new URL(requested).host === origin) {
        return route.continue();
      }
      report.externalRequests.push(requested);
      return route.abort("blockedbyclient");
    });
    await context.addInitScript(() => {
      window.__cspViolations = [];
      document.addEventListener("securitypolicyviolation", (e) =>
        window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`),
      );
    });
    const page = await context.newPage();
    page.on("request", (r) => report.requests.push(`${r.method()} ${r.url()}`));
    page.on("requestfailed", (r) => report.failedRequests.push(r.url()));
    page.on("console", (m) => m.type() === "error" && report.consoleErrors.push(m.text()));
    page.on("pageerror", (e) => report.pageErrors.push(String(e)));
    page.on("websocket", (ws) => report.websockets.push(ws.url()));
    return { browser, page };
  } catch (error) {
    await browser.close();
    throw error;
  }
}
