/**
 * What the bridge's end-to-end tests share (`bridge_test.ts`, `bridge_faults_test.ts`): the local
 * account, seeded messages, a `-Bridge` child process on a free loopback port with a
 * configuration written for the test bed, and a raw POP3 login through it.
 */
import assert from "node:assert/strict";
import { type LiveCli, spawnCli } from "./cli.ts";
import { APP, MAILBOX, SECRET, TENANT, type TestBed } from "../bed/testbed.ts";
import { LineClient } from "../bed/line_client.ts";
import type { RunResult } from "../clients/harness.ts";

export const LOCAL_USER = "scanner";
export const LOCAL_PASSWORD = "Scanner pass 4 the bridge";

export const KNOWN = [
  { subject: "Invoice 1001 for March", body: "Please pay invoice 1001 by Friday." },
  { subject: "Delivery note 2002", body: "Three pallets leave the warehouse today." },
];

export function rawMessage(i: number, m: { subject: string; body: string }): string {
  return [
    "From: Sender <sender@testbed.localhost>",
    `To: ${MAILBOX}`,
    `Subject: ${m.subject}`,
    `Message-ID: <bridge-${i}@testbed.localhost>`,
    `Date: Mon, 1 Jan 2024 10:0${i}:00 +0000`,
    "",
    m.body,
    "",
  ].join("\n");
}

/** The bridge's log holds none of the secrets: the app's, the local password, a wrong one, tokens. */
export function assertNoSecretIn(log: string, bed: TestBed): void {
  for (const secret of [SECRET, LOCAL_PASSWORD, "not the password", ...bed.entra.issuedTokens]) {
    assert.ok(!log.includes(secret), "a secret in the bridge's log");
  }
}

export function show(r: RunResult): string {
  return `exit ${r.code}${
    r.timedOut ? " (timed out)" : ""
  }\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
}

export type Protocol = "POP3" | "IMAP" | "SMTP";

export interface Bridge {
  cli: LiveCli;
  /** The port of the first listener. */
  port: number;
  /** Each listener's port. */
  ports: Partial<Record<Protocol, number>>;
  /** Waits for the bridge's log to hold `count` matches of `pattern`. */
  waitForLines(pattern: RegExp, count: number, ms?: number): Promise<void>;
  stop(): Promise<string>;
}

export interface BridgeSettings {
  /** Upstream port per protocol; a listener for each. */
  upstream: Partial<Record<Protocol, number>>;
  passwordHash: string;
  /** Default MAILBOX. */
  mailbox?: string;
  /** The account's `allowedSenders`; default none. */
  allowedSenders?: string[];
  /** Default { upstreamSeconds: 5, idleSeconds: 20, shutdownSeconds: 5 }. */
  timeouts?: Record<string, number>;
  /** Default 0.3. */
  failureDelaySeconds?: number;
  /** More command-line arguments after `-Bridge <config>` (e.g. `-Verbose`). */
  args?: string[];
}

/** Writes a configuration for `upstreamPort` and starts `-Bridge` on a free loopback port. */
export function startBridge(
  bed: TestBed,
  dir: string,
  name: string,
  upstreamPort: number,
  passwordHash: string,
  protocol: Protocol = "POP3",
): Promise<Bridge> {
  return startBridgeWith(bed, dir, name, { upstream: { [protocol]: upstreamPort }, passwordHash });
}

/** Starts `-Bridge` with one loopback listener per upstream protocol in `settings`. */
export async function startBridgeWith(
  bed: TestBed,
  dir: string,
  name: string,
  settings: BridgeSettings,
): Promise<Bridge> {
  const config = `${dir}/${name}.json`;
  const protocols = Object.keys(settings.upstream) as Protocol[];
  await Deno.writeTextFile(
    config,
    JSON.stringify({
      _comment: "test bed: fake Entra ID, test CA, upstream on loopback",
      tenantId: TENANT,
      clientId: APP,
      credential: { secretFile: `${dir}/secret` },
      authorityHost: bed.entra.url,
      caFile: bed.pki.caFile,
      listeners: protocols.map((protocol) => ({ protocol, address: "127.0.0.1", port: 0 })),
      upstream: Object.fromEntries(
        protocols.map((p) => [p.toLowerCase(), { host: "127.0.0.1", port: settings.upstream[p] }]),
      ),
      accounts: {
        [LOCAL_USER]: {
          mailbox: settings.mailbox ?? MAILBOX,
          passwordHash: settings.passwordHash,
          allowedSenders: settings.allowedSenders,
        },
      },
      timeouts: settings.timeouts ?? { upstreamSeconds: 5, idleSeconds: 20, shutdownSeconds: 5 },
      failureDelaySeconds: settings.failureDelaySeconds ?? 0.3,
    }),
  );
  const cli = spawnCli(["-Bridge", config, ...(settings.args ?? [])]);
  const ports: Partial<Record<Protocol, number>> = {};
  for (const protocol of protocols) {
    const m = await cli.waitForStderr(
      new RegExp(`listening for ${protocol} on 127\\.0\\.0\\.1:(\\d+)`),
    );
    ports[protocol] = Number(m[1]);
  }
  return {
    cli,
    port: ports[protocols[0]] ?? 0,
    ports,
    async waitForLines(pattern, count, ms = 20_000) {
      const global = new RegExp(
        pattern.source,
        pattern.flags.includes("g") ? pattern.flags : pattern.flags + "g",
      );
      const deadline = performance.now() + ms;
      while ([...cli.stderr.matchAll(global)].length < count) {
        if (performance.now() > deadline) {
          throw new Error(
            `not ${count} stderr lines matching ${pattern} within ${ms} ms:\n${cli.stderr}`,
          );
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async stop() {
      cli.kill("SIGTERM");
      const r = await cli.done;
      assert.equal(r.code, 0, r.stderr);
      return r.stderr;
    },
  };
}

/** One POP3 session through the bridge with a raw client; returns every line received. */
export async function pop3Login(
  port: number,
  password: string,
  then: string[] = [],
  user = LOCAL_USER,
): Promise<string[]> {
  const c = await LineClient.tcp(port);
  try {
    const got = [await c.nextLine()];
    for (const command of ["USER " + user, "PASS " + password, ...then]) {
      await c.send(command);
      const line = await c.line(60_000);
      got.push(line ?? "(closed)");
      if (line === null || line.startsWith("-ERR")) break;
    }
    return got;
  } finally {
    await c.close();
  }
}
