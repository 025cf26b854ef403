/**
 * Opt-in timing trace (GET_IMAPACCESSTOKEN_TRACE=1): named moments of a run in milliseconds
 * since the process started, printed on stderr at the end (`deno task bench` reads them for
 * its phase breakdown). Marks cost a `performance.now()` call; nothing is printed otherwise.
 */

export const TRACE_ENV = "GET_IMAPACCESSTOKEN_TRACE";

const marks: [string, number][] = [];

/** Records that the run reached `name` now. */
export function mark(name: string): void {
  marks.push([name, performance.now()]);
}

/** The trace lines (`TRACE <name> <ms>`), in order; empty when nothing was marked. */
export function traceLines(): string[] {
  return marks.map(([name, ms]) => `TRACE ${name} ${ms.toFixed(1)}`);
}
