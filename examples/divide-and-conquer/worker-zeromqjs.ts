// The same worker on zeromq.js (libzmq): the pipeline does not care which ZeroMQ a
// worker is built on.
//
//   npx tsx examples/divide-and-conquer/worker-zeromqjs.ts [--tasks tcp://localhost:5557]
//       [--sink tcp://localhost:5558] [--name zeromqjs-<pid>]

import { Pull, Push } from "zeromq";

import { flag, onStop, work } from "./common";

const name = flag("name", `zeromqjs-${process.pid}`);
const tasks = new Pull();
// libzmq's default linger waits for ever on close; a result the sink never takes must not
// keep a stopped worker alive.
const sink = new Push({ linger: 1000 });
tasks.connect(flag("tasks", "tcp://localhost:5557"));
sink.connect(flag("sink", "tcp://localhost:5558"));
onStop(async () => {
  tasks.close();
  sink.close();
});

work(name, tasks, sink);
