/**
 * The -Diagnose checklist: every check in order, each passed, failed, or not
 * run (after the first failure). Titles are translated; details (server
 * lines, codes) are not.
 */
import { toToolError } from "../errors.ts";
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

/**
 * Records the checks of one run. Each phase runs inside `run(id, fn)`: it
 * passes when `fn` returns and fails (with the error's code) when it throws;
 * a phase may move on to the next check once its first part is proven
 * (`next`: the login is accepted, the mailbox check begins).
 */
export class Checks {
  #results = new Map<CheckId, { ok: boolean; detail: string | null }>();
  #current: CheckId = "parameters";

  async run<T>(id: CheckId, fn: () => Promise<T>): Promise<T> {
    this.#current = id;
    try {
      const result = await fn();
      this.record(this.#current, true);
      return result;
    } catch (error) {
      const failure = toToolError(error);
      this.record(this.#current, false, failure.code ?? failure.message);
      throw error;
    }
  }

  /** Passes the check running now and starts `id`, if `id` comes later in the list. */
  next(id: CheckId): void {
    if (CHECKS.indexOf(id) <= CHECKS.indexOf(this.#current)) return;
    this.record(this.#current, true);
    this.#current = id;
  }

  /** A check decided without a phase of its own (parameters; claims that only warn). */
  record(id: CheckId, ok: boolean, detail: string | null = null): void {
    this.#results.set(id, { ok, detail });
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
