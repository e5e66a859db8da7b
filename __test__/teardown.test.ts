// What a resolved send promises when its thread or process ends: a message whose send()
// resolved is delivered within linger when the thread or process ends normally — a worker
// terminated from outside, process.exit(), the end of the script — while a peer can take it,
// as libzmq's context termination does. Each case ends right after its sends resolved, before
// the event loop could run again.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import * as path from "node:path";
import { describe, it } from "node:test";
import { Worker } from "node:worker_threads";

import { bindFresh, PROTOS, receiveN, trackSockets, within } from "./helpers/sockets";

const T = { timeout: 60_000 };
const INDEX = JSON.stringify(path.resolve(__dirname, "..", "index.js"));

/** A script that sends `count` small messages to `address`, awaiting each, then ends by `how`. */
function sender(address: string, count: number, how: string): string {
  return `
    const { Push } = require(${INDEX});
    (async () => {
      const push = new Push();
      push.connect(${JSON.stringify(address)});
      for (let i = 0; i < ${count}; i++) await push.send("message " + i);
      ${how}
    })();
  `;
}

const expected = (n: number) => Array.from({ length: n }, (_, i) => `message ${i}`);

describe("a worker thread terminated right after its sends resolved", () => {
  const { pull } = trackSockets();
  for (const proto of PROTOS) {
    it(`delivers every one of them over ${proto}`, T, async () => {
      const q = pull();
      const address = await bindFresh(q, proto);
      // The worker tells us it is done, then spins: nothing after the sends can run in it,
      // so only what the addon holds can reach the peer.
      const worker = new Worker(
        sender(address, 8, `require("node:worker_threads").parentPort.postMessage("sent"); for (;;) {}`),
        { eval: true },
      );
      await within(once(worker, "message"), 20_000, "the worker's sends");
      await worker.terminate();
      const got = await receiveN(q, 8);
      assert.deepEqual(got.map((m) => String(m[0])), expected(8));
    });
  }
});

describe("a process that ends right after its sends resolved", () => {
  const { pull } = trackSockets();
  const endings = {
    "process.exit()": "process.exit(0)",
    "the end of the script, without close()": "",
  };
  for (const [what, how] of Object.entries(endings)) {
    for (const proto of ["tcp", "ipc"] as const) {
      it(`delivers every one of them over ${proto} at ${what}`, T, async () => {
        const q = pull();
        const address = await bindFresh(q, proto);
        const child = spawn(process.execPath, ["-e", sender(address, 300, how)], { stdio: ["ignore", "inherit", "inherit"] });
        const [code] = await within(once(child, "exit"), 30_000, "the sender's exit");
        assert.equal(code, 0);
        const got = await receiveN(q, 300);
        assert.deepEqual(got.map((m) => String(m[0])), expected(300));
      });
    }
  }
});
