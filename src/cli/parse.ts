/** The command line, end to end: argv -> help | version | validated options. Pure except file checks. */
import { bindArguments } from "./bind.ts";
import { buildOptions, type Options } from "./options.ts";
import { resolveParameterSet } from "./parameter_set.ts";

export type Command =
  | { kind: "help" }
  | { kind: "version" }
  | { kind: "run"; options: Options };

export function parseCommandLine(argv: readonly string[]): Command {
  const bound = bindArguments(argv);
  if (bound.kind !== "bound") return bound;
  const set = resolveParameterSet(bound.values);
  return { kind: "run", options: buildOptions(bound.values, set) };
}
