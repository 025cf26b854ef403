/**
 * The persistent token cache: one JSON file per identity (authority, tenant,
 * app, credential) holding msal-node's serialized cache and a small "fast"
 * list of access tokens that can be read without importing msal-node.
 *
 * Scripts call the tool over and over, so a cached token must come back in
 * milliseconds: this module and its lock file protocol (lock.ts) import
 * nothing but Deno's built-ins (importing msal costs ~100 ms), and the msal
 * plugin is plain structural typing.
 *
 * The cache is a convenience, never a reason to fail: every problem (corrupt
 * file, busy lock, full disk) becomes a warning and the run goes on without it.
 * The file holds access and refresh tokens in plain text, so the folder is kept
 * at 0700 and the file at 0600, and credential material never enters it.
 *
 * Safety rules, checked on every read and write (the fast path included):
 * - a folder open to other users is never used; only the tool's own folder
 *   (`ownFolder`, the default location) is tightened to 0700, never a folder
 *   named by -TokenCachePath, never through a symbolic link;
 * - a cache file must be a regular file (not a link); one open to other users
 *   is tightened to 0600 (with a warning), else ignored.
 * - a token that proved unusable is removed (`forget`), so no run is served it again.
 */

import { acquireLock, DEFAULT_LOCK_TIMEOUT_MS, randomHex } from "./lock.ts";

/** How the app proves its identity; each kind gets its own cache file. */
export type CredentialKind = "secret" | "certificate-file" | "thumbprint" | "user";

export interface CacheIdentity {
  authorityHost: string;
  tenantId: string;
  clientId: string;
  /**
   * Opaque id of the credential from `credentialId()`. msal's cache key does not
   * say which credential got an app token, so each credential gets its own file.
   * Only its hash, mixed with the other fields, is used (as the file name).
   */
  credential: string;
}

export interface FastEntry {
  accessToken: string;
  /** Epoch seconds. */
  expiresOn: number;
  scopes: string[];
  username?: string;
  kind: "app" | "user";
}

export interface TokenCacheOptions {
  /** Receives every warning (at most once per message and cache). */
  warn?: (message: string) => void;
  /** How long a write waits for another process's lock; default 3000 ms. */
  lockTimeoutMs?: number;
  /**
   * The folder is the tool's own (the default location): when it is open to
   * other users it is tightened to 0700. Otherwise (-TokenCachePath) the mode
   * of an existing folder is never changed and an open folder is not used.
   */
  ownFolder?: boolean;
  /**
   * Only look: a folder or file open to other users is not tightened, only warned about (and not
   * used), so that a later open of the same cache tightens it and says so.
   */
  lookOnly?: boolean;
}

export interface ReadFastOptions {
  /** Only entries of this user (case-insensitive). */
  user?: string;
  /** The token must stay valid this long; default 300 s. */
  minValiditySeconds?: number;
  /** Current time in epoch seconds; default now. */
  now?: number;
}

/**
 * msal-node's ICachePlugin, typed structurally so that this module does not
 * need msal's types; msal's TokenCacheContext satisfies both parameter types.
 */
export interface MsalCachePlugin {
  beforeCacheAccess(context: { tokenCache: { deserialize(cache: string): void } }): Promise<void>;
  afterCacheAccess(
    context: { cacheHasChanged: boolean; tokenCache: { serialize(): string } },
  ): Promise<void>;
}

/** `mode & 0o7777` as four octal digits, e.g. `1777`. */
export function modeText(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, "0");
}

/** Fast entries kept per file; the ones expiring first are dropped beyond it. */
export const MAX_FAST_ENTRIES = 20;
const FILE_VERSION = 1;

/** The identity as written in the file: enough to recognise it, no credential. */
interface StoredIdentity {
  authorityHost: string;
  tenantId: string;
  clientId: string;
}

interface CacheFile {
  version: typeof FILE_VERSION;
  identity: StoredIdentity;
  msal: string;
  fast: FastEntry[];
}

