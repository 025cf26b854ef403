/**
 * `-Bridge <config.json>`: reads and checks the configuration (exit 2 on any problem, before
 * anything listens), loads the credential, starts the listeners and serves until SIGTERM or
 * Ctrl+C; then stops accepting and lets sessions finish within `timeouts.shutdownSeconds`.
 * `-BridgePasswordHash`: reads a password from standard input and prints its scrypt hash.
 */
import { lazy } from "../lazy.ts";
import { fileProblem } from "../cli/options.ts";
import { toToolError, UsageError } from "../errors.ts";
import { readBoundedText, readFileBoundedSync } from "../bounded_input.ts";
import { acquireAppToken, type AppCredential } from "../auth/token.ts";
import { type BridgeConfig, type BridgeCredential, parseBridgeConfig } from "./config.ts";
import { hashPassword, verifyPassword } from "./password.ts";
import { shown } from "../text.ts";
import { type RunningBridge, startBridge } from "./server.ts";
import { TokenSource } from "./token_source.ts";
import { openSmtpUpstream, openUpstream } from "./upstream.ts";

const MAX_CONFIG_BYTES = 1024 * 1024;

export interface BridgeEnvironment {
  /** One log line (no newline), to stderr. */
  log: (line: string) => void;
  /** Resolves when the bridge should stop (SIGTERM, Ctrl+C). */
  stopRequested: Promise<string>;
  /** `-Verbose`: each session logs its commands too (never a credential). */
  verbose?: boolean;
}

/** Reads and checks the configuration file; UsageError (exit 2) on any problem. */
export function loadBridgeConfig(path: string): BridgeConfig {
  let text: string;
  try {
    text = readFileBoundedSync(path, `-Bridge: ${path}`, MAX_CONFIG_BYTES);
  } catch (error) {
    throw fileProblem("Bridge", path, error);
  }
  return parseBridgeConfig(text, path, (file) => {
    try {
      return readFileBoundedSync(file, file, MAX_CONFIG_BYTES);
    } catch (error) {
      if (error instanceof UsageError) throw new Error(error.message);
      throw error;
    }
  });
}

async function credentialOf(
  config: BridgeConfig,
  c: Exclude<BridgeCredential, { kind: "user" }>,
): Promise<AppCredential> {
  if (c.kind === "secret") return { kind: "secret", secret: c.secret };
  const { loadCertificate } = await lazy<typeof import("../auth/certificate.ts")>(
    "auth/certificate.ts",
  );
  const certificate = await loadCertificate({
    value: c.value,
    password: c.password,
    keyFile: c.keyFile,
    timeoutMs: config.timeouts.upstreamMs,
  });
  return certificate.source === "store"
    ? { kind: "store", certificate }
    : { kind: "certificate", certificate };
}

function tokenSourceOf(config: BridgeConfig, credential: AppCredential): TokenSource {
  return new TokenSource({
    fetch: () =>
      acquireAppToken({
        authorityHost: config.authorityHost,
        tenantId: config.tenantId,
        clientId: config.clientId,
        caCerts: config.caCerts,
        timeoutMs: config.timeouts.upstreamMs,
        credential,
        scopes: [`${config.resource}/.default`],
      }),
  });
}

/**
 * The shared token source of the configured credential, and what it is for messages. A user
 * credential's cached sign-in is checked here (no network): missing, it is an error (exit 3).
 */
async function tokensOf(
  config: BridgeConfig,
  log: (line: string) => void,
): Promise<{ tokens: TokenSource; what: string }> {
  const c = config.credential;
  if (c.kind === "user") {
    const { openUserTokens } = await lazy<typeof import("./user_credential.ts")>(
      "bridge/user_credential.ts",
    );
    const user = await openUserTokens(config, c, { warn: (line) => log(`bridge: ${line}`) });
    return {
      tokens: user.tokens,
      what: `user ${c.user} (cached sign-in in ${user.cachePath}, app ${config.clientId})`,
    };
  }
  if (c.kind === "secret") await refuseSecretAsPassword(config, c.secret);
  return {
    tokens: tokenSourceOf(config, await credentialOf(config, c)),
    what: `app ${config.clientId}`,
  };
}

/**
 * The app's client secret must never be a local password: whoever knows a local password would
 * hold the key to every mailbox the app can open. One scrypt check per account (in parallel,
 * ~50 ms each here) before anything listens or connects.
 */
async function refuseSecretAsPassword(config: BridgeConfig, secret: string): Promise<void> {
  const accounts = [...config.accounts.values()];
  const same = await Promise.all(
    accounts.map((a) => verifyPassword(secret, a.passwordHash, null)),
  );
  const found = accounts.find((_, i) => same[i]);
  if (found) {
    throw new UsageError(
      `-Bridge ${shown(config.path)}: accounts.${found.name}.passwordHash: this is the hash of ` +
        "the app's client secret; a local password must be the account's own (make one with " +
        "-BridgePasswordHash), never the Entra secret",
      { code: "BRIDGE_BAD_CONFIG" },
    );
  }
}

