/**
 * The -Diagnose checklist: every check in order, each passed, failed, or not
 * run (after the first failure). Titles are translated; details (server
 * lines, codes) are not.
 */
import { toToolError } from "../errors.ts";
import { type Lang, MESSAGES, type Values } from "./messages.ts";
import type { Step } from "./advice.ts";

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
  /** Findings made during this check (mix-ups, missing role, the chosen protocol, ...). */
  notes: CheckNote[];
}

/** One finding under a check: a warning with its code, or information, each with its step. */
export interface CheckNote {
  /** The finding's code (errors.ts); null for information. */
  code: string | null;
  step: Step;
  /** The warning's cause, or the information, in the run's language. */
  text: string;
  warning: boolean;
}

/**
 * Records the checks of one run. Each phase runs inside `run(id, fn)`: it
 * passes when `fn` returns and fails (with the error's code) when it throws;
 * a phase may move on to the next check once its first part is proven
 * (`next`: the login is accepted, the mailbox check begins).
 */
export class Checks {
  #results = new Map<CheckId, { ok: boolean; detail: string | null }>();
  #notes = new Map<CheckId, CheckNote[]>();
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

  /** Lists a finding under check `id` (whether or not that check has run yet). */
  note(id: CheckId, note: CheckNote): void {
    this.#notes.set(id, [...this.#notes.get(id) ?? [], note]);
  }

  results(lang: Lang, values: Values): CheckResult[] {
    return CHECKS.map((id) => {
      const r = this.#results.get(id);
      return {
        id,
        title: MESSAGES[lang][`check.${id}`](values),
        ok: r?.ok ?? null,
        detail: r?.detail ?? null,
        notes: [...this.#notes.get(id) ?? []],
      };
    });
  }
}
