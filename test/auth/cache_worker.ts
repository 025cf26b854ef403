/**
 * Child process for the token cache concurrency test: writes one fast entry
 * into a shared cache folder at the same moment as its siblings.
 *
 * Usage: deno run -A test/auth/cache_worker.ts DIR INDEX
 * Prints "ready", waits for one line on stdin (the start signal, so that all
 * workers hit the lock together), writes the entry for scope `scope-INDEX`
 * and exits 0. Any cache warning goes to stderr and makes the exit code 3:
 * the test expects no lost write and no skipped lock.
 */
import { TokenCache } from "../../src/auth/cache.ts";

export const WORKER_IDENTITY = {
  authorityHost: "https://127.0.0.1:1",
  tenantId: "tenant-for-concurrency",
  clientId: "client-for-concurrency",
  credential: "secret:0000",
};

async function waitForStartSignal(): Promise<void> {
  const reader = Deno.stdin.readable.getReader();
  try {
    const decoder = new TextDecoder();
    let seen = "";
    while (!seen.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += decoder.decode(value);
    }
  } finally {
    reader.releaseLock();
  }
}

async function main(): Promise<number> {
  const [dir, index] = Deno.args;
  let warned = false;
  const cache = await TokenCache.open(dir, WORKER_IDENTITY, {
    // Generous: twenty processes queue for the lock on a possibly busy machine.
    lockTimeoutMs: 15_000,
    warn: (message) => {
      warned = true;
      console.error(message);
    },
  });
  console.log("ready");
  await waitForStartSignal();
  await cache.writeFast({
    kind: "app",
    accessToken: `token-${index}`,
    expiresOn: Math.floor(Date.now() / 1000) + 3600,
    scopes: [`scope-${index}`],
  });
  return warned ? 3 : 0;
}

if (import.meta.main) Deno.exit(await main());
