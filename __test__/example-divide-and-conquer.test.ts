// examples/divide-and-conquer: the ZGuide's parallel pipeline as separate processes — a
// ventilator, four workers on three ZeroMQ implementations (zeropipe, zeromq.js, pyzmq) and
// a sink — run as its README runs it, on loopback and then across network namespaces that
// stand for separate hosts.

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { after, afterEach, describe, it, type TestContext } from "node:test";

import { createHosts, netnsUnavailable, type Hosts } from "./helpers/netns";
import { pythonPath } from "./helpers/peer";
import { start, startTs, stop, stopAll, type Started } from "./helpers/processes";
import { freePort } from "./helpers/sockets";

const DIR = "examples/divide-and-conquer";
const TASKS = 100;
const WORKERS = 4;
/** The bound: the batch ends within 1.3× of total work / workers. */
const SLOWDOWN_LIMIT = 1.3;

afterEach(stopAll);

interface Summary {
  elapsedMs: number;
  idealMs: number;
  byWorker: Record<string, number>;
  finishedMs: Record<string, number>;
  duplicates: number[];
  missing: number[];
}

interface WorkerSpec {
  name: string;
  flavour: "zeropipe" | "zeromqjs" | "pyzmq";
  /** Where it connects: the ventilator's and the sink's endpoints as seen from its host. */
  tasks: string;
  sink: string;
  /** Command prefix that puts it on its host (none: this one). */
  prefix?: string[];
}

function startWorker(w: WorkerSpec): Started {
  const args = ["--tasks", w.tasks, "--sink", w.sink, "--name", w.name];
  const prefix = w.prefix ?? [];
  switch (w.flavour) {
    case "zeropipe":
      return startTs(w.name, `${DIR}/worker.ts`, args, prefix);
    case "zeromqjs":
      return startTs(w.name, `${DIR}/worker-zeromqjs.ts`, args, prefix);
    case "pyzmq": {
      const [command, ...rest] = [...prefix, pythonPath(), `${DIR}/worker.py`, ...args];
      return start(w.name, command!, rest);
    }
  }
}

/**
 * Runs one batch: sink, workers, then the ventilator (which waits for all four workers
 * before it sends), and checks that every task was done exactly once and reported once.
 * Returns the sink's summary for the timing assertion.
 */
async function runBatch(
  hub: { prefix?: string[]; tasksBind: string; sinkBind: string; sinkFromHub: string },
  workers: WorkerSpec[],
): Promise<Summary> {
  const prefix = hub.prefix ?? [];
  const sink = startTs("sink", `${DIR}/sink.ts`, ["--bind", hub.sinkBind], prefix);
  const everyone: Started[] = [sink];
  const dump = () => everyone.map((p) => p.describe()).join("\n");
  try {
    await sink.waitForLines(1, 30_000);
    const running = workers.map(startWorker);
    everyone.push(...running);
    const ventilator = startTs(
      "ventilator",
      `${DIR}/ventilator.ts`,
      ["--bind", hub.tasksBind, "--sink", hub.sinkFromHub, "--workers", String(WORKERS), "--tasks", String(TASKS)],
      prefix,
    );
    everyone.push(ventilator);

    const sinkExit = await sink.exited;
    assert.deepEqual(sinkExit, { code: 0, signal: null }, "the sink exits 0");
    const last = sink.lines.at(-1)?.text ?? "";
    assert.match(last, /^summary /, "the sink's last line is its summary");
    const summary = JSON.parse(last.slice("summary ".length)) as Summary;
    assert.deepEqual(await ventilator.exited, { code: 0, signal: null }, "the ventilator exits 0");

    assert.deepEqual(summary.missing, [], "every task came back");
    assert.deepEqual(summary.duplicates, [], "no task came back twice");
    // PUSH deals round-robin among the peers it has: with all four joined before the
    // first task, each gets exactly a quarter, whatever ZeroMQ it runs on.
    assert.deepEqual(
      summary.byWorker,
      Object.fromEntries(workers.map((w) => [w.name, TASKS / WORKERS])),
      "each worker did a quarter of the tasks",
    );

    // The workers' own account: each task done once (a task redelivered and done twice
    // would show here even if the sink had stopped listening).
    const done: number[] = [];
    for (const [i, w] of running.entries()) {
      const lines = await w.waitForLines(summary.byWorker[workers[i]!.name]!, 10_000);
      for (const { text } of lines) {
        const m = /^(\S+) task (\d+) (\d+) ms$/.exec(text);
        assert.ok(m && m[1] === w.name, `unexpected line from ${w.name}: ${text}`);
        done.push(Number(m[2]));
      }
    }
    for (const w of running) {
      assert.deepEqual(await stop(w), { code: 0, signal: null }, `${w.name} stops cleanly on SIGTERM`);
      assert.equal(w.lines.length, TASKS / WORKERS, `${w.name} did nothing after the batch`);
    }
    assert.deepEqual(
      done.sort((a, b) => a - b),
      Array.from({ length: TASKS }, (_, i) => i),
      "the workers did every task exactly once",
    );
    return summary;
  } catch (err) {
    // Whatever failed, the processes' output is what explains it.
    if (err instanceof Error) err.message += `\n${dump()}`;
    throw err;
  }
}

