// The offload pool: jobs to worker processes, each reply to its caller; load-aware dispatch
// measured against the ideal makespan; a worker killed or frozen mid-batch costs no job;
// timeouts, aborts, a bounded queue, errors, a pyzmq worker speaking the documented frames.

import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import * as path from "node:path";
import { after, afterEach, describe, it } from "node:test";

import { Pool, serve, type PoolOptions } from "zeropipe";
import { pythonPath } from "./helpers/peer";
import { freePort, waitFor, within } from "./helpers/sockets";

const T = { timeout: 60_000 };
const REPO = path.resolve(__dirname, "..");
const children: ChildProcess[] = [];
const pools: Pool[] = [];

after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
});
afterEach(async () => {
  for (const c of children.splice(0)) {
    if (c.exitCode === null && c.signalCode === null) {
      c.kill("SIGCONT");
      c.kill("SIGKILL");
    }
  }
  await Promise.all(pools.splice(0).map((p) => p.close({ force: true })));
});

async function endpoints(): Promise<{ jobs: string; results: string }> {
  return { jobs: `tcp://127.0.0.1:${await freePort()}`, results: `tcp://127.0.0.1:${await freePort()}` };
}

function pool(options: PoolOptions): Pool {
  const p = new Pool(options);
  pools.push(p);
  return p;
}

/** A worker process: `serve()` from the package (concurrency 1 unless said), or pyzmq. */
function worker(ep: { jobs: string; results: string }, kind: "zeropipe" | "pyzmq" = "zeropipe", concurrency = 1): ChildProcess {
  const child =
    kind === "zeropipe"
      ? spawn(process.execPath, ["--import", "tsx", path.join(REPO, "__test__/fixtures/pool-worker.ts"), ep.jobs, ep.results, String(concurrency)], {
          cwd: REPO,
          stdio: ["ignore", "inherit", "inherit"],
        })
      : spawn(pythonPath(), [path.join(REPO, "__test__/peers/pyzmq_pool_worker.py"), ep.jobs, ep.results], {
          stdio: ["ignore", "inherit", "inherit"],
        });
  children.push(child);
  return child;
}

/** Deterministic durations: the same 1–100 ms mix on every run. */
function mixedDurations(n: number): number[] {
  let x = 12345;
  return Array.from({ length: n }, () => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return 1 + (x % 100);
  });
}

