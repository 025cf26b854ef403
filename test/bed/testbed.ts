/**
 * The whole test bed in one object: test PKI, fake Entra ID, the Exchange-like
 * server and (optionally) real Dovecot, wired with the same apps, mailboxes and
 * keys. Used by the end-to-end tests and by `deno task demo`.
 */
import { type AppCertificate, makeAppCertificate, makeServerPki, type ServerPki } from "./pki.ts";
import { type FakeEntra, type FakeEntraOptions, startFakeEntra } from "./entra.ts";
import { type ExchangeServer, startExchange } from "./exchange.ts";
import { type Dovecot, type DovecotOptions, startDovecot } from "./dovecot.ts";

export const TENANT = "9a1c3f52-7d4e-4b8a-9c61-2f0e8d7b5a34";
/** App with every role, a secret and a registered certificate (FullAccess on MAILBOX). */
export const APP = "3f6d2b1e-8c47-4a59-b0e2-71d9c5a8f403";
/**
 * Object ID of APP's service principal (its Enterprise application): the `oid` of its tokens,
 * different from the client ID as in Entra.
 */
export const APP_SP = "6c0f9a4e-2b7d-4e15-9f83-d1a2b3c4e5f6";
/**
 * The customer guide's app: POP.AccessAsApp only ("IMAP ist nicht erforderlich"), a secret,
 * FullAccess on MAILBOX.
 */
export const APP_POP_ONLY = "a1d4f7c2-5e8b-4b3a-9c6d-0e2f4a6b8c1d";
export const APP_POP_ONLY_SP = "d7e1b3a5-9c2f-4e6d-8a0b-3c5e7f9a1b2d";
/** App with the roles but no FullAccess on any mailbox (Exchange: "authenticated but not connected"). */
export const APP_NO_ACCESS = "b82e4c71-0f3a-4d96-a5c8-6e19d2f7b350";
export const APP_NO_ACCESS_SP = "f3a9c1e7-4b6d-4d28-b5e0-7a9c2e4f6b81";
/** App without admin consent: its tokens carry no roles. */
export const APP_NO_ROLES = "e7a90d34-5b1c-4f28-8d6e-c3f21a4b9e07";
export const SECRET = "Qx8~vR2.pL9_kT4-mN7wZ3yB6cD1fH5jS0aE";
/** A secret of APP that has expired (AADSTS7000222). */
export const EXPIRED_SECRET = "Zt4~expired.Secret_Value-0123456789ab";
/**
 * App whose secret has what breaks naive argument passing (PowerShell, Windows command lines):
 * a leading dash, spaces, both quotes, `$`, a backtick, backslashes before a quote and at the
 * end, and non-ASCII characters.
 */
export const APP_ODD_SECRET = "5d1e9b37-2c8a-4f60-9e14-a7b3c0d2f681";
export const ODD_SECRET = '-S p "dq" \'sq\' $HOME `t ü€日本😀 a\\"b C:\\dir\\';
/** Public client app for user sign-in (interactive, paste, device code). */
export const PUBLIC_APP = "c4d5e6f7-1a2b-4c3d-8e9f-0a1b2c3d4e5f";
export const USER = "adele@contoso.com";
export const USER_PASSWORD = "Correct-Horse-Battery-7";
/** Shared mailbox USER has FullAccess to on the Exchange-like server. */
export const SHARED = "shared@contoso.com";
/** Shared mailbox USER has no FullAccess to. */
export const SHARED_NO_ACCESS = "team@contoso.com";
export const MAILBOX = "box@contoso.com";
export const OTHER_MAILBOX = "other@contoso.com";

export interface TestBed {
  dir: string;
  pki: ServerPki;
  /** Registered with APP. */
  cert: AppCertificate;
  /** Not registered anywhere. */
  unknownCert: AppCertificate;
  entra: FakeEntra;
  exchange: ExchangeServer;
  dovecot?: Dovecot;
  /** Arguments every CLI call needs to reach the test bed instead of Microsoft. */
  common(): string[];
  /** Options for a Dovecot that trusts this bed's tokens (its TLS, issuer and key) plus `more`. */
  dovecotOptions(more?: Partial<DovecotOptions>): DovecotOptions;
  close(): Promise<void>;
}

