/**
 * Parameter-set resolution, as PowerShell does it: the sets of all given
 * parameters must intersect; among the remaining sets, the one whose mandatory
 * parameters are all present wins. Errors name what is missing or conflicting
 * instead of PowerShell's generic "Parameter set cannot be resolved".
 */
import { InternalError, UsageError } from "../errors.ts";
import type { BoundValue } from "./bind.ts";
import {
  isMandatory,
  PARAMETER_SETS,
  PARAMETERS,
  type ParameterSetName,
  type ParameterSpec,
  setsOf,
  SIGN_IN_SETS,
} from "./parameters.ts";

const SET_EXAMPLES: Record<ParameterSetName, string> = {
  clientcredentialsSecret: "-clientsecret <secret> -targetMailbox <mailbox>",
  clientcredentialsCertificate: "-clientcertificate <file|thumbprint> -targetMailbox <mailbox>",
  authorizationcode: "-redirectUri <URI> -LoginHint <user>",
  devicecode: "-DeviceCode [-LoginHint <user>]",
  bridge: "-Bridge <config.json>",
  bridgePasswordHash: "-BridgePasswordHash",
};

function spec(name: string): ParameterSpec {
  const found = PARAMETERS.find((p) => p.name === name);
  // The binder only produces names from the table.
  if (!found) throw new InternalError(`unknown parameter ${name}`);
  return found;
}

function missingIn(set: ParameterSetName, given: ReadonlySet<string>): string[] {
  return PARAMETERS.filter((p) =>
    isMandatory(p, set) && !given.has(p.name) && !p.orInstead?.some((o) => given.has(o))
  ).map((p) => `-${p.name}`);
}

export function resolveParameterSet(values: ReadonlyMap<string, BoundValue>): ParameterSetName {
  const given = new Set(values.keys());
  let candidates: ParameterSetName[] = [...PARAMETER_SETS];
  // Narrow set by set, so that the first parameter that does not fit can be named.
  const narrowing: string[] = [];
  for (const name of given) {
    const sets = setsOf(spec(name));
    if (sets.length === PARAMETER_SETS.length) continue;
    const next = candidates.filter((s) => sets.includes(s));
    if (next.length === 0) {
      // -tenantID and -clientId belong to every sign-in method: name them only against the bridge.
      const signInCommon = (n: string) => SIGN_IN_SETS.every((s) => setsOf(spec(n)).includes(s));
      const specific = narrowing.filter((n) => !signInCommon(n));
      const named = specific.length > 0 ? specific : narrowing;
      throw new UsageError(
        `-${name} cannot be used together with ${named.map((n) => `-${n}`).join(", ")}: ` +
          `they belong to different sign-in methods.`,
        { code: "PARAMETER_SET_CONFLICT" },
      );
    }
    narrowing.push(name);
    candidates = next;
  }
  const complete = candidates.filter((s) => missingIn(s, given).length === 0);
  if (complete.length === 1) return complete[0];
  if (candidates.length === 1) {
    const set = candidates[0];
    throw new UsageError(
      `missing mandatory parameter${missingIn(set, given).length > 1 ? "s" : ""} ` +
        `${missingIn(set, given).join(", ")} (sign-in method ${set}: ${SET_EXAMPLES[set]}).`,
      { code: "MISSING_MANDATORY" },
    );
  }
  // What every remaining sign-in method needs (-tenantID, -clientId): named before the choice.
  const signIn = candidates.filter((s) => (SIGN_IN_SETS as readonly string[]).includes(s));
  const common = signIn.length === 0
    ? []
    : PARAMETERS.filter((p) => signIn.every((s) => isMandatory(p, s)) && !given.has(p.name));
  if (common.length > 0) {
    throw new UsageError(
      `missing mandatory parameter${common.length > 1 ? "s" : ""} ${
        common.map((p) => `-${p.name}`).join(", ")
      }.`,
      { code: "MISSING_MANDATORY" },
    );
  }
  throw new UsageError(
    `choose a sign-in method: ${candidates.map((s) => SET_EXAMPLES[s]).join(", or ")}.`,
    { code: "PARAMETER_SET_UNRESOLVED" },
  );
}
