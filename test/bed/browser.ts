/**
 * A real browser for the sign-in tests: headless Debian Chromium driven by playwright-core.
 *
 * As a script it stands in for the user's browser (`$BROWSER`): the CLI starts it with the
 * authorize URL and does not wait for it, so it ends by itself, within 30 s whatever happens.
 *
 *   deno run -A test/bed/browser.ts <URL>
 *
 * It opens the URL, fills the sign-in form of the fake Entra ID (entra.ts), clicks "Sign in" (or
 * "Cancel"), waits until the browser has been sent to the redirect URI and that answer has loaded
 * (msal's loopback page, or a failed load for a redirect URI nobody serves), then prints the final
 * URL and exits 0. Any failure (error page, wrong password, timeout) exits 1 with the reason on
 * stderr. Environment:
 *   GIA_TEST_PASSWORD        the password to type (required unless cancelling)
 *   GIA_TEST_USERNAME        typed over the pre-filled login_hint when set
 *   GIA_TEST_ACTION          `signin` (default) or `cancel`
 *   GIA_TEST_BROWSER_RESULT  file to append one JSON line {ok, url | error} to, so a test can see
 *                            what a browser it did not start did
 *
 * TLS: the context ignores certificate errors (the fake uses a CA made at test time).
 *
 * Nothing leaves loopback, so no page can reach a real Microsoft host, even through a redirect URI
 * such as .../oauth2/nativeclient: Chromium sends everything but loopback to a proxy that does not
 * exist and resolves no host name but localhost. (Playwright's `route` alone is not enough: it
 * does not see the requests that follow a redirect.)
 */
import { type BrowserContext, chromium, type Page, type Request } from "playwright-core";
import { waitUntil } from "./wait.ts";

export interface SignInOptions {
  /** Typed into `#password`; required for `signin`. */
  password?: string;
  /** Typed into `#username` (otherwise the login_hint pre-fill stays). */
  username?: string;
  /** Button to press; default `signin`. */
  action?: "signin" | "cancel";
  /** Bound on everything, browser start and close included; default and maximum 30 s. */
  timeoutMs?: number;
  /** Default `/usr/bin/chromium`. */
  executablePath?: string;
}

export interface SignInResult {
  /** Where the browser was sent last: the redirect URI with its query, for example. */
  url: string;
  /** HTTP status of that answer; absent when it could not load (nobody listens there). */
  status?: number;
  /** Why it could not load, e.g. `net::ERR_CONNECTION_REFUSED`. */
  failure?: string;
  /** Text of the page that loaded (msal's success or error template). */
  text?: string;
}

const MAX_MS = 30_000;
const CHROMIUM = "/usr/bin/chromium";
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  // Loopback is exempt from proxies by default; everything else goes to a closed port.
  "--proxy-server=http://127.0.0.1:9",
  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1, EXCLUDE [::1]",
];
const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);

function isLoopback(url: URL): boolean {
  return LOOPBACK.has(url.hostname);
}

function remaining(deadline: number): number {
  return Math.max(1, deadline - Date.now());
}

/** `promise`, or undefined after `ms`; the timer never outlives the call. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<undefined>((resolve) => timer = setTimeout(() => resolve(undefined), ms)),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** apt may still be installing Chromium when a test starts: wait for it, within the deadline. */
function waitForFile(path: string, deadline: number): Promise<true> {
  return waitUntil(async () => {
    try {
      await Deno.stat(path);
      return true;
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return false;
      throw error;
    }
  }, {
    timeoutMs: remaining(deadline),
    intervalMs: 250,
    what: `${path} to exist (is chromium installed?)`,
  });
}

/** Same scheme, host, port and path; a missing path equals "/" (browsers add it). */
function sameEndpoint(a: URL, b: URL): boolean {
  const path = (u: URL) => u.pathname.replace(/\/$/, "");
  return a.protocol === b.protocol && a.host === b.host && path(a) === path(b);
}

/** The text of the page's `#error` (Entra error page, or the sign-in form after a failure). */
async function pageError(page: Page): Promise<string | undefined> {
  const error = page.locator("#error");
  if ((await error.count()) === 0) return undefined;
  return (await error.first().textContent())?.trim() || "the page shows an error";
}

/**
 * Watches the main frame until it is sent to the redirect URI (or, without one, away from the
 * sign-in host) and that request has finished or failed. Rejects when an Entra page shows an
 * error after `armErrors()` is called.
 */
function watchRedirect(page: Page, start: URL) {
  const redirectUri = start.searchParams.get("redirect_uri");
  const target = redirectUri ? new URL(redirectUri) : undefined;
  const isRedirect = (url: URL) => target ? sameEndpoint(url, target) : url.origin !== start.origin;
  let settled = false;
  let resolve!: (request: Request) => void;
  let reject!: (error: Error) => void;
  const done = new Promise<Request>((res, rej) => {
    resolve = (request) => {
      settled = true;
      res(request);
    };
    reject = (error) => {
      settled = true;
      rej(error);
    };
  });
  // Nobody may be waiting yet when it rejects (e.g. during page.goto).
  done.catch(() => {});
  let redirect: Request | undefined;
  page.on("request", (request) => {
    if (settled || !request.isNavigationRequest() || request.frame() !== page.mainFrame()) return;
    let url: URL;
    try {
      url = new URL(request.url());
    } catch {
      return;
    }
    if (isRedirect(url)) redirect = request;
  });
  page.on("requestfinished", (request) => {
    if (request === redirect) resolve(request);
  });
  page.on("requestfailed", (request) => {
    if (request === redirect) resolve(request);
  });
  let errorsArmed = false;
  page.on("domcontentloaded", async () => {
    if (settled || !errorsArmed) return;
    try {
      if (new URL(page.url()).origin !== start.origin) return;
      const error = await pageError(page);
      if (error) reject(new Error(`sign-in page says: ${error}`));
    } catch {
      // The page moved on while it was read; the next event decides.
    }
  });
  return {
    done,
    get settled() {
      return settled;
    },
    armErrors() {
      errorsArmed = true;
    },
  };
}

