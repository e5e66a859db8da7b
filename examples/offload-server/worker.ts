// A worker process: takes jobs from the server's pool and does the blocking work. It may
// block its own event loop as long as it likes — nobody waits on it but the pool, which
// hands it one job at a time (concurrency 1) and gives the others to idle workers.
//
//   npx tsx examples/offload-server/worker.ts [--jobs tcp://127.0.0.1:5555]
//       [--results tcp://127.0.0.1:5556]

import { parseArgs } from "node:util";

import { serve } from "zeropipe";

import { blockingWork } from "./work";

const { values: opts } = parseArgs({
  options: {
    jobs: { type: "string", default: "tcp://127.0.0.1:5555" },
    results: { type: "string", default: "tcp://127.0.0.1:5556" },
  },
});
const name = `worker-${process.pid}`;

const worker = serve(([input, ms]) => [blockingWork(input!.toString(), Number(ms)), name], {
  jobs: opts.jobs!,
  results: opts.results!,
  concurrency: 1,
});
console.log(`${name}: serving ${opts.jobs} → ${opts.results}`);

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => void worker.close().then(() => process.exit(0)));
}
worker.done.catch((err) => {
  console.error(err);
  process.exit(1);
});
