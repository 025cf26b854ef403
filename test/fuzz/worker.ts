/**
 * Worker entry: runs one `RunRequest` and posts its `RunReport`. Inputs run here, not in the
 * test process, so that the supervisor can end a hung input (a synchronous loop included)
 * with `terminate()` and still report which input it was.
 */

/// <reference lib="deno.worker" />

import { loadCorpus } from "./corpus.ts";
import { runInputs, type RunRequest } from "./harness.ts";
import type { AnyTarget } from "./target.ts";

self.onmessage = async (event: MessageEvent<{ request: RunRequest; beat: SharedArrayBuffer }>) => {
  const { request, beat } = event.data;
  const targets: { findTarget(name: string): AnyTarget } = await import(request.module);
  const target = targets.findTarget(request.target);
  const corpus = await loadCorpus(request.corpusDir, target);
  const report = await runInputs(target, request, corpus, new Int32Array(beat));
  self.postMessage(report);
};
