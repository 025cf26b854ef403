/**
 * Opens a URL in the user's browser: `$BROWSER` when set (a command line;
 * `%s` is replaced by the URL, else the URL is appended), otherwise the
 * platform's opener. The browser is not waited for: it may run for minutes.
 */

function openerCommands(url: string, env: (n: string) => string | undefined): string[][] {
  const browser = env("BROWSER");
  if (browser) {
    // xdg's convention: a colon-separated list of commands to try in order.
    return browser.split(":").filter((c) => c.trim()).map((command) => {
      const words = command.trim().split(/\s+/);
      return words.some((w) => w.includes("%s"))
        ? words.map((w) => w.replaceAll("%s", url))
        : [...words, url];
    });
  }
  switch (Deno.build.os) {
    case "darwin":
      return [["open", url]];
    case "windows":
      // `start` is a cmd built-in; the empty title keeps a quoted URL from becoming the title.
      return [["cmd", "/c", "start", '""', url.replace(/&/g, "^&")]];
    default:
      return [["xdg-open", url], ["sensible-browser", url], ["x-www-browser", url]];
  }
}

/**
 * Tries each opener; true as soon as one starts and has not failed within a
 * moment (openers like xdg-open exit 0 quickly; a real browser keeps running).
 */
export async function openBrowser(
  url: string,
  env: (n: string) => string | undefined = (n) => Deno.env.get(n),
): Promise<boolean> {
  for (const [cmd, ...args] of openerCommands(url, env)) {
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(cmd, { args, stdin: "null", stdout: "null", stderr: "null" })
        .spawn();
    } catch {
      continue; // not installed
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const early = await Promise.race([
      child.status,
      new Promise<null>((resolve) => timer = setTimeout(() => resolve(null), 1500)),
    ]);
    clearTimeout(timer);
    if (early === null) {
      child.unref(); // still running: a browser; do not keep this process alive for it
      return true;
    }
    if (early.success) return true;
  }
  return false;
}