async function sha256Hex(data: string | Uint8Array): Promise<string> {
  // A copy gives WebCrypto a plain ArrayBuffer-backed view whatever was passed in.
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : new Uint8Array(data);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The credential part of a cache identity. Secrets and certificate files
 * (pass the certificate bytes followed by the key bytes) are reduced to their
 * SHA-256, so a new secret or certificate starts a new cache and the secret
 * itself is never stored. A thumbprint is public and only normalised. User
 * sign-ins have no app credential: their material is ignored.
 */
export async function credentialId(
  kind: CredentialKind,
  material: string | Uint8Array,
): Promise<string> {
  switch (kind) {
    case "secret":
      return `secret:${await sha256Hex(material)}`;
    case "certificate-file":
      return `cert:${await sha256Hex(material)}`;
    case "thumbprint": {
      const text = typeof material === "string" ? material : new TextDecoder().decode(material);
      return `thumbprint:${text.replace(/[^0-9a-f]/gi, "").toLowerCase()}`;
    }
    case "user":
      return "user";
  }
}

function normalizeIdentity(id: CacheIdentity): StoredIdentity {
  return {
    authorityHost: id.authorityHost.trim().replace(/\/+$/, "").toLowerCase(),
    tenantId: id.tenantId.trim().toLowerCase(),
    clientId: id.clientId.trim().toLowerCase(),
  };
}

function joinPath(dir: string, name: string): string {
  const windows = Deno.build.os === "windows";
  if (dir.endsWith("/") || (windows && dir.endsWith("\\"))) return dir + name;
  return `${dir}${windows ? "\\" : "/"}${name}`;
}

/** Scopes compare order- and case-insensitively, as msal compares them. */
function scopeKey(scopes: string[]): string {
  return [...new Set(scopes.map((s) => s.trim().toLowerCase()).filter((s) => s !== ""))]
    .sort().join(" ");
}

/** One slot per kind, scope set and user: a newer token replaces the older one. */
function entryKey(entry: FastEntry): string {
  return `${entry.kind}|${scopeKey(entry.scopes)}|${entry.username?.toLowerCase() ?? ""}`;
}

function asRecord(value: unknown): Record<string, unknown> | null {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? value as Record<string, unknown>
    : null;
}

/** A copy with only the known fields, or null when the value is not a usable entry. */
function cleanEntry(value: unknown): FastEntry | null {
  const v = asRecord(value);
  if (!v) return null;
  const { accessToken, expiresOn, scopes, username, kind } = v;
  if (typeof accessToken !== "string" || accessToken === "") return null;
  if (typeof expiresOn !== "number" || !Number.isFinite(expiresOn)) return null;
  if (!Array.isArray(scopes) || !scopes.every((s) => typeof s === "string")) return null;
  if (kind !== "app" && kind !== "user") return null;
  if (username !== undefined && typeof username !== "string") return null;
  return {
    accessToken,
    expiresOn,
    scopes: [...scopes],
    ...(username !== undefined ? { username } : {}),
    kind,
  };
}

/** Drops expired entries and, beyond the limit, those expiring first. */
function pruneEntries(entries: FastEntry[], nowSeconds: number): FastEntry[] {
  return entries.filter((e) => e.expiresOn > nowSeconds)
    .sort((a, b) => b.expiresOn - a.expiresOn)
    .slice(0, MAX_FAST_ENTRIES);
}

function parseRecord(text: string): Record<string, unknown> | null {
  try {
    return asRecord(JSON.parse(text));
  } catch {
    return null;
  }
}

/**
 * Three-way merge of msal's serialized cache, entity by entity: `theirs` is
 * the file as it is now (other processes may have added entries since we
 * read `base`), `ours` is msal's state. Entries we removed since `base` are
 * removed, ours replace theirs, theirs that we never saw are kept. Falls back
 * to `ours` when the file's copy is unusable.
 */
export function mergeMsalCache(base: string, ours: string, theirs: string): string {
  const mine = parseRecord(ours);
  const their = parseRecord(theirs);
  if (!mine || !their) return ours;
  const before = parseRecord(base) ?? {};
  // Entries are rebuilt with Object.fromEntries, never by assignment, so that a
  // key like "__proto__" in a tampered file stays a plain key.
  const result = new Map(Object.entries(their));
  for (const [section, value] of Object.entries(mine)) {
    const ourSection = asRecord(value);
    const theirSection = asRecord(their[section]);
    if (!ourSection || !theirSection) {
      result.set(section, value);
      continue;
    }
    const baseSection = asRecord(before[section]) ?? {};
    const merged = new Map(Object.entries(theirSection));
    for (const key of Object.keys(baseSection)) {
      if (!Object.hasOwn(ourSection, key)) merged.delete(key);
    }
    for (const [key, entity] of Object.entries(ourSection)) merged.set(key, entity);
    result.set(section, Object.fromEntries(merged));
  }
  return JSON.stringify(Object.fromEntries(result));
}

/** msal's serialized cache without the access tokens whose value is `accessToken`. */
export function dropMsalAccessToken(msal: string, accessToken: string): string {
  const data = parseRecord(msal);
  const tokens = asRecord(data?.AccessToken);
  if (!data || !tokens) return msal;
  const kept = Object.entries(tokens).filter(([, e]) => asRecord(e)?.secret !== accessToken);
  if (kept.length === Object.keys(tokens).length) return msal;
  const result = new Map(Object.entries(data));
  result.set("AccessToken", Object.fromEntries(kept));
  return JSON.stringify(Object.fromEntries(result));
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Writes `text` to a fresh `path.<random>.tmp` (0600 from the moment it
 * exists), flushes it to disk and renames it over `path`, so readers without
 * the lock see either the old or the new file, never a half-written one.
 */
async function writeAtomically(path: string, text: string): Promise<void> {
  const tmp = `${path}.${randomHex(8)}.tmp`;
  const file = await Deno.open(tmp, { write: true, createNew: true, mode: 0o600 });
  try {
    try {
      const bytes = new TextEncoder().encode(text);
      let offset = 0;
      while (offset < bytes.length) offset += await file.write(bytes.subarray(offset));
      await file.sync();
    } finally {
      file.close();
    }
    await Deno.rename(tmp, path);
  } catch (error) {
    await Deno.remove(tmp).catch(() => {});
    throw error;
  }
}

export class TokenCache {
  /** `DIR/<first 40 hex of SHA-256 of the identity>.json`. */
  readonly path: string;
  readonly dir: string;
  readonly #lockPath: string;
  readonly #identity: StoredIdentity;
  readonly #warn: (message: string) => void;
  readonly #lockTimeoutMs: number;
  readonly #warned = new Set<string>();
  readonly #ownFolder: boolean;
  readonly #lookOnly: boolean;
  #dirReady = false;

  private constructor(
    dir: string,
    path: string,
    identity: StoredIdentity,
    options: TokenCacheOptions,
  ) {
    this.dir = dir;
    this.path = path;
    this.#lockPath = `${path}.lock`;
    this.#identity = identity;
    this.#warn = options.warn ?? (() => {});
    this.#lockTimeoutMs = options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
    this.#ownFolder = options.ownFolder ?? false;
    this.#lookOnly = options.lookOnly ?? false;
  }

  /**
   * The cache of one identity in `dir`. No file I/O happens here: the folder
   * is made on the first write. Async only because WebCrypto hashing is
   * (node:crypto's sync hash would cost ~30 ms of import on the fast path).
   */
  static async open(
    dir: string,
    id: CacheIdentity,
    options: TokenCacheOptions = {},
  ): Promise<TokenCache> {
    const identity = normalizeIdentity(id);
    const key = await sha256Hex(
      [identity.authorityHost, identity.tenantId, identity.clientId, id.credential].join("|"),
    );
    return new TokenCache(dir, joinPath(dir, `${key.slice(0, 40)}.json`), identity, options);
  }

  /**
   * A token valid for at least `minValiditySeconds` for exactly these scopes
   * (and this user, if given), the one that lives longest; otherwise null.
   * Never throws: an unreadable or corrupt file is a warning and a miss.
   */
  async readFast(scopes: string[], options: ReadFastOptions = {}): Promise<FastEntry | null> {
    const file = await this.#load();
    if (!file) return null;
    const now = options.now ?? Date.now() / 1000;
    const minValidity = options.minValiditySeconds ?? 300;
    const wanted = scopeKey(scopes);
    const user = options.user?.toLowerCase();
    let best: FastEntry | null = null;
    for (const entry of file.fast) {
      if (scopeKey(entry.scopes) !== wanted) continue;
      if (user !== undefined && entry.username?.toLowerCase() !== user) continue;
      if (entry.expiresOn - now < minValidity) continue;
      if (!best || entry.expiresOn > best.expiresOn) best = entry;
    }
    return best;
  }

  /** Records a token for the fast path, replacing the entry for the same scopes and user. */
  async writeFast(entry: FastEntry): Promise<void> {
    const clean = cleanEntry(entry);
    if (!clean) {
      this.#warnOnce("token cache: not saving a token entry with missing or invalid fields");
      return;
    }
    const key = entryKey(clean);
    await this.#update((file) => ({
      ...file,
      fast: [...file.fast.filter((e) => entryKey(e) !== key), clean],
    }));
  }

  /**
   * Removes every copy of `accessToken` (the fast entry and msal's own), so
   * that no later run is served a token the claims check or the mail server
   * found unusable. Never throws; returns whether something was removed.
   */
  async forget(accessToken: string): Promise<boolean> {
    const file = await this.#load();
    if (!file) return false;
    const held = (f: CacheFile) =>
      f.fast.some((e) => e.accessToken === accessToken) ||
      dropMsalAccessToken(f.msal, accessToken) !== f.msal;
    if (!held(file)) return false;
    return await this.#update((f) => ({
      ...f,
      fast: f.fast.filter((e) => e.accessToken !== accessToken),
      msal: dropMsalAccessToken(f.msal, accessToken),
    }));
  }

  /**
   * msal-node's cache plugin (`cache: { cachePlugin }`). Use one plugin per
   * msal application: it remembers what it handed to msal, the base of the
   * merge when msal writes back.
   */
  msalPlugin(): MsalCachePlugin {
    let base = "";
    return {
      beforeCacheAccess: async (context) => {
        const blob = (await this.#load())?.msal ?? "";
        base = "";
        if (blob === "") return;
        if (!parseRecord(blob)) {
          this.#warnOnce(`token cache: the msal part of ${this.path} is corrupt; starting empty`);
          return;
        }
        try {
          context.tokenCache.deserialize(blob);
          base = blob;
        } catch (error) {
          this.#warnOnce(
            `token cache: msal could not load ${this.path} (${errorText(error)}); starting empty`,
          );
          // msal keeps the rejected text as the snapshot it merges with on
          // serialize(), which would then throw too: reset it.
          try {
            context.tokenCache.deserialize("");
          } catch { /* nothing more to reset */ }
        }
      },
      afterCacheAccess: async (context) => {
        if (!context.cacheHasChanged) return;
        let ours: string;
        try {
          ours = context.tokenCache.serialize();
        } catch (error) {
          this.#warnOnce(`token cache: msal could not serialize its cache (${errorText(error)})`);
          return;
        }
        const seen = base;
        await this.#update((file) => ({ ...file, msal: mergeMsalCache(seen, ours, file.msal) }));
      },
    };
  }

  #warnOnce(message: string): void {
    if (this.#warned.has(message)) return;
    this.#warned.add(message);
    this.#warn(message);
  }

  #empty(): CacheFile {
    return { version: FILE_VERSION, identity: { ...this.#identity }, msal: "", fast: [] };
  }

  /** The file's content, or null when it is missing or unusable (warned). */
  async #load(): Promise<CacheFile | null> {
    if (!(await this.#checkDir(false)) || !(await this.#checkFile())) return null;
    let text: string;
    try {
      text = await Deno.readTextFile(this.path);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return null;
      this.#warnOnce(
        `token cache: cannot read ${this.path} (${errorText(error)}); continuing without it`,
      );
      return null;
    }
    return this.#parse(text);
  }

  #parse(text: string): CacheFile | null {
    // JSON.parse's own message quotes the text, which may be a token: not shown.
    const data = parseRecord(text);
    const ignored = (why: string) => {
      this.#warnOnce(
        `token cache: ${this.path} ${why}; ignoring it (the next saved token replaces it)`,
      );
      return null;
    };
    if (!data) return ignored("is not a valid cache file");
    if (data.version !== FILE_VERSION) {
      return ignored(`has unknown version ${String(data.version)}`);
    }
    const identity = asRecord(data.identity);
    const mine = this.#identity;
    if (
      !identity || identity.authorityHost !== mine.authorityHost ||
      identity.tenantId !== mine.tenantId || identity.clientId !== mine.clientId
    ) {
      return ignored("belongs to another tenant, app or authority");
    }
    const msal = data.msal ?? "";
    const fast = data.fast ?? [];
    if (typeof msal !== "string" || !Array.isArray(fast)) {
      return ignored("is not a valid cache file");
    }
    return {
      version: FILE_VERSION,
      identity: { ...mine },
      msal,
      fast: fast.map(cleanEntry).filter((e): e is FastEntry => e !== null),
    };
  }

  /**
   * Read-merge-write under the lock: `change` gets the current file (empty if
   * missing or corrupt) and returns the new content.
   * Never throws; returns whether the change was saved.
   */
  async #update(change: (file: CacheFile) => CacheFile): Promise<boolean> {
    try {
      if (!(await this.#checkDir(true))) return false;
      const release = await acquireLock(this.#lockPath, {
        timeoutMs: this.#lockTimeoutMs,
        onWarn: (message) => this.#warnOnce(`token cache: ${message}`),
      });
      if (release === null) {
        this.#warnOnce(
          `token cache: ${this.#lockPath} stayed locked by another process for ` +
            `${this.#lockTimeoutMs} ms; the token is not saved this time`,
        );
        return false;
      }
      try {
        const next = change((await this.#load()) ?? this.#empty());
        next.fast = pruneEntries(next.fast, Date.now() / 1000);
        await writeAtomically(this.path, JSON.stringify(next));
        return true;
      } finally {
        await release();
      }
    } catch (error) {
      this.#warnOnce(`token cache: cannot write ${this.path} (${errorText(error)})`);
      return false;
    }
  }

  /**
   * Whether the folder may hold tokens; `create` makes a missing one (0700).
   * A folder open to other users is tightened only when it is the tool's own
   * (`ownFolder`) and not a symbolic link; otherwise the cache is not used.
   * Checked until it passes once per run.
   */
  async #checkDir(create: boolean): Promise<boolean> {
    if (this.#dirReady) return true;
    if (create) await Deno.mkdir(this.dir, { recursive: true, mode: 0o700 });
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(this.dir);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return false;
      throw error;
    }
    if (!info.isDirectory) {
      this.#warnOnce(`token cache: ${this.dir} is not a folder; tokens are not cached`);
      return false;
    }
    // Windows has no mode bits; its per-user LOCALAPPDATA is private by ACL.
    if (info.mode === null || (info.mode & 0o077) === 0) {
      this.#dirReady = true;
      return true;
    }
    const shown = modeText(info.mode);
    const link = (await Deno.lstat(this.dir)).isSymlink;
    if (this.#lookOnly) {
      this.#warnOnce(`token cache: ${this.dir} is open to other users (mode ${shown})`);
      return false;
    }
    if (!this.#ownFolder || link) {
      this.#warnOnce(
        `token cache: ${this.dir} is open to other users (mode ${shown}); the cache is not ` +
          "used, and the mode of a folder the tool did not create is never changed",
      );
      return false;
    }
    try {
      await Deno.chmod(this.dir, 0o700);
    } catch (error) {
      this.#warnOnce(
        `token cache: ${this.dir} is open to other users (mode ${shown}) and cannot be ` +
          `restricted (${errorText(error)}); tokens are not saved there`,
      );
      return false;
    }
    this.#warnOnce(
      `token cache: ${this.dir} was open to other users (mode ${shown}); ` +
        "restricted it to its owner (0700)",
    );
    this.#dirReady = true;
    return true;
  }

  /**
   * Whether the cache file may be read: missing is a plain miss; a link or a
   * non-file is ignored; a file open to other users is tightened to 0600
   * (it is the tool's own file, named by the identity's hash), else ignored.
   */
  async #checkFile(): Promise<boolean> {
    let info: Deno.FileInfo;
    try {
      info = await Deno.lstat(this.path);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return false;
      this.#warnOnce(
        `token cache: cannot read ${this.path} (${errorText(error)}); continuing without it`,
      );
      return false;
    }
    if (!info.isFile) {
      const what = info.isSymlink ? "a symbolic link" : "not a regular file";
      this.#warnOnce(
        `token cache: cannot read ${this.path} (${what}); continuing without it`,
      );
      return false;
    }
    if (info.mode === null || (info.mode & 0o077) === 0) return true;
    const shown = modeText(info.mode);
    if (this.#lookOnly) {
      this.#warnOnce(`token cache: ${this.path} is open to other users (mode ${shown})`);
      return false;
    }
    try {
      await Deno.chmod(this.path, 0o600);
    } catch (error) {
      this.#warnOnce(
        `token cache: ${this.path} is open to other users (mode ${shown}) and cannot be ` +
          `restricted (${errorText(error)}); ignoring it`,
      );
      return false;
    }
    this.#warnOnce(
      `token cache: ${this.path} was open to other users (mode ${shown}); ` +
        "restricted it to its owner (0600)",
    );
    return true;
  }
}
