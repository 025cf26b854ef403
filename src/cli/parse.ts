/** The command line, end to end: argv -> help | version | validated options. Pure except file checks. */
import { bindArguments } from "./bind.ts";
import { buildOptions, type Options, readFileArguments } from "./options.ts";
import { resolveParameterSet } from "./parameter_set.ts";

export type Command =
  | { kind: "help" }
  | { kind: "version" }
  | { kind: "run"; options: Options };

/** `env` gives the proxy variables (HTTPS_PROXY, NO_PROXY, ...); none by default. */
export function parseCommandLine(
  argv: readonly string[],
  env: (name: string) => string | undefined = () => undefined,
): Command {
  const bound = bindArguments(argv);
  if (bound.kind !== "bound") return bound;
  const set = resolveParameterSet(bound.values);
  return { kind: "run", options: buildOptions(bound.values, set, env) };
}

/**
 * The same for a run: the files named by parameters are read first, bounded and within
 * -TimeoutSeconds (a FIFO may never end), so the rest stays synchronous.
 */
export async function readCommandLine(
  argv: readonly string[],
  env: (name: string) => string | undefined = () => undefined,
): Promise<Command> {
  const bound = bindArguments(argv);
  if (bound.kind !== "bound") return bound;
  const set = resolveParameterSet(bound.values);
  const files = await readFileArguments(bound.values);
  return { kind: "run", options: buildOptions(bound.values, set, env, files) };
}
