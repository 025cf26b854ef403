/**
 * Bridge faults (issue 17): the real `-Bridge` child process against a broken upstream and
 * broken clients. Upstream refuses every token (a revoked app), upstream silent (TCP or TLS up,
 * never a greeting), client silent, client gone in the middle of a large RETR or IMAP FETCH, a
 * session that outlives `sessionSeconds`, failed logins from one address: each gets the
 * protocol's temporary failure or a clean close within the timeouts, one log line, and the bridge
 * keeps serving.
 * Then 50 concurrent POP3 sessions with one token request in all.
 *
 * Timing assertions are lower bounds (the bridge waited) and generous upper bounds (it did not
 * hang), so a loaded machine does not make them fail.
 */
import assert from "node:assert/strict";
import {
  assertNoSecretIn,
  type Bridge,
  KNOWN,
  LOCAL_PASSWORD,
  LOCAL_USER,
  pop3Login,
  rawMessage,
  startBridgeWith,
} from "./bridge_helpers.ts";
import { startDovecot } from "../bed/dovecot.ts";
import { APP, MAILBOX, SECRET, startTestBed, type TestBed } from "../bed/testbed.ts";
import { type ExchangeOptions, type ExchangeServer, startExchange } from "../bed/exchange.ts";
import { LineClient } from "../bed/line_client.ts";
import { waitUntil } from "../bed/wait.ts";
import { hashPassword } from "../../src/bridge/password.ts";

/** A message large enough that the client is gone long before the relay has sent it. */
function largeMessage(): string {
  const line = "0123456789abcdefghijklmnopqrstuvwxyz".repeat(2);
  return [
    "From: Scanner <scanner@testbed.localhost>",
    `To: ${MAILBOX}`,
    "Subject: A large scan",
    "",
    ...Array.from({ length: 60_000 }, (_, i) => `${i} ${line}`),
    "",
  ].join("\n");
}

/** Milliseconds `action` took. */
async function timed<T>(action: () => Promise<T>): Promise<[T, number]> {
  const started = performance.now();
  const result = await action();
  return [result, performance.now() - started];
}

/** An IMAP LOGIN through the bridge; returns the tagged reply (or "(closed)"). */
async function imapLogin(port: number): Promise<string> {
  const c = await LineClient.tcp(port);
  try {
    await c.nextLine();
    await c.send(`a1 LOGIN ${LOCAL_USER} "${LOCAL_PASSWORD}"`);
    for (let line = await c.line(30_000); line !== null; line = await c.line(30_000)) {
      if (line.startsWith("a1 ")) return line;
    }
    return "(closed)";
  } finally {
    await c.close();
  }
}

/** SMTP AUTH PLAIN through the bridge; returns the reply (or "(closed)"). */
async function smtpLogin(port: number): Promise<string> {
  const c = await LineClient.tcp(port);
  try {
    await c.nextLine();
    await c.send("EHLO scanner.localhost");
    await c.until("250 ", 30_000);
    await c.send(`AUTH PLAIN ${btoa(`\0${LOCAL_USER}\0${LOCAL_PASSWORD}`)}`);
    return await c.line(30_000) ?? "(closed)";
  } finally {
    await c.close();
  }
}

/** A normal POP3 session (login, STAT, QUIT) that must work after every fault. */
async function assertServing(port: number): Promise<void> {
  const lines = await pop3Login(port, LOCAL_PASSWORD, ["STAT", "QUIT"]);
  assert.equal(lines[2], "+OK Logged in.", lines.join("\n"));
  assert.match(lines[3] ?? "", /^\+OK 3 \d+$/, lines.join("\n"));
}

