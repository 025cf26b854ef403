/**
 * SASL PLAIN (RFC 4616) as a server reads it: the bridge's IMAP and SMTP fronts take a local
 * user's password this way. Pure; the caller checks the password.
 */

import { fromBase64 } from "../base64.ts";

/** The user and password of a PLAIN response. */
export interface PlainCredentials {
  user: string;
  password: string;
  /** An authorization identity other than the user: acting for someone else (refused). */
  actingForOther: boolean;
}

/**
 * A client's base64 SASL response as UTF-8 text (`=` is the empty response, RFC 4954/4959);
 * undefined when it is not valid base64 or not UTF-8.
 */
export function decodeSaslResponse(text: string): string | undefined {
  try {
    const bytes = text === "=" ? new Uint8Array() : fromBase64(text);
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

/** The credentials in a base64 PLAIN response (`authzid NUL user NUL password`), or undefined. */
export function parsePlainResponse(response: string): PlainCredentials | undefined {
  const parts = decodeSaslResponse(response)?.split("\0");
  if (parts?.length !== 3) return undefined;
  const [authzid, user, password] = parts;
  return {
    user,
    password,
    actingForOther: authzid !== "" && authzid.toLowerCase() !== user.toLowerCase(),
  };
}
