/** Every fuzz target, in the order the tests run them. */

import type { AnyTarget } from "../target.ts";
import { claimsTarget, xoauth2Target } from "./claims.ts";
import { certificateTarget } from "./certificate.ts";
import { cliTarget } from "./cli.ts";
import { linesTarget, valuesTarget } from "./lines.ts";
import { imapTarget, pop3Target, smtpTarget } from "./sessions.ts";

export const TARGETS: readonly AnyTarget[] = [
  imapTarget,
  pop3Target,
  smtpTarget,
  linesTarget,
  valuesTarget,
  cliTarget,
  claimsTarget,
  xoauth2Target,
  certificateTarget,
];

export function findTarget(name: string): AnyTarget {
  const target = TARGETS.find((t) => t.name === name);
  if (!target) throw new Error(`no fuzz target ${name}`);
  return target;
}
