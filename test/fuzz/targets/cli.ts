/**
 * Fuzz target for the command line: `parseCommandLine(argv)` must return help, version or
 * validated options, or throw a `UsageError` with a code; nothing else, whatever the argv.
 * It reads the files named by -MailboxFile, -CaFile and -CertificateKeyFile, so the target
 * makes a few in a temp folder and keeps every generated file argument inside it.
 */

import { parseCommandLine } from "../../../src/cli/parse.ts";
import { UsageError } from "../../../src/errors.ts";
import { CLI_FILES, CLI_TOKENS, commandLine, keepFilesInside, TMP } from "../grammar/cli.ts";
import { mutateList, mutateString, randomString } from "../mutate.ts";
import { check, defineTarget, isRecord, isStringArray, outcomeOf } from "../target.ts";

export interface CliInput {
  /** The command line; `{tmp}` stands for the fuzz folder. */
  argv: string[];
}

interface CliContext {
  dir: string;
}

export const cliTarget = defineTarget<CliInput, CliContext>({
  name: "cli",
  ciInputs: 14000,
  minCodes: 14,
  async setup(dir) {
    for (const [name, content] of Object.entries(CLI_FILES)) {
      if (typeof content === "string") await Deno.writeTextFile(`${dir}/${name}`, content);
      else await Deno.writeFile(`${dir}/${name}`, content);
    }
    await Deno.mkdir(`${dir}/folder`);
    return { dir };
  },
  accepts: (value): value is CliInput => isRecord(value) && isStringArray(value.argv),
  generate(rng, _ctx, corpus) {
    const argv = rng.weighted<() => string[]>([
      [1, () => Array.from({ length: rng.small(8) }, () => randomString(rng, 30))],
      [4, () => commandLine(rng)],
      [2, () => {
        // One value changed, the structure kept: reaches the checks behind the binder.
        const argv = commandLine(rng);
        const at = rng.int(argv.length);
        argv[at] = mutateString(rng, argv[at], CLI_TOKENS, 2048);
        return argv;
      }],
      [3, () =>
        mutateList(
          rng,
          commandLine(rng),
          () => rng.pick(CLI_TOKENS),
          (arg) => mutateString(rng, arg, CLI_TOKENS, 2048),
        )],
      [1, () =>
        corpus.length > 0
          ? mutateList(
            rng,
            rng.pick(corpus).argv,
            () => rng.pick(CLI_TOKENS),
            (arg) => mutateString(rng, arg, CLI_TOKENS, 2048),
          )
          : commandLine(rng)],
    ])();
    return { argv: keepFilesInside(argv) };
  },
  run(input, ctx) {
    // Corpus inputs are checked like generated ones: no file outside the fuzz folder.
    const safe = keepFilesInside(input.argv);
    const argv = safe.map((arg) => arg.replaceAll(TMP, ctx.dir));
    return outcomeOf(() => {
      const command = parseCommandLine(argv);
      if (command.kind !== "run") return;
      const { options } = command;
      if ("mailboxes" in options) {
        check(isStringArray(options.mailboxes), "mailboxes are not strings");
      }
      const { port } = options.mail;
      check(Number.isInteger(port) && port > 0, `port ${port}`);
      check(
        Number.isFinite(options.timeoutSeconds) && options.timeoutSeconds > 0,
        `timeout ${options.timeoutSeconds}`,
      );
      check(options.tenantId !== "" && options.clientId !== "", "empty tenant or client ID");
    }, [UsageError]);
  },
});