function assertMakespan(t: TestContext, summary: Summary, where: string): void {
  const ratio = summary.elapsedMs / summary.idealMs;
  const workers = Object.entries(summary.finishedMs).map(([name, ms]) => `${name} ${ms}`);
  t.diagnostic(
    `${where}: ${TASKS} tasks in ${summary.elapsedMs} ms, ideal ${summary.idealMs} ms: ${ratio.toFixed(3)}× ` +
      `(limit ${SLOWDOWN_LIMIT}×); each worker's last result at (ms): ${workers.join(", ")}`,
  );
  assert.ok(
    ratio <= SLOWDOWN_LIMIT,
    `${where}: the batch took ${summary.elapsedMs} ms, ${ratio.toFixed(2)}× the ideal ${summary.idealMs} ms (limit ${SLOWDOWN_LIMIT}×)`,
  );
}

const FLAVOURS: WorkerSpec["flavour"][] = ["zeropipe", "pyzmq", "zeromqjs", "zeropipe"];

describe("examples/divide-and-conquer (ventilator, 4 workers on zeropipe, pyzmq and zeromq.js, sink)", () => {
  it("finishes 100 tasks within 1.3× of the ideal time on loopback, each task done exactly once", async (t) => {
    assert.ok(existsSync(pythonPath()), `no Python with pyzmq at ${pythonPath()}: run scripts/setup-python.sh`);
    const tasks = `tcp://127.0.0.1:${await freePort()}`;
    const sink = `tcp://127.0.0.1:${await freePort()}`;
    const summary = await runBatch(
      { tasksBind: tasks, sinkBind: sink, sinkFromHub: sink },
      FLAVOURS.map((flavour, i) => ({ name: `${flavour}-${i + 1}`, flavour, tasks, sink })),
    );
    assertMakespan(t, summary, "loopback");
  });

  describe("across network namespaces joined by veth pairs (separate hosts)", () => {
    let hosts: Hosts | null = null;
    after(() => hosts?.remove());

    it("finishes 100 tasks within 1.3× of the ideal time with the workers on two other hosts", async (t) => {
      const missing = netnsUnavailable();
      if (missing) {
        const reason = `network namespaces are not available here: ${missing}`;
        if (process.env.ZEROPIPE_REQUIRE_NETNS === "1") assert.fail(`${reason} (ZEROPIPE_REQUIRE_NETNS=1)`);
        t.diagnostic(reason);
        t.skip(reason);
        return;
      }
      assert.ok(existsSync(pythonPath()), `no Python with pyzmq at ${pythonPath()}: run scripts/setup-python.sh`);
      hosts = createHosts(2);
      // Fresh namespaces: every port is free, so the ZGuide's own ports will do.
      const [a, b] = hosts.hosts as [(typeof hosts.hosts)[0], (typeof hosts.hosts)[0]];
      const on = (host: typeof a) => ({
        tasks: `tcp://${host.hubAddress}:5557`,
        sink: `tcp://${host.hubAddress}:5558`,
        prefix: hosts!.exec(host.ns),
      });
      const summary = await runBatch(
        {
          prefix: hosts.exec(hosts.hub),
          tasksBind: "tcp://*:5557",
          sinkBind: "tcp://*:5558",
          sinkFromHub: "tcp://127.0.0.1:5558",
        },
        FLAVOURS.map((flavour, i) => ({ name: `${flavour}-${i + 1}`, flavour, ...on(i < 2 ? a : b) })),
      );
      // Each host's share of tasks and results crossed its own link, not loopback.
      for (const host of [a, b]) {
        const { rx, tx } = hosts.traffic(host);
        t.diagnostic(`${host.ns} (${host.address}) link: hub sent ${tx} bytes, received ${rx} bytes`);
        assert.ok(tx > 50 * 10 && rx > 50 * 10, `traffic on ${host.hubDevice}: tx ${tx}, rx ${rx}`);
      }
      assertMakespan(t, summary, "across namespaces");
    });
  });
});