describe("Pool and serve()", () => {
  it("gives each caller its own job's reply, across 4 worker processes", T, async () => {
    const ep = await endpoints();
    const p = pool(ep);
    for (let i = 0; i < 4; i++) worker(ep);
    await within(p.waitForWorkers(4), 20_000, "4 workers");
    const replies = await within(
      Promise.all(Array.from({ length: 40 }, (_, i) => p.run(["5", `job ${i}`]))),
      20_000,
      "40 replies",
    );
    replies.forEach((r, i) => assert.equal(r[1]!.toString(), `job ${i}`));
    const pids = new Set(replies.map((r) => r[0]!.toString()));
    assert.equal(pids.size, 4, "every worker took jobs");
    const s = p.stats;
    assert.equal(s.completed, 40);
    assert.equal(s.running + s.queued + s.retries + s.duplicates + s.failed, 0);
  });

  it("dispatches by load: 200 jobs of mixed 1–100 ms on 4 workers finish within 10% of the ideal makespan", T, async (t) => {
    const ep = await endpoints();
    const p = pool(ep);
    for (let i = 0; i < 4; i++) worker(ep);
    await within(p.waitForWorkers(4), 20_000, "4 workers");
    const ms = mixedDurations(200);
    const started = performance.now();
    const replies = await within(Promise.all(ms.map((d, i) => p.run([String(d), `j${i}`]))), 30_000, "200 jobs");
    const makespan = performance.now() - started;
    // The ideal from what the jobs really took (a timer sleeps a little longer than asked,
    // more so on a busy machine): the pool is judged on its scheduling, not on the timers.
    const took = replies.map((r) => Number(r[2]!.toString()));
    const ideal = Math.max(took.reduce((a, b) => a + b, 0) / 4, Math.max(...took));
    // What round-robin (a plain PUSH) would do with the same jobs: worker i gets every 4th.
    const roundRobin = Math.max(...[0, 1, 2, 3].map((w) => took.filter((_, i) => i % 4 === w).reduce((a, b) => a + b, 0)));
    t.diagnostic(
      `makespan ${makespan.toFixed(0)} ms, ideal ${ideal.toFixed(0)} ms (${(makespan / ideal).toFixed(3)}×); ` +
        `round-robin would take at least ${roundRobin.toFixed(0)} ms (${(roundRobin / ideal).toFixed(3)}×); utilization ${p.stats.utilization.toFixed(2)}`,
    );
    assert.ok(makespan <= ideal * 1.1, `makespan ${makespan.toFixed(0)} ms is more than 10% over the ideal ${ideal.toFixed(0)} ms`);
  });

  it("runs every job of a worker killed mid-batch on the others, and counts what ran twice", T, async (t) => {
    const ep = await endpoints();
    const p = pool(ep);
    const workers = [0, 1, 2, 3].map(() => worker(ep));
    await within(p.waitForWorkers(4), 20_000, "4 workers");
    let done = 0;
    const runs = Array.from({ length: 100 }, (_, i) =>
      p.run(["30", `job ${i}`]).then((r) => {
        done++;
        return r;
      }),
    );
    await waitFor(() => done >= 20, 20_000, "20 jobs done");
    const victim = workers[1]!;
    victim.kill("SIGKILL");
    const doneAtKill = done;
    const replies = await within(Promise.all(runs), 30_000, "all 100 jobs");
    replies.forEach((r, i) => assert.equal(r[1]!.toString(), `job ${i}`));
    const s = p.stats;
    t.diagnostic(`killed pid ${victim.pid} after ${doneAtKill} jobs: retries ${s.retries}, duplicates ${s.duplicates}, completed ${s.completed}`);
    assert.equal(s.completed, 100);
    assert.ok(s.retries >= 1, "the killed worker had a job running, which must have been retried");
    assert.equal(s.workers, 3);
  });

  it("takes a frozen worker (SIGSTOP) for dead once heartbeats go unanswered, and runs its jobs elsewhere", T, async (t) => {
    const ep = await endpoints();
    const p = pool({ ...ep, heartbeatInterval: 100, heartbeatTimeout: 500 });
    const [a] = [worker(ep), worker(ep)];
    await within(p.waitForWorkers(2), 20_000, "2 workers");
    const runs = Array.from({ length: 10 }, (_, i) => p.run(["200", `job ${i}`]));
    await new Promise((r) => setTimeout(r, 50));
    a!.kill("SIGSTOP");
    const replies = await within(Promise.all(runs), 20_000, "all 10 jobs");
    replies.forEach((r, i) => assert.equal(r[1]!.toString(), `job ${i}`));
    t.diagnostic(`retries ${p.stats.retries}, duplicates ${p.stats.duplicates}`);
    assert.ok(p.stats.retries >= 1);
    assert.equal(p.stats.workers, 1);
  });

  it("learns a worker's concurrency from its hello: one worker with concurrency 4 runs 4 jobs at once", T, async () => {
    const ep = await endpoints();
    const p = pool(ep);
    worker(ep, "zeropipe", 4);
    await within(p.waitForWorkers(1), 20_000, "the worker");
    // The hello reply may trail the handshake a little.
    await p.run(["1", "warm-up"]);
    const started = performance.now();
    await within(Promise.all([0, 1, 2, 3].map((i) => p.run(["300", `j${i}`]))), 10_000, "4 jobs");
    const elapsed = performance.now() - started;
    assert.ok(elapsed < 900, `4 jobs of 300 ms took ${elapsed.toFixed(0)} ms: not run at once`);
  });

  it("is served by a pyzmq worker that speaks the documented frames, beside a zeropipe one", T, async () => {
    const ep = await endpoints();
    const p = pool(ep);
    worker(ep, "pyzmq");
    worker(ep, "zeropipe");
    await within(p.waitForWorkers(2), 20_000, "2 workers");
    const replies = await within(Promise.all(Array.from({ length: 20 }, (_, i) => p.run(["20", `job ${i}`]))), 20_000, "20 jobs");
    let byPython = 0;
    replies.forEach((r, i) => {
      if (r[0]!.toString() === "pyzmq") {
        byPython++;
        assert.deepEqual(r.slice(1).map(String), ["20", `JOB ${i}`]);
      } else {
        assert.equal(r[1]!.toString(), `job ${i}`);
      }
    });
    assert.ok(byPython >= 1 && byPython < 20, `pyzmq served ${byPython} of 20`);
  });

  it("rejects a run with the worker's error message and code, and goes on with the next", T, async () => {
    const ep = await endpoints();
    const p = pool(ep);
    worker(ep);
    await within(p.waitForWorkers(1), 20_000, "the worker");
    await assert.rejects(p.run(["1", "fail this"]), (e: NodeJS.ErrnoException) => {
      assert.equal(e.code, "EJOBFAIL");
      assert.equal(e.message, "refused fail this");
      return true;
    });
    assert.equal((await p.run(["1", "fine"]))[1]!.toString(), "fine");
    assert.equal(p.stats.failed, 1);
  });

  it("rejects with ETIMEDOUT after the job's timeout, and counts the reply that comes later as late", T, async () => {
    const ep = await endpoints();
    const p = pool(ep);
    worker(ep);
    await within(p.waitForWorkers(1), 20_000, "the worker");
    await assert.rejects(p.run(["300", "slow"], { timeout: 50 }), { code: "ETIMEDOUT" });
    await waitFor(() => p.stats.late === 1, 5_000, "the late reply");
    assert.equal(p.stats.timeouts, 1);
    assert.equal(p.stats.completed, 0);
  });

  it("rejects an aborted run with the signal's reason; a queued one is never sent", T, async () => {
    const ep = await endpoints();
    const p = pool(ep);
    worker(ep);
    await within(p.waitForWorkers(1), 20_000, "the worker");
    const busy = p.run(["200", "busy"]);
    const ac = new AbortController();
    const queued = p.run(["1", "never"], { signal: ac.signal });
    assert.equal(p.stats.queued, 1);
    ac.abort(new Error("user left"));
    await assert.rejects(queued, /user left/);
    assert.equal(p.stats.queued, 0);
    await busy;
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(p.stats.completed, 1, "the aborted job was sent after all");
    await assert.rejects(p.run("x", { signal: AbortSignal.abort(new Error("already")) }), /already/);
  });

  it("rejects with EAGAIN beyond maxQueue instead of queueing without bound", T, async () => {
    const p = pool({ ...(await endpoints()), maxQueue: 3 });
    const waiting = [0, 1, 2].map(() => p.run("no worker yet", { timeout: 5_000 }).catch((e: NodeJS.ErrnoException) => e.code));
    await assert.rejects(p.run("one too many"), { code: "EAGAIN" });
    assert.equal(p.stats.queued, 3);
    await p.close({ force: true });
    assert.deepEqual(await Promise.all(waiting), ["EBADF", "EBADF", "EBADF"]);
    await assert.rejects(p.run("after close"), { code: "EBADF" });
  });

  it("close() waits for the jobs that are running before it closes", T, async () => {
    const ep = await endpoints();
    const p = pool(ep);
    worker(ep);
    await within(p.waitForWorkers(1), 20_000, "the worker");
    const run = p.run(["200", "finishing"]);
    await new Promise((r) => setTimeout(r, 20));
    await within(p.close(), 10_000, "close");
    assert.equal((await run)[1]!.toString(), "finishing");
  });

  it("refuses bad options with a TypeError", () => {
    assert.throws(() => new Pool(undefined as never), TypeError);
    assert.throws(() => new Pool({ jobs: 1 } as never), TypeError);
    assert.throws(() => new Pool({ jobs: "inproc://a", results: "inproc://b", attempts: 0 }), TypeError);
    assert.throws(() => new Pool({ jobs: "inproc://a", results: "inproc://b", maxQueue: -1 }), TypeError);
    // serve() checks the same way, before it opens any socket.
    const ep = { jobs: "inproc://a", results: "inproc://b" };
    assert.throws(() => serve("not a function" as never, ep), /serve\(\) takes a handler function/);
    assert.throws(() => serve(() => {}, null as never), /serve\(\) takes options such as \{ jobs, results \}/);
    assert.throws(() => serve(() => {}, { jobs: "inproc://a" } as never), /serve\(\) option "results" must be an endpoint string/);
    assert.throws(() => serve(() => {}, { ...ep, concurrency: 0 }), /serve\(\) option "concurrency" must be an integer ≥ 1/);
    assert.throws(() => serve(() => {}, { ...ep, concurrency: 1.5 }), TypeError);
  });

  it("an idle pool lets the process exit; a pending run keeps it alive until it settles", T, async () => {
    const child = spawn(process.execPath, ["--import", "tsx", path.join(REPO, "__test__/fixtures/pool-idle.ts")], {
      cwd: REPO,
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.push(child);
    let out = "";
    let err = "";
    child.stdout!.on("data", (d) => (out += d));
    child.stderr!.on("data", (d) => (err += d));
    const code = await within(new Promise((r) => child.once("exit", r)), 15_000, "the fixture to exit by itself");
    assert.equal(code, 0, err);
    assert.equal(out.trim(), "rejected ETIMEDOUT after the timeout");
  });
});
