/**
 * The corpus: small interesting inputs kept in the repo, one JSON file per input in
 * `corpus/<target>/`, shaped `{ "note": "why it is here", "input": <the target's input> }`.
 * Every run replays all of them, and the generators mutate them. The long run adds the inputs
 * that broke something, so a fixed bug stays fixed.
 */

import type { AnyTarget } from "./target.ts";

export interface CorpusEntry {
  /** File name within the target's folder. */
  file: string;
  note?: string;
  input: unknown;
}

export const CORPUS_DIR = new URL("./corpus/", import.meta.url).pathname;

/** The target's corpus in file-name order (the order makes mutation reproducible). */
export async function loadCorpus(dir: string, target: AnyTarget): Promise<CorpusEntry[]> {
  const folder = `${dir}/${target.name}`;
  const files: string[] = [];
  try {
    for await (const entry of Deno.readDir(folder)) {
      if (entry.isFile && entry.name.endsWith(".json")) files.push(entry.name);
    }
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
  files.sort();
  const entries: CorpusEntry[] = [];
  for (const file of files) {
    const json: unknown = JSON.parse(await Deno.readTextFile(`${folder}/${file}`), revive);
    const input = (json as { input?: unknown })?.input;
    if (!target.accepts(input)) {
      throw new Error(`corpus file ${folder}/${file} is not an input of target ${target.name}`);
    }
    entries.push({ file, note: (json as { note?: string }).note, input });
  }
  return entries;
}

/** Writes one input into the corpus; returns its path. Formatted as `deno fmt` wants JSON. */
export async function saveCorpusEntry(
  dir: string,
  target: string,
  file: string,
  input: unknown,
  note: string,
): Promise<string> {
  await Deno.mkdir(`${dir}/${target}`, { recursive: true });
  const path = `${dir}/${target}/${file}`;
  await Deno.writeTextFile(path, JSON.stringify({ note, input }, replace, 2) + "\n");
  return path;
}

/**
 * `deno fmt` refuses JSON with a lone surrogate ("\ud800"), which fuzz inputs often hold, so
 * such strings are stored as `{ "$utf16": "<4 hex digits per UTF-16 unit>" }`.
 */
function replace(_key: string, value: unknown): unknown {
  if (typeof value !== "string" || value.isWellFormed()) return value;
  let hex = "";
  for (let i = 0; i < value.length; i++) hex += value.charCodeAt(i).toString(16).padStart(4, "0");
  return { $utf16: hex };
}

function revive(_key: string, value: unknown): unknown {
  const hex = (value as { $utf16?: unknown } | null)?.$utf16;
  if (typeof hex !== "string" || Object.keys(value as object).length !== 1) return value;
  let text = "";
  for (let i = 0; i < hex.length; i += 4) {
    text += String.fromCharCode(parseInt(hex.slice(i, i + 4), 16));
  }
  return text;
}

/** The corpus file name for an input that failed: reproducible names, one per input. */
export function failureFileName(failure: { seed: number; index?: number; corpusFile?: string }) {
  return failure.corpusFile !== undefined
    ? failure.corpusFile
    : `crash-${failure.seed}-${failure.index}.json`;
}