function tlsName(mode: "implicit" | "starttls"): string {
  return mode === "implicit" ? "implicit TLS" : "STARTTLS";
}

/** Serves until asked to stop; returns the exit code (0 after a clean stop). */
export async function runBridge(config: BridgeConfig, env: BridgeEnvironment): Promise<number> {
  const { tokens, what } = await tokensOf(config, env.log);
  if (config.credential.kind === "user") env.log(`bridge: tokens for ${what}`);
  const bridge: RunningBridge = startBridge(config, {
    tokens,
    log: env.log,
    verbose: env.verbose,
  });
  for (const [i, a] of bridge.addresses.entries()) {
    const upstream = config.upstream[a.protocol];
    const tls = config.listeners[i].tls;
    const mode = tls ? ` (${tlsName(tls.mode)})` : "";
    env.log(
      `bridge: listening for ${a.protocol} on ${a.hostname}:${a.port}${mode}, relaying to ` +
        `${upstream.host}:${upstream.port} for ${config.accounts.size} local account(s)`,
    );
  }
  if (env.verbose) {
    env.log(
      "bridge: -Verbose: each session logs the client's commands (C:) and the status of the " +
        "answers (S:); never a password, SASL answer, token or message content",
    );
  }
  const why = await env.stopRequested;
  env.log(
    `bridge: ${why}: no new sessions; waiting up to ${
      config.timeouts.shutdownMs / 1000
    } s for ${bridge.active} open session(s)`,
  );
  await bridge.shutdown();
  env.log(`bridge: stopped (${tokens.requests} token request(s) in all)`);
  return 0;
}

/** `-BridgePasswordHash`: the password is the first line of standard input (never echoed). */
export async function passwordHashCommand(
  stdin: ReadableStream<Uint8Array>,
  timeoutMs: number,
): Promise<string> {
  const text = await readBoundedText(stdin, {
    what: "-BridgePasswordHash: standard input",
    maxBytes: 4096,
    timeoutMs,
  });
  const password = text.split(/\r?\n/)[0];
  if (password === "") {
    throw new UsageError(
      "-BridgePasswordHash: standard input holds no password; e.g. " +
        "printf '%s' \"$PASSWORD\" | Get-IMAPAccessToken -BridgePasswordHash",
      { code: "NO_INPUT" },
    );
  }
  return await hashPassword(password);
}

/**
 * `-Bridge ... -Diagnose`: the health check. The configuration was read already; then the
 * credential, one token, and one upstream login per local account and listener protocol, each
 * a line (`OK` or `FAILED` with the error and its code). Nothing listens. Returns the worst exit
 * code (0 when everything works).
 */
export async function diagnoseBridge(
  config: BridgeConfig,
  log: (line: string) => void,
): Promise<number> {
  const protocols = [...new Set(config.listeners.map((l) => l.protocol))];
  // Each kind of listener once: "POP3, IMAP with STARTTLS, SMTP with implicit TLS".
  const kinds = [
    ...new Set(
      config.listeners.map((l) => l.protocol + (l.tls ? ` with ${tlsName(l.tls.mode)}` : "")),
    ),
  ];
  log(
    `OK: configuration: ${config.listeners.length} listener(s) (${kinds.join(", ")}), ` +
      `${config.accounts.size} local account(s)`,
  );
  let tokens: TokenSource;
  try {
    const source = await tokensOf(config, log);
    tokens = source.tokens;
    await tokens.get();
    log(`OK: token for ${source.what} from ${config.authorityHost}/${config.tenantId}`);
  } catch (thrown) {
    const error = toToolError(thrown);
    log(`FAILED: token: ${error.message}${error.code ? ` [${error.code}]` : ""}`);
    return error.exitCode;
  }
  let worst = 0;
  for (const account of config.accounts.values()) {
    for (const protocol of protocols) {
      const upstream = config.upstream[protocol];
      const target = {
        host: upstream.host,
        port: upstream.port,
        caCerts: config.caCerts,
        timeoutMs: config.timeouts.upstreamMs,
      };
      const what = `${protocol} login to ${upstream.host}:${upstream.port} for ` +
        `${account.name} (${account.mailbox})`;
      try {
        if (protocol === "SMTP") {
          (await openSmtpUpstream(target, account.mailbox, tokens)).close();
        } else {
          (await openUpstream(protocol, target, account.mailbox, tokens)).conn.close();
        }
        log(`OK: ${what}`);
      } catch (thrown) {
        const error = toToolError(thrown);
        log(`FAILED: ${what}: ${error.message}${error.code ? ` [${error.code}]` : ""}`);
        worst = Math.max(worst, error.exitCode);
      }
    }
  }
  return worst;
}
