// The blocking work: what a real server would hand off (resizing an image, rendering a PDF,
// hashing a password), reduced to its one property that matters here — it holds the thread
// for a known time. It hashes for `ms` of wall-clock time, so the job blocks as long on a
// fast machine as on a slow one, and answers the input's SHA-256, which a client can check.

import { createHash } from "node:crypto";

export function blockingWork(input: string, ms: number): string {
  const until = performance.now() + ms;
  let state = createHash("sha256").update(input).digest();
  while (performance.now() < until) state = createHash("sha256").update(state).digest();
  return createHash("sha256").update(input).digest("hex");
}

/** What a client expects back for `input`: cheap to compute, so every answer is checked. */
export function expectedDigest(input: string): string {
  return createHash("sha256").update(input).digest("hex");
}
