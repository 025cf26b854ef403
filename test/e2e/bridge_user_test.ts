/**
 * Bridge mode with a cached user sign-in as its credential (issue 17): `"credential": { "user":
 * ... }`. Without a cached sign-in the bridge stops at start (exit 3) and names the command that
 * signs in; that very command (device code against the fake Entra ID's public client) makes the
 * sign-in; then the bridge logs POP3 and SMTP clients in to the user's own mailbox on Dovecot and
 * IMAP clients to a shared one on the Exchange-like server, renews the user token silently with the refresh
 * token (no sign-in ever), and `-Bridge -Diagnose` reports the user credential.
 */
import assert from "node:assert/strict";
import { type LiveCli, runCli, spawnCli } from "./cli.ts";
import {
  PUBLIC_APP,
  SHARED,
  SHARED_NO_ACCESS,
  startTestBed,
  TENANT,
  type TestBed,
  USER,
} from "../bed/testbed.ts";
import { LineClient } from "../bed/line_client.ts";
import { waitUntil } from "../bed/wait.ts";
import { hashPassword } from "../../src/bridge/password.ts";

const PASSWORD = "Local pass of the user bridge";

interface Bridge {
  cli: LiveCli;
  ports: Record<string, number>;
  stop(): Promise<string>;
}

/** Writes a bridge configuration with the user credential; returns its path. */
async function writeConfig(
  bed: TestBed,
  name: string,
  cacheDir: string,
  listeners: { protocol: "POP3" | "IMAP" | "SMTP"; upstreamPort: number }[],
  accounts: Record<string, string>,
  hash: string,
): Promise<string> {
  const path = `${bed.dir}/${name}.json`;
  await Deno.writeTextFile(
    path,
    JSON.stringify({
      tenantId: TENANT,
      clientId: PUBLIC_APP,
      credential: { user: USER, tokenCachePath: cacheDir },
      authorityHost: bed.entra.url,
      caFile: bed.pki.caFile,
      listeners: listeners.map((l) => ({ protocol: l.protocol, address: "127.0.0.1", port: 0 })),
      upstream: Object.fromEntries(
        listeners.map((
          l,
        ) => [l.protocol.toLowerCase(), { host: "127.0.0.1", port: l.upstreamPort }]),
      ),
      accounts: Object.fromEntries(
        Object.entries(accounts).map(([user, mailbox]) => [user, { mailbox, passwordHash: hash }]),
      ),
      timeouts: { upstreamSeconds: 5, idleSeconds: 20, shutdownSeconds: 5 },
      failureDelaySeconds: 0.2,
    }),
    { mode: 0o600 },
  );
  return path;
}

async function startBridge(config: string, protocols: string[]): Promise<Bridge> {
  const cli = spawnCli(["-Bridge", config]);
  const ports: Record<string, number> = {};
  for (const protocol of protocols) {
    const m = await cli.waitForStderr(
      new RegExp(`listening for ${protocol} on 127\\.0\\.0\\.1:(\\d+)`),
    );
    ports[protocol] = Number(m[1]);
  }
  return {
    cli,
    ports,
    async stop() {
      cli.kill("SIGTERM");
      const r = await cli.done;
      assert.equal(r.code, 0, r.stderr);
      return r.stderr;
    },
  };
}

/** One POP3 session: USER/PASS then `then`; every line received. */
async function pop3(port: number, user: string, then: string[]): Promise<string[]> {
  const c = await LineClient.tcp(port);
  try {
    const got = [await c.nextLine()];
    for (const command of [`USER ${user}`, `PASS ${PASSWORD}`, ...then]) {
      await c.send(command);
      const line = await c.line(10_000);
      got.push(line ?? "(closed)");
      if (line === null || line.startsWith("-ERR")) break;
    }
    return got;
  } finally {
    await c.close();
  }
}

