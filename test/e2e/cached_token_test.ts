/**
 * -OutputFormat Token and Sasl from the cache print exactly what the full run prints. A secret
 * given as a value may be answered by the short cached-token path (src/app/cached_token.ts);
 * the same secret piped in (`-clientsecret -`) always goes through the full run, because standard
 * input can be read only once. Both runs must agree on stdout, stderr and the exit code, and
 * neither may ask Entra ID for a token.
 */
import assert from "node:assert/strict";
import { type CliResult, runCli } from "./cli.ts";
import {
  APP,
  APP_NO_ROLES,
  APP_POP_ONLY,
  MAILBOX,
  SECRET,
  startTestBed,
  TENANT,
} from "../bed/testbed.ts";

function tokenPosts(requests: { method: string; path: string }[]): number {
  return requests.filter((r) => r.method === "POST" && r.path.endsWith("/token")).length;
}

function same(a: CliResult, b: CliResult, what: string): void {
  assert.deepEqual(
    { code: a.code, stdout: a.stdout, stderr: a.stderr },
    { code: b.code, stdout: b.stdout, stderr: b.stderr },
    what,
  );
}

Deno.test("a cached token or XOAUTH2 string prints the same with the secret given or piped, warnings included", async (t) => {
  const bed = await startTestBed();
  const args = (clientId: string, ...more: string[]) => [
    ...bed.common(),
    "-clientId",
    clientId,
    "-targetMailbox",
    MAILBOX,
    ...more,
  ];
  /** The value run (may take the short path) and the piped run (always the full run). */
  const both = async (clientId: string, ...more: string[]) => {
    const given = await runCli([...args(clientId, ...more), "-clientsecret", SECRET]);
    const piped = await runCli([...args(clientId, ...more), "-clientsecret", "-"], {
      stdin: `${SECRET}\n`,
    });
    return { given, piped };
  };
  try {
    await t.step("a clean token: the token, or the XOAUTH2 string, and nothing else", async () => {
      // The first run fetches and caches the token; the ones after it must not ask again.
      const first = await runCli([...args(APP, "-OutputFormat", "Token"), "-clientsecret", SECRET]);
      assert.equal(first.code, 0, first.stderr);
      const posts = tokenPosts(bed.entra.requests);
      for (const format of ["Token", "Sasl"]) {
        const { given, piped } = await both(APP, "-OutputFormat", format);
        same(given, piped, format);
        assert.equal(given.code, 0, given.stderr);
        assert.equal(given.stderr, "");
        const expected = format === "Token"
          ? first.stdout
          : `${btoa(`user=${MAILBOX}\x01auth=Bearer ${first.stdout.trim()}\x01\x01`)}\n`;
        assert.equal(given.stdout, expected);
      }
      assert.equal(tokenPosts(bed.entra.requests), posts, "served from the cache");
    });

    await t.step("a token without the role is not served again, by either", async () => {
      // The full run drops a token that lacks what the protocol needs (the admin may have fixed
      // the setup since), so each of these runs asks Entra ID for a new one.
      await runCli([...args(APP_NO_ROLES, "-OutputFormat", "Token"), "-clientsecret", SECRET]);
      const posts = tokenPosts(bed.entra.requests);
      const { given, piped } = await both(APP_NO_ROLES, "-OutputFormat", "Token");
      assert.equal(tokenPosts(bed.entra.requests), posts + 2, "a fresh token each");
      for (const r of [given, piped]) {
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stderr, "");
        assert.equal(r.stdout.split(".").length, 3, "a token");
      }
    });

    await t.step("a POP3-only token without -Protocol: the token, as the full run", async () => {
      await runCli([...args(APP_POP_ONLY, "-OutputFormat", "Token"), "-clientsecret", SECRET]);
      const posts = tokenPosts(bed.entra.requests);
      const { given, piped } = await both(APP_POP_ONLY, "-OutputFormat", "Token");
      same(given, piped, "POP3 only");
      assert.equal(given.code, 0, given.stderr);
      assert.equal(given.stderr, "");
      assert.equal(tokenPosts(bed.entra.requests), posts, "served from the cache");
    });

    await t.step(
      "-Verbose, and the tenant's ID as the client ID: both print the same",
      async () => {
        const verbose = await both(APP, "-OutputFormat", "Token", "-Verbose");
        // The secret is never shown; the verbose lines name how the secret came, so compare the rest.
        assert.equal(verbose.given.stdout, verbose.piped.stdout);
        assert.match(verbose.given.stderr, /VERBOSE: Token from the cache/);
        const mixup = await both(TENANT, "-OutputFormat", "Token");
        same(mixup.given, mixup.piped, "client ID = tenant ID");
        assert.notEqual(mixup.given.stderr, "");
      },
    );

    await t.step("a cache file open to other users: tightened, and said so, by both", async () => {
      const open = async () => {
        for await (const entry of Deno.readDir(`${bed.dir}/cache`)) {
          if (entry.name.endsWith(".json")) {
            await Deno.chmod(`${bed.dir}/cache/${entry.name}`, 0o644);
          }
        }
      };
      await open();
      const given = await runCli([...args(APP, "-OutputFormat", "Token"), "-clientsecret", SECRET]);
      await open();
      const piped = await runCli([...args(APP, "-OutputFormat", "Token"), "-clientsecret", "-"], {
        stdin: SECRET,
      });
      same(given, piped, "cache file mode 0644");
      assert.match(given.stderr, /^WARNING: token cache: .* was open to other users .*\(0600\)$/m);
    });

    await t.step("a damaged cache file: the same warning, then a fresh token", async () => {
      const corrupt = async () => {
        for await (const entry of Deno.readDir(`${bed.dir}/cache`)) {
          if (entry.name.endsWith(".json")) {
            await Deno.writeTextFile(`${bed.dir}/cache/${entry.name}`, "{ not json");
          }
        }
      };
      await corrupt();
      const given = await runCli([...args(APP, "-OutputFormat", "Token"), "-clientsecret", SECRET]);
      await corrupt();
      const piped = await runCli([...args(APP, "-OutputFormat", "Token"), "-clientsecret", "-"], {
        stdin: SECRET,
      });
      assert.equal(given.code, 0, given.stderr);
      assert.equal(given.stderr, piped.stderr);
      assert.match(given.stderr, /WARNING: .*cache/i);
    });
  } finally {
    await bed.close();
  }
});
