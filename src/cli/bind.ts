/**
 * PowerShell-style parameter binding for argv as the OS hands it to us.
 *
 * Rules mirrored from PowerShell (checked against pwsh 7 running the original
 * script with `-File`):
 * - names are case-insensitive; an exact name or alias wins; otherwise any
 *   unambiguous prefix of a name works, an ambiguous one lists the candidates;
 * - `-Name value` and `-Name:value`; switches take `-Name`, `-Name:$true`,
 *   `-Name:$false`;
 * - a value parameter takes the next argument whatever it looks like (secrets
 *   may start with `-`), unless that argument is exactly another parameter's
 *   full name, which is far more likely a forgotten value;
 * - a parameter given twice, an empty string, or a bare word is an error.
 * The original declares no positional parameters that can be used in practice
 * (pwsh rejects `T C -clientsecret S ...`), so bare words are rejected too.
 */
import { UsageError } from "../errors.ts";
import { shown } from "../text.ts";
import { PARAMETERS, type ParameterSpec } from "./parameters.ts";

export type BoundValue = string | number | boolean;

export type BindResult =
  | { kind: "help" }
  | { kind: "version" }
  | { kind: "bound"; values: Map<string, BoundValue> };

/**
 * What starts a parameter name: `-`, and the en dash and friends that PowerShell accepts too,
 * since word processors turn "-" into them when commands are copied from guides.
 */
const DASH = /^[-\u2013\u2014\u2015]/;

const HELP_WORDS = new Set(["-?", "-h", "--help", "/?", "-help"]);

/** Finds the parameter a (dash-less) name refers to, PowerShell-style. */
export function lookupParameter(name: string, table = PARAMETERS): ParameterSpec {
  const lower = name.toLowerCase();
  const exact = table.find((p) =>
    p.name.toLowerCase() === lower || p.aliases?.some((a) => a.toLowerCase() === lower)
  );
  if (exact) return exact;
  const matches = table.filter((p) => p.name.toLowerCase().startsWith(lower));
  if (matches.length === 1) return matches[0];
  if (matches.length === 0) {
    throw new UsageError(
      `-${shown(name)}: no such parameter. Run with -? to list the parameters.`,
      { code: "UNKNOWN_PARAMETER" },
    );
  }
  throw new UsageError(
    `-${shown(name)}: ambiguous parameter name. Possible matches: ${
      matches.map((p) => `-${p.name}`).join(" ")
    }.`,
    { code: "AMBIGUOUS_PARAMETER" },
  );
}

function parseSwitch(spec: ParameterSpec, raw: string): boolean {
  const v = raw.toLowerCase();
  if (v === "$true" || v === "true" || v === "1") return true;
  if (v === "$false" || v === "false" || v === "0") return false;
  throw new UsageError(
    `-${spec.name}: is a switch; expected -${spec.name}, -${spec.name}:$true or -${spec.name}:$false, got '${
      shown(raw)
    }'.`,
    { code: "BAD_SWITCH" },
  );
}

function convertValue(spec: ParameterSpec, raw: string): BoundValue {
  if (raw === "" && !spec.allowEmpty) {
    throw new UsageError(`-${spec.name}: must not be empty.`, { code: "EMPTY_VALUE" });
  }
  switch (spec.type) {
    case "int": {
      if (!/^\+?\d{1,10}$/.test(raw.trim())) {
        throw new UsageError(`-${spec.name}: expected a whole number, got '${shown(raw)}'.`, {
          code: "BAD_NUMBER",
        });
      }
      return Number(raw.trim());
    }
    case "number": {
      const n = Number(raw.trim());
      if (raw.trim() === "" || !Number.isFinite(n)) {
        throw new UsageError(`-${spec.name}: expected a number, got '${shown(raw)}'.`, {
          code: "BAD_NUMBER",
        });
      }
      return n;
    }
    case "enum": {
      const canonical = spec.values?.[raw.trim().toLowerCase()];
      if (!canonical) {
        const allowed = [...new Set(Object.values(spec.values ?? {}))].join(", ");
        throw new UsageError(`-${spec.name}: expected one of ${allowed}, got '${shown(raw)}'.`, {
          code: "BAD_ENUM",
        });
      }
      return canonical;
    }
    default:
      return raw;
  }
}

/** True when `arg` is exactly `-<full name>` of a parameter (not a prefix). */
function isFullParameterName(arg: string): boolean {
  if (!DASH.test(arg) || arg.length < 2) return false;
  const lower = arg.slice(1).split(":")[0].toLowerCase();
  return PARAMETERS.some((p) => p.name.toLowerCase() === lower);
}

/** Binds argv to parameter names. Pure: no I/O. */
export function bindArguments(input: readonly string[]): BindResult {
  // `deno task start -- ARGS` passes the `--` through; it separates nothing here.
  const argv = input[0] === "--" ? input.slice(1) : input;
  if (argv.some((a) => HELP_WORDS.has(a.toLowerCase()))) return { kind: "help" };
  if (argv.some((a) => a.toLowerCase() === "--version")) return { kind: "version" };

  const values = new Map<string, BoundValue>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    // PowerShell accepts the en dash and friends as a parameter prefix, since
    // word processors turn "-" into them when commands are copied from guides.
    const dashed = DASH.test(arg) && arg.length > 1;
    if (!dashed) {
      throw new UsageError(
        `unexpected argument '${
          shown(arg)
        }': parameters are given by name, e.g. -tenantID <tenant>.`,
        { code: "POSITIONAL_ARGUMENT" },
      );
    }
    const body = arg.slice(1);
    const colon = body.indexOf(":");
    const name = colon >= 0 ? body.slice(0, colon) : body;
    if (name === "") {
      throw new UsageError(`'${shown(arg)}': missing parameter name.`, {
        code: "UNKNOWN_PARAMETER",
      });
    }
    const spec = lookupParameter(name);
    if (values.has(spec.name)) {
      throw new UsageError(`-${spec.name}: given more than once.`, { code: "DUPLICATE_PARAMETER" });
    }
    let raw: string;
    if (spec.type === "switch") {
      values.set(spec.name, colon >= 0 ? parseSwitch(spec, body.slice(colon + 1)) : true);
      continue;
    }
    if (colon >= 0) {
      raw = body.slice(colon + 1);
    } else {
      const next = argv[i + 1];
      if (next === undefined || isFullParameterName(next)) {
        const then = next === undefined ? "" : `; '${shown(next)}' after it is a parameter`;
        throw new UsageError(
          `-${spec.name}: missing value (expected ${spec.placeholder}${then}).`,
          {
            code: "MISSING_VALUE",
          },
        );
      }
      raw = next;
      i++;
    }
    values.set(spec.name, convertValue(spec, raw));
  }
  return { kind: "bound", values };
}