Deno.test("bridge faults: temporary failures or clean closes within the timeouts, and the bridge keeps serving", async (t) => {
  const bed: TestBed = await startTestBed();
  const dir = await Deno.makeTempDir({ prefix: "gia-bridge-faults-" });
  const bridges: Bridge[] = [];
  const logs: string[] = [];
  const servers: ExchangeServer[] = [];
  const silentTcp: Deno.Listener[] = [];
  const held: Deno.Conn[] = [];
  const stopBridge = async (b: Bridge) => {
    bridges.splice(bridges.indexOf(b), 1);
    logs.push(await b.stop());
  };
  try {
    await Deno.writeTextFile(`${dir}/secret`, `${SECRET}\n`, { mode: 0o600 });
    const passwordHash = await hashPassword(LOCAL_PASSWORD);
    const tls = { certPem: bed.pki.certPem, keyPem: bed.pki.keyPem };
    const options: ExchangeOptions = {
      tls,
      tokenKey: { publicKeyPem: bed.entra.signingKey.publicKeyPem },
      mailboxPermissions: { [MAILBOX]: [APP] },
      contents: { [MAILBOX]: [largeMessage(), ...KNOWN.map((m, i) => rawMessage(i + 1, m))] },
    };
    const exchange = await startExchange(options);
    servers.push(exchange);
    const tokens = () => bed.entra.tokenRequests.length;

    await t.step(
      "upstream refuses the token (revoked app): the temporary failure, at most two token requests a session",
      async () => {
        const b = await startBridgeWith(bed, dir, "revoked", {
          upstream: { POP3: exchange.pop3Port, IMAP: exchange.imapPort, SMTP: exchange.smtpPort },
          passwordHash,
        });
        bridges.push(b);
        const ports = { POP3: b.ports.POP3 ?? 0, IMAP: b.ports.IMAP ?? 0, SMTP: b.ports.SMTP ?? 0 };
        const first = tokens();
        await assertServing(ports.POP3);
        assert.equal(tokens() - first, 1, "one token while it works");

        // From now on Exchange refuses every token of the app (the issuer no longer matches).
        options.tokenKey.issuer = "https://revoked.invalid/";
        try {
          // The cached token is refused: dropped, one retry with a fresh one, refused too.
          let [before, logins] = [tokens(), exchange.sessions.length];
          const [pop3, pop3Ms] = await timed(() => pop3Login(ports.POP3, LOCAL_PASSWORD));
          assert.match(pop3.at(-1) ?? "", /^-ERR \[SYS\/TEMP\] /, pop3.join("\n"));
          assert.ok(pop3Ms < 20_000, `answered after ${Math.round(pop3Ms)} ms`);
          assert.equal(tokens() - before, 1, "one fresh token for the retry");
          assert.equal(exchange.sessions.length - logins, 2, "two upstream logins, no more");
          await b.waitForLines(/POP3 .*result=upstream failed \(POP3_AUTH_FAILED: /, 1);

          // The refused token was dropped: the next session starts with a fresh one, no retry.
          for (
            const [protocol, login, reply] of [
              ["IMAP", () => imapLogin(ports.IMAP), /^a1 NO \[UNAVAILABLE\] /],
              ["SMTP", () => smtpLogin(ports.SMTP), /^454 4\.7\.0 /],
            ] as const
          ) {
            [before, logins] = [tokens(), exchange.sessions.length];
            const [line, ms] = await timed(login);
            assert.match(line, reply, protocol);
            assert.ok(ms < 20_000, `${protocol} answered after ${Math.round(ms)} ms`);
            assert.equal(tokens() - before, 1, `${protocol}: one token request`);
            assert.equal(exchange.sessions.length - logins, 1, `${protocol}: one upstream login`);
            await b.waitForLines(
              new RegExp(`${protocol} .*result=upstream failed \\(${protocol}_AUTH_FAILED: `),
              1,
            );
          }
        } finally {
          options.tokenKey.issuer = undefined;
        }
        // Access restored: the same bridge serves again.
        await assertServing(ports.POP3);
        await stopBridge(b);
      },
    );

    await t.step(
      "upstream silent (TCP or TLS up, never a greeting): the temporary failure within upstreamSeconds",
      async () => {
        const silent = await startExchange({ ...options, behaviour: "silent" });
        servers.push(silent);
        // POP3: a listener that accepts TCP and never even starts TLS.
        const tcp = Deno.listen({ hostname: "127.0.0.1", port: 0 });
        silentTcp.push(tcp);
        (async () => {
          for await (const conn of tcp) held.push(conn);
        })().catch(() => {});
        const b = await startBridgeWith(bed, dir, "silent", {
          upstream: {
            POP3: (tcp.addr as Deno.NetAddr).port,
            IMAP: silent.imapPort,
            SMTP: silent.smtpPort,
          },
          passwordHash,
          timeouts: { upstreamSeconds: 2, idleSeconds: 20, shutdownSeconds: 5 },
        });
        bridges.push(b);
        const hanging = timed(() =>
          Promise.all([
            pop3Login(b.ports.POP3 ?? 0, LOCAL_PASSWORD),
            imapLogin(b.ports.IMAP ?? 0),
            smtpLogin(b.ports.SMTP ?? 0),
          ])
        );
        // Meanwhile the bridge answers other sessions.
        const other = await LineClient.tcp(b.ports.POP3 ?? 0);
        try {
          await other.nextLine();
          await other.send("CAPA");
          assert.ok((await other.until(".", 30_000)).includes("USER"));
        } finally {
          await other.close();
        }
        const [[pop3, imap, smtp], ms] = await hanging;
        assert.match(pop3.at(-1) ?? "", /^-ERR \[SYS\/TEMP\] /, pop3.join("\n"));
        assert.match(imap, /^a1 NO \[UNAVAILABLE\] /);
        assert.match(smtp, /^454 4\.7\.0 /);
        // It waited for the upstream (2 s) and no longer than the timeouts allow (not 30 s).
        assert.ok(ms >= 1500, `answered after ${Math.round(ms)} ms: did it wait at all?`);
        assert.ok(ms < 15_000, `answered after ${Math.round(ms)} ms`);
        await b.waitForLines(/result=upstream failed \(TIMEOUT: no answer from 127\.0\.0\.1:/, 3);
        await stopBridge(b);
      },
    );

    const b = await startBridgeWith(bed, dir, "clients", {
      upstream: { POP3: exchange.pop3Port, IMAP: exchange.imapPort, SMTP: exchange.smtpPort },
      passwordHash,
      timeouts: { upstreamSeconds: 5, idleSeconds: 1.5, shutdownSeconds: 5 },
      failureDelaySeconds: 0.25,
    });
    bridges.push(b);
    const port = b.ports.POP3 ?? 0;

    await t.step(
      "client silent before and after the login (POP3, IMAP, SMTP): closed after idleSeconds, logged",
      async () => {
        // Each wait is timed from before the client's last step: the bridge's idle timer cannot
        // have started earlier, so at least idleSeconds pass however loaded the machine is.
        const since = performance.now();
        const c = await LineClient.tcp(port);
        const silentPort = c.localPort;
        try {
          assert.match(await c.nextLine(), /^\+OK /);
          const closed = await c.closedByServer(20_000);
          const ms = performance.now() - since;
          assert.ok(closed, "the bridge closes a silent client");
          assert.ok(ms >= 1400, `closed after ${Math.round(ms)} ms`);
        } finally {
          await c.close();
        }
        await b.waitForLines(
          new RegExp(`POP3 127\\.0\\.0\\.1:${silentPort} user=- .*result=client idle `),
          1,
        );

        const r = await LineClient.tcp(port);
        const idlePort = r.localPort;
        try {
          await r.nextLine();
          await r.send(`USER ${LOCAL_USER}`);
          await r.line(30_000);
          const since = performance.now();
          await r.send(`PASS ${LOCAL_PASSWORD}`);
          assert.equal(await r.line(30_000), "+OK Logged in.");
          const closed = await r.closedByServer(20_000);
          const ms = performance.now() - since;
          assert.ok(closed, "the relay closes a silent client");
          assert.ok(ms >= 1400, `closed after ${Math.round(ms)} ms`);
        } finally {
          await r.close();
        }
        await b.waitForLines(
          new RegExp(`:${idlePort} user=${LOCAL_USER} .*result=relayed \\(idle\\)`),
          1,
        );

        // IMAP and SMTP: logged in, then silent.
        const silentAfterLogin = async (protocol: "IMAP" | "SMTP") => {
          const c = await LineClient.tcp(b.ports[protocol] ?? 0);
          try {
            await c.nextLine();
            const since = performance.now();
            if (protocol === "IMAP") {
              await c.send(`a1 LOGIN ${LOCAL_USER} "${LOCAL_PASSWORD}"`);
              assert.match(await c.line(30_000) ?? "", /^a1 OK /);
            } else {
              await c.send(`AUTH PLAIN ${btoa(`\0${LOCAL_USER}\0${LOCAL_PASSWORD}`)}`);
              assert.match(await c.line(30_000) ?? "", /^235 /);
            }
            const closed = await c.closedByServer(20_000);
            const ms = performance.now() - since;
            assert.ok(closed, `${protocol}: the bridge closes a silent client`);
            assert.ok(ms >= 1400, `${protocol}: closed after ${Math.round(ms)} ms`);
            return c.localPort;
          } finally {
            await c.close();
          }
        };
        const [imapPort, smtpPort] = await Promise.all([
          silentAfterLogin("IMAP"),
          silentAfterLogin("SMTP"),
        ]);
        await b.waitForLines(
          new RegExp(`IMAP 127\\.0\\.0\\.1:${imapPort} .*result=relayed \\(idle\\)`),
          1,
        );
        await b.waitForLines(
          new RegExp(
            `SMTP 127\\.0\\.0\\.1:${smtpPort} .*result=relayed \\(idle, 0 message\\(s\\)\\)`,
          ),
          1,
        );
        await assertServing(port);
      },
    );

    await t.step(
      "client disconnects in the middle of a large RETR: the bridge ends the relay, logs, keeps serving",
      async () => {
        const c = await LineClient.tcp(port);
        const gonePort = c.localPort;
        try {
          await c.nextLine();
          await c.send(`USER ${LOCAL_USER}`);
          await c.line(30_000);
          await c.send(`PASS ${LOCAL_PASSWORD}`);
          assert.equal(await c.line(30_000), "+OK Logged in.");
          await c.send("RETR 1");
          assert.match(await c.line(30_000) ?? "", /^\+OK/);
          assert.equal(await c.line(30_000), "From: Scanner <scanner@testbed.localhost>");
        } finally {
          await c.close(); // gone, with megabytes still to come
        }
        const line = (await b.cli.waitForStderr(
          new RegExp(
            `:${gonePort} user=${LOCAL_USER} .*result=relayed \\((client closed|error)\\) .*`,
          ),
        ))[0];
        const down = Number(line.match(/bytes_out=(\d+)/)?.[1]);
        assert.ok(down < largeMessage().length, `not the whole message: ${line}`);
        await assertServing(port);
      },
    );

    await t.step(
      "client disconnects in the middle of a large IMAP FETCH (Dovecot): the bridge ends the relay, logs, keeps serving",
      async () => {
        const dovecot = await startDovecot(bed.dovecotOptions({
          mechanisms: ["xoauth2"],
          seed: { [MAILBOX]: [largeMessage(), rawMessage(1, KNOWN[0])] },
        }));
        try {
          const d = await startBridgeWith(bed, dir, "fetch", {
            upstream: { IMAP: dovecot.imapsPort },
            passwordHash,
          });
          bridges.push(d);
          const imapPort = d.ports.IMAP ?? 0;
          const c = await LineClient.tcp(imapPort);
          const gonePort = c.localPort;
          try {
            await c.nextLine();
            await c.send(`a1 LOGIN ${LOCAL_USER} "${LOCAL_PASSWORD}"`);
            assert.match((await c.until("a1 ", 30_000)).at(-1) ?? "", /^a1 OK /);
            await c.send("a2 SELECT INBOX");
            assert.match((await c.until("a2 ", 30_000)).at(-1) ?? "", /^a2 OK /);
            await c.send("a3 FETCH 1 BODY[]");
            assert.match(await c.line(30_000) ?? "", /^\* 1 FETCH .*\{\d+\}$/);
            assert.equal(await c.line(30_000), "From: Scanner <scanner@testbed.localhost>");
          } finally {
            await c.close(); // gone, with megabytes still to come
          }
          const line = (await d.cli.waitForStderr(
            new RegExp(
              `IMAP 127\\.0\\.0\\.1:${gonePort} user=${LOCAL_USER} .*result=relayed \\((client closed|error)\\) .*`,
            ),
          ))[0];
          const down = Number(line.match(/bytes_out=(\d+)/)?.[1]);
          assert.ok(down < largeMessage().length, `not the whole message: ${line}`);
          // The bridge closed its upstream connection too: Dovecot saw the IMAP session end.
          await waitUntil(
            async () => /imap\(box@contoso\.com\).*Disconnected/.test(await dovecot.log()),
            {
              timeoutMs: 20_000,
              what: async () => `Dovecot's disconnect in:\n${await dovecot.log()}`,
            },
          );
          assert.match(await imapLogin(imapPort), /^a1 OK /, "the bridge keeps serving");
          await stopBridge(d);
        } finally {
          await dovecot.stop();
        }
      },
    );

    await t.step(
      "failed logins from one address are slowed more each time, across sessions, and logged",
      async () => {
        const delays: number[] = [];
        for (const user of [LOCAL_USER, LOCAL_USER, "odd\u001b[2Juser"]) {
          const [lines, ms] = await timed(() => pop3Login(port, "not the password", [], user));
          assert.equal(lines.at(-1), "-ERR [AUTH] Authentication failed.", lines.join("\n"));
          delays.push(ms);
        }
        // Each login waits first for the address's earlier failures: none, 0.25 s, 0.5 s at least
        // (lower bounds: a loaded machine only adds).
        assert.ok(delays[1] >= 200, `second ${Math.round(delays[1])} ms`);
        assert.ok(delays[2] >= 450, `third ${Math.round(delays[2])} ms`);
        await b.waitForLines(/failed login user='scanner': \d+ failure\(s\) from 127\.0\.0\.1 /, 2);
        const odd = await b.cli.waitForStderr(/failed login user='([^'\n]*)': 3 failure\(s\)/);
        assert.equal(odd[1], "odd\\x1b[2Juser", "shown safely");
        // A right password waits as long (4 x 0.25 s after 3 failures): a guesser learns nothing
        // by hanging up early; then the bridge serves it.
        const [, goodMs] = await timed(() => assertServing(port));
        assert.ok(goodMs >= 950, `good login after ${Math.round(goodMs)} ms`);
      },
    );

    await t.step("session limit: a busy session is closed at sessionSeconds, logged", async () => {
      const limited = await startBridgeWith(bed, dir, "limited", {
        upstream: { POP3: exchange.pop3Port },
        passwordHash,
        timeouts: { upstreamSeconds: 5, idleSeconds: 20, shutdownSeconds: 5, sessionSeconds: 6 },
      });
      bridges.push(limited);
      // A token first, so that the login below takes well under the session's 6 s.
      await assertServing(limited.ports.POP3 ?? 0);
      const busy = async (login: boolean) => {
        const c = await LineClient.tcp(limited.ports.POP3 ?? 0);
        try {
          await c.nextLine();
          if (login) {
            await c.send(`USER ${LOCAL_USER}`);
            await c.line(30_000);
            await c.send(`PASS ${LOCAL_PASSWORD}`);
            assert.equal(await c.line(30_000), "+OK Logged in.");
          }
          const started = performance.now();
          // Never idle: a command every 200 ms until the bridge closes.
          while (performance.now() - started < 60_000) {
            await c.send(login ? "NOOP" : "CAPA").catch(() => {});
            if (await c.closedByServer(200)) return performance.now() - started;
          }
          return Infinity;
        } finally {
          await c.close();
        }
      };
      const [relayed, before] = await Promise.all([busy(true), busy(false)]);
      assert.ok(relayed < 40_000, `relay closed after ${Math.round(relayed)} ms`);
      assert.ok(before < 40_000, `closed before the login after ${Math.round(before)} ms`);
      await limited.waitForLines(/result=relayed \(session limit\)/, 1);
      await limited.waitForLines(/user=- .*result=session limit /, 1);
      await assertServing(limited.ports.POP3 ?? 0);
      await stopBridge(limited);
    });

    await t.step("50 concurrent POP3 sessions: all served, one token request in all", async () => {
      const many = await startBridgeWith(bed, dir, "many", {
        upstream: { POP3: exchange.pop3Port },
        passwordHash,
        timeouts: { upstreamSeconds: 20, idleSeconds: 60, shutdownSeconds: 5 },
      });
      bridges.push(many);
      const [before, logins] = [tokens(), exchange.sessions.length];
      const sessions = await Promise.all(
        Array.from(
          { length: 50 },
          () => pop3Login(many.ports.POP3 ?? 0, LOCAL_PASSWORD, ["STAT", "QUIT"]),
        ),
      );
      for (const lines of sessions) {
        assert.equal(lines[2], "+OK Logged in.", lines.join("\n"));
        assert.match(lines[3] ?? "", /^\+OK 3 \d+$/, lines.join("\n"));
      }
      assert.equal(tokens() - before, 1, "one token request for all 50");
      assert.equal(exchange.sessions.length - logins, 50);
      await many.waitForLines(/result=relayed \(/, 50, 60_000);
      const log = await (async () => {
        await stopBridge(many);
        return logs.at(-1) ?? "";
      })();
      assert.match(log, /bridge: stopped \(1 token request\(s\) in all\)/);
    });

    await t.step(
      "SIGTERM stops each bridge cleanly; no secret, password or token in the logs",
      async () => {
        for (const bridge of [...bridges]) await stopBridge(bridge);
        const all = logs.join("\n");
        assertNoSecretIn(all, bed);
      },
    );
  } finally {
    for (const bridge of bridges) await bridge.stop().catch(() => {});
    for (const conn of held) {
      try {
        conn.close();
      } catch {
        // closed already
      }
    }
    for (const l of silentTcp) l.close();
    for (const s of servers) await s.close();
    await bed.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
