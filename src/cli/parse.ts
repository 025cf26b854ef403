/** The command line, end to end: argv -> help | version | validated options. Pure except file checks. */
import { UsageError } from "../errors.ts";
import { bindArguments, type BoundValue } from "./bind.ts";
import { buildOptions, type Options, readFileArguments } from "./options.ts";
import { resolveParameterSet } from "./parameter_set.ts";
import { BRIDGE_ALSO, PARAMETERS } from "./parameters.ts";

/** `-Bridge`: everything else comes from the configuration file (src/bridge/config.ts). */
export interface BridgeCommand {
  kind: "bridge";
  configPath: string;
  verbose: boolean;
  /** `-Bridge ... -Diagnose`: check the configuration, the token and each account, then exit. */
  diagnose: boolean;
  language?: "en" | "de";
}

export type Command =
  | { kind: "help" }
  | { kind: "version" }
  | { kind: "run"; options: Options }
  | BridgeCommand
  | { kind: "bridgePasswordHash"; language?: "en" | "de" };

function checkBridgeParameters(
  values: ReadonlyMap<string, BoundValue>,
  set: "bridge" | "bridgePasswordHash",
): void {
  const own = set === "bridge" ? "Bridge" : "BridgePasswordHash";
  for (const name of values.keys()) {
    const spec = PARAMETERS.find((p) => p.name === name);
    if (name === own || BRIDGE_ALSO[set].includes(name) || spec?.common) continue;
    throw new UsageError(
      `-${name} cannot be used with -${own}` +
        (own === "Bridge" ? "; the bridge takes its settings from the configuration file." : "."),
      { code: "BAD_COMBINATION" },
    );
  }
}

/** `env` gives the proxy variables (HTTPS_PROXY, NO_PROXY, ...); none by default. */
export function parseCommandLine(
  argv: readonly string[],
  env: (name: string) => string | undefined = () => undefined,
): Command {
  const bound = bindArguments(argv);
  if (bound.kind !== "bound") return bound;
  const set = resolveParameterSet(bound.values);
  if (set === "bridge" || set === "bridgePasswordHash") return bridgeCommand(bound.values, set);
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
  if (set === "bridge" || set === "bridgePasswordHash") return bridgeCommand(bound.values, set);
  const files = await readFileArguments(bound.values);
  return { kind: "run", options: buildOptions(bound.values, set, env, files) };
}

/** The bridge's own commands: they take no sign-in options. */
function bridgeCommand(
  values: Map<string, BoundValue>,
  set: "bridge" | "bridgePasswordHash",
): Command {
  const language = values.get("Language") as "en" | "de" | undefined;
  if (set === "bridge") {
    checkBridgeParameters(values, set);
    const configPath = String(values.get("Bridge") ?? "");
    if (configPath.trim() === "") {
      throw new UsageError("-Bridge: give the configuration file.", { code: "EMPTY_VALUE" });
    }
    return {
      kind: "bridge",
      configPath,
      verbose: values.get("Verbose") === true,
      diagnose: values.get("Diagnose") === true,
      language,
    };
  }
  checkBridgeParameters(values, set);
  return { kind: "bridgePasswordHash", language };
}
