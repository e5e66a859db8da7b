// A worker on zeropipe: takes a task from the ventilator, sleeps its ms, reports to the
// sink. Runs until stopped (Ctrl-C), like the ZGuide's.
//
//   npx tsx examples/divide-and-conquer/worker.ts [--tasks tcp://localhost:5557]
//       [--sink tcp://localhost:5558] [--name zeropipe-<pid>]

import { Pull, Push } from "zeropipe";

import { flag, onStop, work } from "./common";

const name = flag("name", `zeropipe-${process.pid}`);
const tasks = new Pull();
// A result the sink never takes must not hold a stopped worker for the default 30 s linger.
const sink = new Push({ linger: 1000 });
tasks.connect(flag("tasks", "tcp://localhost:5557"));
sink.connect(flag("sink", "tcp://localhost:5558"));
onStop(async () => {
  await Promise.all([tasks.close(), sink.close()]);
});

work(name, tasks, sink);
