import assert from "node:assert/strict";
import { dirname, join, relative } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";
import { LAZY_MODULES } from "./lazy.ts";

const SRC = dirname(fromFileUrl(import.meta.url));

async function sources(dir = SRC): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) found.push(...await sources(path));
    else if (entry.name.endsWith(".ts") && !entry.name.endsWith("_test.ts")) found.push(path);
  }
  return found;
}

Deno.test("lazy() calls name a listed module and the type of that same module", async () => {
  const used = new Set<string>();
  for (const file of await sources()) {
    const text = await Deno.readTextFile(file);
    for (const call of text.matchAll(/\blazy<([^>]*)>\(\s*"([^"]+)"/g)) {
      const typed = /^typeof import\("([^"]+)"\)$/.exec(call[1].trim());
      assert.ok(typed, `${relative(SRC, file)}: lazy<${call[1]}> must be typeof import("...")`);
      const typePath = relative(SRC, join(dirname(file), typed[1]));
      assert.equal(typePath, call[2], `${relative(SRC, file)}: type and module differ`);
      assert.ok((LAZY_MODULES as readonly string[]).includes(call[2]), `${call[2]} not listed`);
      used.add(call[2]);
    }
    // A literal dynamic import of our own modules would put them back into every start's graph.
    const literal = /\bimport\(\s*"\.{1,2}\/[^"]+"\s*\)/.exec(text.replace(/typeof import\(/g, ""));
    assert.equal(literal, null, `${relative(SRC, file)}: use lazy() for ${literal?.[0]}`);
  }
  assert.deepEqual([...used].sort(), [...LAZY_MODULES].sort(), "every listed module is used");
});

Deno.test("deno run reads none of the lazy modules before main.ts starts", async () => {
  // Deno's debug log names every file it reads to build the start-up graph; --version then ends
  // the run before any lazy() call.
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--log-level=debug", join(SRC, "main.ts"), "--version"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0);
  const log = new TextDecoder().decode(out.stderr);
  const read = [...log.matchAll(/fetch_no_follow - specifier: (file:\S+)/g)]
    .map((m) => relative(SRC, fromFileUrl(m[1])));
  assert.ok(read.includes("main.ts") && read.includes("cli/parse.ts"), "the log names main.ts");
  for (const module of LAZY_MODULES) assert.ok(!read.includes(module), module);
});