/** One IMAP session: LOGIN, SELECT INBOX, LOGOUT; the tagged replies. */
async function imap(port: number, user: string): Promise<string[]> {
  const c = await LineClient.tcp(port);
  try {
    await c.nextLine();
    const tagged: string[] = [];
    for (const [tag, command] of [["a1", `LOGIN ${user} "${PASSWORD}"`], ["a2", "SELECT INBOX"]]) {
      await c.send(`${tag} ${command}`);
      for (;;) {
        const line = await c.line(10_000);
        if (line === null) return [...tagged, "(closed)"];
        if (line.startsWith(`${tag} `)) {
          tagged.push(line);
          break;
        }
      }
      if (!tagged.at(-1)?.startsWith(`${tag} OK`)) break;
    }
    await c.send("a3 LOGOUT");
    return tagged;
  } finally {
    await c.close();
  }
}

/** One SMTP session: EHLO, AUTH PLAIN, one message from `from`, QUIT; the last line of each reply. */
async function smtp(port: number, user: string, from: string): Promise<string[]> {
  const c = await LineClient.tcp(port);
  const replies: string[] = [];
  const reply = async () => {
    for (;;) {
      const line = await c.line(10_000);
      if (line === null) throw new Error(`closed after ${replies.join(" | ")}`);
      if (!/^\d{3}-/.test(line)) return line;
    }
  };
  try {
    replies.push(await reply());
    const plain = btoa(`\0${user}\0${PASSWORD}`);
    for (
      const command of [
        "EHLO scanner",
        `AUTH PLAIN ${plain}`,
        `MAIL FROM:<${from}>`,
        "RCPT TO:<someone@testbed.localhost>",
        "DATA",
      ]
    ) {
      await c.send(command);
      replies.push(await reply());
      if (/^[45]/.test(replies.at(-1) ?? "")) return replies;
    }
    for (const line of [`From: ${from}`, "Subject: scan", "", "A page.", "."]) await c.send(line);
    replies.push(await reply());
    await c.send("QUIT");
    replies.push(await reply());
    return replies;
  } finally {
    await c.close();
  }
}

/** The user's part of the device-code sign-in the CLI started. */
async function signIn(bed: TestBed, args: string[]): Promise<void> {
  const cli = spawnCli(args);
  const [, userCode] = await cli.waitForStderr(/enter the code (\S+) to authenticate/);
  await waitUntil(
    () => (bed.entra.deviceCodes.find((d) => d.userCode === userCode)?.polls ?? 0) >= 1,
    { timeoutMs: 15_000, what: `a poll of device code ${userCode}` },
  );
  bed.entra.approveDeviceCode(userCode, USER);
  const r = await cli.done;
  assert.equal(r.code, 0, r.stdout + r.stderr);
}

/** The sign-in command the bridge printed, as words after the program's name. */
function printedCommand(stderr: string): string[] {
  const m = /sign in once, as the account the bridge runs as, with: Get-IMAPAccessToken (.*)$/m
    .exec(stderr);
  assert.ok(m, stderr);
  return m[1].replace(/ \[[A-Z_]+\]$/, "").split(" ");
}

