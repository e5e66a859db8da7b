// The ventilator: binds the task endpoint, waits until every worker has joined, tells the
// sink a batch starts, then deals out the tasks. A task is [id, ms]: the worker "works" by
// sleeping that long, the ZGuide way, so the ideal time of the batch is known in advance.
//
//   npx tsx examples/divide-and-conquer/ventilator.ts --workers 4 [--tasks 100]
//       [--bind tcp://*:5557] [--sink tcp://localhost:5558]

import { Push } from "zeropipe";

import { flag, intFlag } from "./common";

const workers = intFlag("workers", 4);
const count = intFlag("tasks", 100);
const bind = flag("bind", "tcp://*:5557");
const sinkAddress = flag("sink", "tcp://localhost:5558");

/**
 * Task durations in rounds of `workers` equal ones. PUSH deals round-robin, blind to how
 * busy a worker is, so uneven tasks would leave the batch to the unluckiest worker;
 * within a round all are equal, so every worker gets the same total and the makespan
 * against total/workers measures the pipeline, not luck. Rounds still differ (20–260 ms).
 */
function durations(): number[] {
  return Array.from({ length: count }, (_, i) => {
    const round = Math.floor(i / Math.max(workers, 1));
    return 20 + ((round * 7) % 25) * 10;
  });
}

async function main(): Promise<void> {
  const tasks = new Push();
  await tasks.bind(bind);
  const sink = new Push();
  sink.connect(sinkAddress);

  // The slow-joiner fix: a PUSH deals only among the peers it has when it sends, so
  // tasks sent before the last worker's handshake would all go to the early ones.
  console.log(`ventilator: bound ${tasks.lastEndpoint}, waiting for ${workers} workers`);
  await tasks.waitForPeers(workers);

  const plan = durations();
  const total = plan.reduce((a, b) => a + b, 0);
  console.log(
    `ventilator: ${count} tasks, ${total} ms of work in all: ideal ${Math.round(total / workers)} ms with ${workers} workers`,
  );
  await sink.send(["start", String(count), String(total), String(workers)]);
  for (const [id, ms] of plan.entries()) await tasks.send([String(id), String(ms)]);

  // close() returns once the queued tasks and the start message are flushed to the peers.
  await Promise.all([tasks.close(), sink.close()]);
  console.log("ventilator: all tasks sent");
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