async function drive(
  context: BrowserContext,
  start: URL,
  options: SignInOptions,
  deadline: number,
): Promise<SignInResult> {
  // First requests to other hosts fail fast and clearly; the flags above catch the rest.
  await context.route((url) => !isLoopback(url), (route) => route.abort("blockedbyclient"));
  const page = context.pages()[0] ?? await context.newPage();
  page.setDefaultTimeout(remaining(deadline));
  const watch = watchRedirect(page, start);
  try {
    await page.goto(start.href, { waitUntil: "domcontentloaded" });
  } catch (error) {
    // A goto that ends at a redirect URI nobody serves fails, and is still an answer.
    if (!watch.settled) throw error;
  }
  if (!watch.settled) {
    const error = await pageError(page);
    if (error) throw new Error(`sign-in page says: ${error}`);
    if ((await page.locator("#password").count()) === 0) {
      throw new Error(`no sign-in form at ${page.url()}`);
    }
    watch.armErrors();
    if (options.username !== undefined) await page.fill("#username", options.username);
    if ((options.action ?? "signin") === "signin") {
      await page.fill("#password", options.password ?? "");
      await page.click("#signin");
    } else {
      await page.click("#cancel");
    }
  }
  const request = await watch.done;
  const response = await request.response().catch(() => null);
  const result: SignInResult = { url: request.url() };
  if (response) {
    result.status = response.status();
    await page.waitForLoadState("load", { timeout: remaining(deadline) }).catch(() => {});
    result.text = (await page.locator("body").textContent().catch(() => null))?.trim();
  } else {
    result.failure = request.failure()?.errorText;
  }
  return result;
}

/**
 * Signs in on the fake Entra ID's page at `url` with a real headless Chromium and returns where
 * the browser was sent. Throws on an error page, a refused password or after the timeout.
 */
export async function signInWithBrowser(
  url: string,
  options: SignInOptions = {},
): Promise<SignInResult> {
  const timeoutMs = Math.min(options.timeoutMs ?? MAX_MS, MAX_MS);
  const deadline = Date.now() + timeoutMs;
  const start = new URL(url);
  if (!isLoopback(start)) {
    throw new Error(`refusing to open ${start.host}: the test browser visits loopback hosts only`);
  }
  if ((options.action ?? "signin") === "signin" && options.password === undefined) {
    throw new Error("no password to type (set GIA_TEST_PASSWORD)");
  }
  const executablePath = options.executablePath ?? CHROMIUM;
  await waitForFile(executablePath, deadline);
  const userDataDir = await Deno.makeTempDir({ prefix: "gia-chromium-" });
  let launching: Promise<BrowserContext> | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`sign-in did not finish within ${timeoutMs / 1000} s`)),
        remaining(deadline),
      );
    });
    launching = chromium.launchPersistentContext(userDataDir, {
      executablePath,
      headless: true,
      args: FLAGS,
      ignoreHTTPSErrors: true,
      timeout: remaining(deadline),
    });
    launching.catch(() => {});
    return await Promise.race([launching.then((c) => drive(c, start, options, deadline)), timeout]);
  } finally {
    clearTimeout(timer);
    // Close even when the timeout won the race while the browser was still starting.
    const context = launching ? await within(launching, 10_000).catch(() => undefined) : undefined;
    if (context) await within(context.close(), 10_000).catch(() => {});
    await Deno.remove(userDataDir, { recursive: true }).catch(() => {});
  }
}

function parseAction(value: string | undefined): "signin" | "cancel" {
  if (value === undefined || value === "" || value === "signin") return "signin";
  if (value === "cancel") return "cancel";
  throw new Error(`GIA_TEST_ACTION must be 'signin' or 'cancel', not '${value}'`);
}

async function main(): Promise<number> {
  const resultFile = Deno.env.get("GIA_TEST_BROWSER_RESULT");
  const report = async (line: Record<string, unknown>) => {
    if (resultFile) {
      await Deno.writeTextFile(resultFile, JSON.stringify(line) + "\n", { append: true });
    }
  };
  try {
    const [url] = Deno.args;
    if (!url) throw new Error("usage: deno run -A test/bed/browser.ts <URL>");
    const result = await signInWithBrowser(url, {
      password: Deno.env.get("GIA_TEST_PASSWORD"),
      username: Deno.env.get("GIA_TEST_USERNAME"),
      action: parseAction(Deno.env.get("GIA_TEST_ACTION")),
    });
    console.log(result.url);
    await report({ ok: true, ...result });
    return 0;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    console.error(`browser.ts: ${message}`);
    await report({ ok: false, error: message }).catch(() => {});
    return 1;
  }
}

if (import.meta.main) {
  // Backstop: whatever hangs (a browser that will not close), the process ends.
  const backstop = setTimeout(() => {
    console.error("browser.ts: gave up after 35 s");
    Deno.exit(1);
  }, MAX_MS + 5_000);
  Deno.unrefTimer(backstop);
  Deno.exit(await main());
}