Deno.test("bridge with a cached user sign-in: exit 3 without one, then the printed sign-in, POP3 and SMTP to Dovecot, IMAP to a shared mailbox, -Diagnose", async (t) => {
  const bed = await startTestBed({ dovecot: true });
  const dovecot = bed.dovecot;
  assert.ok(dovecot);
  const cacheDir = `${bed.dir}/user-cache`;
  const hash = await hashPassword(PASSWORD);
  const bridges: Bridge[] = [];
  try {
    const config = await writeConfig(
      bed,
      "user",
      cacheDir,
      [{ protocol: "POP3", upstreamPort: dovecot.pop3sPort }, {
        protocol: "IMAP",
        upstreamPort: bed.exchange.imapPort,
      }, { protocol: "SMTP", upstreamPort: dovecot.submissionPort ?? 0 }],
      { adele: USER, shared: SHARED, team: SHARED_NO_ACCESS },
      hash,
    );
    let command: string[] = [];

    await t.step(
      "no cached sign-in: exit 3 at start, one line naming the sign-in command",
      async () => {
        const before = bed.entra.requests.length;
        const r = await runCli(["-Bridge", config]);
        assert.equal(r.code, 3, r.stderr);
        const lines = r.stderr.trim().split("\n");
        assert.equal(lines.length, 1, r.stderr);
        assert.match(lines[0], /^ERROR: -Bridge .*: no cached sign-in of adele@contoso\.com /);
        assert.doesNotMatch(r.stderr, /listening/);
        assert.equal(bed.entra.requests.length, before, "no request to Entra ID");
        command = printedCommand(r.stderr);
        assert.deepEqual(command.slice(-3), ["-DeviceCode", "-LoginHint", USER]);
        assert.ok(command.includes(cacheDir), "names the configured cache folder");
        const diagnose = await runCli(["-Bridge", config, "-Diagnose"]);
        assert.equal(diagnose.code, 3, diagnose.stderr);
        assert.match(
          diagnose.stderr,
          /^FAILED: token: -Bridge .*: no cached sign-in of adele@contoso\.com .* \[BRIDGE_SIGN_IN_REQUIRED\]$/m,
        );
      },
    );

    await t.step("the printed command signs in (device code) into that cache", async () => {
      await signIn(bed, [
        ...command,
        "-CaFile",
        bed.pki.caFile,
        "-Server",
        "127.0.0.1",
        "-Port",
        String(dovecot.imapsPort),
      ]);
    });

    const bridge = await startBridge(config, ["POP3", "IMAP", "SMTP"]);
    bridges.push(bridge);

    await t.step("POP3 to the user's own mailbox on Dovecot, with the cached token", async () => {
      await bridge.cli.waitForStderr(
        /^bridge: tokens for user adele@contoso\.com \(cached sign-in in \S+\.json, app /m,
      );
      const requests = bed.entra.tokenRequests.length;
      const lines = await pop3(bridge.ports.POP3, "adele", ["STAT", "QUIT"]);
      assert.equal(lines[2], "+OK Logged in.", lines.join("\n"));
      assert.match(lines[3], /^\+OK 1 \d+$/, lines.join("\n"));
      assert.equal(bed.entra.tokenRequests.length, requests, "the sign-in's token, no request");
      const log = await dovecot.log();
      assert.ok(log.includes(`Login: user=<${USER}>, method=XOAUTH2`), log);
    });

    await t.step(
      "a cached token the server refuses is dropped from the cache and renewed at once",
      async () => {
        const [file] = [...Deno.readDirSync(cacheDir)].filter((e) => e.name.endsWith(".json"));
        const path = `${cacheDir}/${file.name}`;
        const cache = JSON.parse(await Deno.readTextFile(path));
        const good: string = cache.fast[0].accessToken;
        // Same claims, broken signature: Dovecot refuses it, the cache still says it is valid.
        const bad = good.slice(0, -4) + (good.endsWith("AAAA") ? "BBBB" : "AAAA");
        cache.fast[0].accessToken = bad;
        await Deno.writeTextFile(path, JSON.stringify(cache), { mode: 0o600 });
        const grants = bed.entra.refreshGrants;
        const second = await startBridge(config, ["POP3", "IMAP"]);
        bridges.push(second);
        const lines = await pop3(second.ports.POP3, "adele", ["STAT", "QUIT"]);
        assert.equal(lines[2], "+OK Logged in.", lines.join("\n"));
        assert.equal(bed.entra.refreshGrants, grants + 1, "renewed with the refresh token");
        assert.ok(!(await Deno.readTextFile(path)).includes(bad), "the refused token is gone");
        await bridges.splice(bridges.indexOf(second), 1)[0].stop();
      },
    );

    await t.step(
      "IMAP to a mailbox the user has access to; Exchange refuses one without",
      async () => {
        assert.deepEqual((await imap(bridge.ports.IMAP, "shared")).map((l) => l.split(" ")[1]), [
          "OK",
          "OK",
        ]);
        const team = await imap(bridge.ports.IMAP, "team");
        assert.deepEqual(team, [
          "a1 OK Logged in.",
          "a2 BAD User is authenticated but not connected.",
        ]);
      },
    );

    await t.step("SMTP: a message sent as the user reaches Dovecot's relay sink", async () => {
      const before = dovecot.relayed.length;
      const replies = await smtp(bridge.ports.SMTP, "adele", USER);
      assert.equal(replies.at(-1)?.slice(0, 3), "221", replies.join("\n"));
      assert.equal(dovecot.relayed.length, before + 1);
      assert.equal(dovecot.relayed.at(-1)?.from, USER);
    });

    await t.step("-Bridge -Diagnose reports the user credential", async () => {
      const r = await runCli(["-Bridge", config, "-Diagnose"]);
      assert.match(
        r.stderr,
        /^OK: token for user adele@contoso\.com \(cached sign-in in .*user-cache\/[0-9a-f]+\.json, app [0-9a-f-]+\) from https:\/\/127\.0\.0\.1:\d+\//m,
      );
      assert.match(
        r.stderr,
        /^OK: POP3 login to 127\.0\.0\.1:\d+ for adele \(adele@contoso\.com\)$/m,
      );
      assert.match(r.stderr, /^OK: IMAP login to 127\.0\.0\.1:\d+ for shared /m);
    });

    await t.step("SIGTERM: clean stop; no token or password in the log", async () => {
      const log = await bridges.splice(0)[0].stop();
      for (const secret of [PASSWORD, ...bed.entra.issuedTokens]) {
        assert.ok(!log.includes(secret), "a secret in the bridge's log");
      }
      assert.doesNotMatch(log, /enter the code/, "never a sign-in");
    });
  } finally {
    for (const b of bridges) await b.stop().catch(() => {});
    await bed.close();
  }
});

Deno.test("bridge with a cached user sign-in renews the token silently before it expires, and says how to sign in again when it cannot", async (t) => {
  // 4-second tokens: msal renews them at once, the bridge after half their life.
  const bed = await startTestBed({ entra: { tokenLifetimeSeconds: 4 } });
  const cacheDir = `${bed.dir}/user-cache`;
  const bridges: Bridge[] = [];
  try {
    await signIn(bed, [
      ...bed.common().map((a) => (a === `${bed.dir}/cache` ? cacheDir : a)),
      "-clientId",
      PUBLIC_APP,
      "-DeviceCode",
      "-LoginHint",
      USER,
      "-Protocol",
      "POP3",
      "-Port",
      String(bed.exchange.pop3Port),
    ]);
    const config = await writeConfig(
      bed,
      "short",
      cacheDir,
      [{ protocol: "POP3", upstreamPort: bed.exchange.pop3Port }],
      { adele: USER },
      await hashPassword(PASSWORD),
    );
    const bridge = await startBridge(config, ["POP3"]);
    bridges.push(bridge);

    await t.step(
      "each login after half the token's life gets a renewed one, no sign-in",
      async () => {
        const grants = bed.entra.refreshGrants;
        const deviceCodes = bed.entra.deviceCodes.length;
        for (let i = 0; i < 2; i++) {
          const lines = await pop3(bridge.ports.POP3, "adele", ["STAT", "QUIT"]);
          assert.equal(lines[2], "+OK Logged in.", lines.join("\n"));
          assert.match(lines[3], /^\+OK \d+ \d+$/, lines.join("\n"));
          if (i === 0) await new Promise((r) => setTimeout(r, 2500));
        }
        assert.ok(bed.entra.refreshGrants >= grants + 2, "renewed with the refresh token");
        assert.equal(bed.entra.deviceCodes.length, deviceCodes, "never a new sign-in");
      },
    );

    await t.step(
      "a revoked sign-in: the session gets a temporary failure, the log says how to sign in again",
      async () => {
        bed.entra.revokeRefreshTokens(USER);
        await new Promise((r) => setTimeout(r, 2500));
        const lines = await pop3(bridge.ports.POP3, "adele", ["STAT"]);
        assert.match(lines.at(-1) ?? "", /^-ERR \[SYS\/TEMP\] /, lines.join("\n"));
        await bridge.cli.waitForStderr(
          /result=upstream failed \(AADSTS\d+: the cached sign-in of adele@contoso\.com cannot be renewed; sign in again with: Get-IMAPAccessToken /,
        );
        const r = await runCli(["-Bridge", config, "-Diagnose"]);
        assert.equal(r.code, 3, r.stderr);
        assert.match(
          r.stderr,
          /^FAILED: token: the cached sign-in of adele@contoso\.com cannot be renewed; sign in again with: Get-IMAPAccessToken .* -DeviceCode -LoginHint adele@contoso\.com \(Entra ID refused the token request: AADSTS50173: .*\) \[AADSTS50173\]$/m,
        );
      },
    );
  } finally {
    for (const b of bridges) await b.stop().catch(() => {});
    await bed.close();
  }
});
