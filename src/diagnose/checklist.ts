/**
 * The -Diagnose checklist: every check in order, each passed, failed, or not
 * run (after the first failure). Titles are translated; details (server
 * lines, codes) are not.
 */
import { type Lang, MESSAGES, type Values } from "./messages.ts";

export const CHECKS = [
  "parameters",
  "authority",
  "token",
  "claims",
  "server",
  "login",
  "mailbox",
] as const;

export type CheckId = typeof CHECKS[number];

export interface CheckResult {
  id: CheckId;
  title: string;
  /** null = not run. */
  ok: boolean | null;
  detail: string | null;
}

export class Checklist {
  #results = new Map<CheckId, { ok: boolean; detail: string | null }>();
  /** The check the run is in now: an error thrown is charged to it. */
  current: CheckId = "parameters";

  pass(id: CheckId, detail: string | null = null): void {
    this.#results.set(id, { ok: true, detail });
  }

  fail(id: CheckId, detail: string | null = null): void {
    this.#results.set(id, { ok: false, detail });
  }

  /** Marks the current check as started (passing the ones before it is explicit). */
  start(id: CheckId): void {
    this.current = id;
  }

  results(lang: Lang, values: Values): CheckResult[] {
    return CHECKS.map((id) => {
      const r = this.#results.get(id);
      return {
        id,
        title: MESSAGES[lang][`check.${id}`](values),
        ok: r?.ok ?? null,
        detail: r?.detail ?? null,
      };
    });
  }
}
