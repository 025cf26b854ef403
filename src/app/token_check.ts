/**
 * What a token allows this run: the protocol to test (the token's permissions choose it when
 * -Protocol was not given) and the claims check for that protocol. The full run (run.ts) and
 * the cached-token path (cached_token.ts) decide with this one function.
 */
import { isUserSignIn, type Options, scopesFor } from "../cli/options.ts";
import type { Claims } from "../diagnose/claims.ts";
import { checkClaims, type ClaimsCheck } from "../diagnose/claims_check.ts";
import { chooseProtocol, type ProtocolChoice } from "../diagnose/protocol_choice.ts";

export interface TokenVerdict {
  kind: "app" | "user";
  choice: ProtocolChoice;
  check: ClaimsCheck;
}

export function judgeToken(options: Options, claims: Claims | null): TokenVerdict {
  const kind = isUserSignIn(options) ? "user" : "app";
  const protocolGiven = options.explicit?.protocol ?? true;
  const choice = chooseProtocol(claims, kind, protocolGiven ? options.mail.protocol : undefined);
  const check = checkClaims(claims, {
    protocol: choice.protocol,
    kind,
    tenantId: options.tenantId,
    requestedDefault: scopesFor(options).some((s) => s.endsWith("/.default")),
  });
  return { kind, choice, check };
}

/**
 * The XOAUTH2 user: the target or shared mailbox, else the signed-in user (as the original);
 * undefined when there is neither, which fails the run even for Token output.
 */
export function xoauth2User(options: Options, username: string | undefined): string | undefined {
  return options.mailbox ?? (username || undefined);
}
