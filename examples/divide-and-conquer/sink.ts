// The sink: binds the result endpoint, learns the batch size from the ventilator's start
// message, collects one result per task and prints the elapsed time, then exits.
//
//   npx tsx examples/divide-and-conquer/sink.ts [--bind tcp://*:5558]
//
// The last line is machine-readable: `summary {json}` with the elapsed ms, the ideal ms,
// the results per worker and when each worker's last came, and any task that came back twice or never.

import { Pull } from "zeropipe";

import { flag } from "./common";

async function main(): Promise<void> {
  const results = new Pull();
  await results.bind(flag("bind", "tcp://*:5558"));
  console.log(`sink: bound ${results.lastEndpoint}, waiting for a batch`);

  let expected: number | null = null;
  let ideal = 0;
  let startedAt: number | null = null;
  const seen = new Set<number>();
  const duplicates: number[] = [];
  const byWorker: Record<string, number> = {};
  // When each worker's last result came: the batch ends with the slowest one.
  const finishedMs: Record<string, number> = {};

  for await (const [kind, a, b, c] of results) {
    // The clock starts at the batch's first message: the start message, which leaves the
    // ventilator before any task, unless a result on another connection overtook it.
    startedAt ??= performance.now();
    if (kind!.toString() === "start") {
      expected = Number(a!.toString());
      ideal = Number(b!.toString()) / Number(c!.toString());
    } else {
      const id = Number(a!.toString());
      if (seen.has(id)) duplicates.push(id);
      seen.add(id);
      const worker = b!.toString();
      byWorker[worker] = (byWorker[worker] ?? 0) + 1;
      finishedMs[worker] = Math.round(performance.now() - startedAt);
    }
    if (expected !== null && seen.size >= expected) break;
  }

  const elapsedMs = Math.round(performance.now() - startedAt!);
  const missing = Array.from({ length: expected ?? 0 }, (_, i) => i).filter((i) => !seen.has(i));
  console.log(`sink: ${seen.size} results in ${elapsedMs} ms (ideal ${Math.round(ideal)} ms)`);
  for (const [worker, n] of Object.entries(byWorker)) {
    console.log(`sink: ${worker} did ${n}, its last at ${finishedMs[worker]} ms`);
  }
  console.log(`summary ${JSON.stringify({ elapsedMs, idealMs: ideal, byWorker, finishedMs, duplicates, missing })}`);
  await results.close();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