export interface TestBedOptions {
  dovecot?: boolean;
  /** Extra fake Entra ID settings (e.g. short device-code lifetimes). */
  entra?: Partial<Omit<FakeEntraOptions, "tls" | "apps" | "users">>;
  exchangeBehaviour?: "normal" | "silent";
}

export async function startTestBed(options: TestBedOptions = {}): Promise<TestBed> {
  const dir = await Deno.makeTempDir({ prefix: "gia-bed-" });
  const pki = await makeServerPki(`${dir}/pki`);
  const [cert, unknownCert] = await Promise.all([
    makeAppCertificate(`${dir}/certs`, "app"),
    makeAppCertificate(`${dir}/certs`, "unknown"),
  ]);
  const tls = { certPem: pki.certPem, keyPem: pki.keyPem };
  const roles = ["IMAP.AccessAsApp", "POP.AccessAsApp", "SMTP.SendAsApp"];
  const entra = await startFakeEntra({
    tls,
    apps: [
      {
        tenantId: TENANT,
        clientId: APP,
        displayName: "directmail",
        secrets: [SECRET],
        expiredSecrets: [EXPIRED_SECRET],
        certificates: [cert.certPem],
        roles,
        mailbox: MAILBOX,
        servicePrincipalId: APP_SP,
      },
      {
        tenantId: TENANT,
        clientId: APP_NO_ACCESS,
        secrets: [SECRET],
        roles,
        mailbox: MAILBOX,
        servicePrincipalId: APP_NO_ACCESS_SP,
      },
      {
        tenantId: TENANT,
        clientId: APP_POP_ONLY,
        displayName: "directmail (POP3 only)",
        secrets: [SECRET],
        roles: ["POP.AccessAsApp"],
        mailbox: MAILBOX,
        servicePrincipalId: APP_POP_ONLY_SP,
      },
      { tenantId: TENANT, clientId: APP_NO_ROLES, secrets: [SECRET], mailbox: MAILBOX },
      {
        tenantId: TENANT,
        clientId: APP_ODD_SECRET,
        secrets: [ODD_SECRET],
        roles,
        mailbox: MAILBOX,
      },
      {
        tenantId: TENANT,
        clientId: PUBLIC_APP,
        displayName: "mail fetcher (public client)",
        publicClient: true,
        redirectUris: [
          "http://localhost",
          "https://localhost",
          "https://login.microsoftonline.com/common/oauth2/nativeclient",
        ],
        delegated: ["IMAP.AccessAsUser.All", "POP.AccessAsUser.All", "SMTP.Send"],
      },
    ],
    users: [{ tenantId: TENANT, upn: USER, password: USER_PASSWORD, displayName: "Adele Vance" }],
    ...options.entra,
  });
  const exchange = await startExchange({
    tls,
    tokenKey: { publicKeyPem: entra.signingKey.publicKeyPem },
    mailboxPermissions: {
      [MAILBOX]: [APP, APP_NO_ROLES, APP_POP_ONLY],
      [OTHER_MAILBOX]: [],
      [SHARED]: [USER],
      [SHARED_NO_ACCESS]: [],
    },
    behaviour: options.exchangeBehaviour,
  });
  const dovecotOptions = (more: Partial<DovecotOptions> = {}): DovecotOptions => ({
    tls: { certFile: pki.certFile, keyFile: pki.keyFile },
    issuers: [entra.issuer(TENANT)],
    signingKey: { kid: entra.signingKey.kid, publicKeyPem: entra.signingKey.publicKeyPem },
    ...more,
  });
  let dovecot: Dovecot | undefined;
  try {
    if (options.dovecot) {
      dovecot = await startDovecot(dovecotOptions({ messages: { [MAILBOX]: 2, [USER]: 1 } }));
    }
  } catch (error) {
    await Promise.all([entra.close(), exchange.close()]);
    throw error;
  }
  return {
    dir,
    pki,
    cert,
    unknownCert,
    entra,
    exchange,
    dovecot,
    dovecotOptions,
    common: () => [
      "-tenantID",
      TENANT,
      "-AuthorityHost",
      entra.url,
      "-CaFile",
      pki.caFile,
      "-Server",
      "127.0.0.1",
      "-TimeoutSeconds",
      "5",
      // Never the user's own cache: each test bed has a fresh one.
      "-TokenCachePath",
      `${dir}/cache`,
    ],
    async close() {
      await Promise.all([entra.close(), exchange.close(), dovecot?.stop()]);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
