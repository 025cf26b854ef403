/**
 * Minimal JWT helpers for the test bed: the fake Entra ID signs access tokens
 * and checks client assertions with them, and the Exchange-like server
 * verifies tokens with them. WebCrypto plus node:crypto only, so the test bed
 * exercises no JWT library that could hide a mistake in the tool.
 */
import { X509Certificate } from "node:crypto";

/** The signature algorithms the test bed deals with (msal signs assertions with PS256 or RS256). */
export type JwtAlgorithm = "RS256" | "PS256";

export type JwtHeader = Record<string, unknown>;
export type JwtPayload = Record<string, unknown>;

export interface DecodedJwt {
  header: JwtHeader;
  payload: JwtPayload;
  /** `base64url(header) + "." + base64url(payload)`: the bytes the signature covers. */
  signingInput: string;
  signature: Uint8Array<ArrayBuffer>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function base64UrlEncode(data: Uint8Array | string): string {
  const bytes = typeof data === "string" ? encoder.encode(data) : data;
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Decodes base64url (padding optional). Throws on characters outside the alphabet. */
export function base64UrlDecode(text: string): Uint8Array<ArrayBuffer> {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) throw new Error("not base64url");
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const padded = b64 + "=".repeat((4 - (b64.length % 4)) % 4);
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}

export function base64UrlDecodeText(text: string): string {
  return decoder.decode(base64UrlDecode(text));
}

/** DER bytes of the first PEM block in `pem` (certificate, SPKI or key). */
export function derFromPem(pem: string): Uint8Array<ArrayBuffer> {
  const match = pem.match(/-----BEGIN ([^-]+)-----([\s\S]*?)-----END \1-----/);
  if (!match) throw new Error("no PEM block found");
  return Uint8Array.from(atob(match[2].replace(/\s+/g, "")), (c) => c.charCodeAt(0));
}

export function pemFromDer(der: Uint8Array, label: string): string {
  let binary = "";
  for (const b of der) binary += String.fromCharCode(b);
  const lines = btoa(binary).match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Splits and parses a compact JWS. Throws when it is not three base64url parts with JSON objects. */
export function decodeJwt(token: string): DecodedJwt {
  const parts = token.split(".");
  if (parts.length !== 3) throw new Error(`a JWT has 3 parts, this one has ${parts.length}`);
  const [h, p, s] = parts;
  const header: unknown = JSON.parse(base64UrlDecodeText(h));
  const payload: unknown = JSON.parse(base64UrlDecodeText(p));
  if (!isObject(header) || !isObject(payload)) {
    throw new Error("JWT header or payload is not a JSON object");
  }
  return { header, payload, signingInput: `${h}.${p}`, signature: base64UrlDecode(s) };
}

/** WebCrypto parameters per JWT algorithm; PS256 uses a salt as long as the digest, as jsonwebtoken does. */
function importParams(alg: JwtAlgorithm): RsaHashedImportParams {
  return { name: alg === "PS256" ? "RSA-PSS" : "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
}

function signParams(alg: JwtAlgorithm): AlgorithmIdentifier | RsaPssParams {
  return alg === "PS256" ? { name: "RSA-PSS", saltLength: 32 } : { name: "RSASSA-PKCS1-v1_5" };
}

/** Imports a public key for verifying `alg`. Accepts an SPKI PEM or an X.509 certificate PEM. */
export function importSpkiPem(pem: string, alg: JwtAlgorithm): Promise<CryptoKey> {
  const spki = pem.includes("BEGIN CERTIFICATE") ? publicKeyFromCertificatePem(pem) : pem;
  return crypto.subtle.importKey("spki", derFromPem(spki), importParams(alg), true, ["verify"]);
}

/** The certificate's public key as an SPKI PEM ("PUBLIC KEY"). */
export function publicKeyFromCertificatePem(certPem: string): string {
  const exported = new X509Certificate(certPem).publicKey.export({ type: "spki", format: "pem" });
  return exported.toString();
}

/** base64url SHA-1 and SHA-256 of the certificate's DER: the `x5t` and `x5t#S256` header values. */
export async function certificateThumbprints(
  certPem: string,
): Promise<{ x5t: string; x5tS256: string }> {
  const der = derFromPem(certPem);
  const sha1 = new Uint8Array(await crypto.subtle.digest("SHA-1", der));
  const sha256 = new Uint8Array(await crypto.subtle.digest("SHA-256", der));
  return { x5t: base64UrlEncode(sha1), x5tS256: base64UrlEncode(sha256) };
}

/** Exports a public CryptoKey as SPKI PEM. */
export async function exportSpkiPem(key: CryptoKey): Promise<string> {
  return pemFromDer(new Uint8Array(await crypto.subtle.exportKey("spki", key)), "PUBLIC KEY");
}

/**
 * Signs `payload` as a compact JWS. The algorithm follows the key (RSASSA-PKCS1-v1_5 → RS256,
 * RSA-PSS → PS256) and is written into the header, so a header cannot claim what the key is not.
 */
export async function signJwt(
  header: JwtHeader,
  payload: JwtPayload,
  privateKey: CryptoKey,
): Promise<string> {
  const alg: JwtAlgorithm = privateKey.algorithm.name === "RSA-PSS" ? "PS256" : "RS256";
  const signingInput = `${base64UrlEncode(JSON.stringify({ ...header, alg }))}.${
    base64UrlEncode(JSON.stringify(payload))
  }`;
  const signature = await crypto.subtle.sign(
    signParams(alg),
    privateKey,
    encoder.encode(signingInput),
  );
  return `${signingInput}.${base64UrlEncode(new Uint8Array(signature))}`;
}

/**
 * Verifies the signature of `token` with `alg` and a PEM key (SPKI or certificate). Returns false
 * for a bad signature, a malformed token or a header `alg` other than `alg`; never throws for those.
 */
export async function verifyJwt(
  token: string,
  publicKeyPem: string,
  alg: JwtAlgorithm,
): Promise<boolean> {
  let decoded: DecodedJwt;
  try {
    decoded = decodeJwt(token);
  } catch {
    return false;
  }
  if (decoded.header.alg !== alg) return false;
  const key = await importSpkiPem(publicKeyPem, alg);
  return crypto.subtle.verify(
    signParams(alg),
    key,
    decoded.signature,
    encoder.encode(decoded.signingInput),
  );
}

export function verifyJwtRs256(token: string, publicKeyPem: string): Promise<boolean> {
  return verifyJwt(token, publicKeyPem, "RS256");
}

export function verifyJwtPs256(token: string, publicKeyPem: string): Promise<boolean> {
  return verifyJwt(token, publicKeyPem, "PS256");
}
