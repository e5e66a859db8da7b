// examples/offload-server: the article's server — WebSocket clients fed in real time, HTTP
// requests that need blocking work — run as its README runs it, with its load generator.
// With the work handed to worker processes through the pool, the server's event loop stays
// prompt; the same load done inline stalls it for the length of a job.

import assert from "node:assert/strict";
import { afterEach, describe, it, type TestContext } from "node:test";

import { prioritize, startTs, stop, stopAll, type Started } from "./helpers/processes";
import { freePort } from "./helpers/sockets";

const DIR = "examples/offload-server";
const WORKERS = 2;
/** The bounds on the server's event-loop delay, p99. */
const POOL_P99_BELOW_MS = 20;
const INLINE_P99_ABOVE_MS = 200;
/** The load: HTTP clients at once, each asking for jobs of JOB_MS back to back, for SECONDS. */
const LOAD = { clients: 8, feeds: 10, seconds: 4, ms: 300 };
/** The server's CPU priority (see runLoad). */
const SERVER_NICE = -10;

afterEach(stopAll);

interface Summary {
  mode: string;
  requests: number;
  wrong: string[];
  errors: string[];
  byWorker: Record<string, number>;
  latencyMs: { p50: number; p99: number };
  feed: { ticks: number; p99GapMs: number; maxGapMs: number };
  server: { p50: number; p99: number; max: number; samples: number };
  /** Linux: the server loop's thread ran, and waited for a CPU, this long during the load. */
  serverCpu: { runMs: number; waitMs: number } | null;
}

/** Starts the server (and its workers unless inline), runs the load against it, stops them. */
async function runLoad(t: TestContext, mode: "pool" | "inline"): Promise<Summary> {
  const jobs = `tcp://127.0.0.1:${await freePort()}`;
  const results = `tcp://127.0.0.1:${await freePort()}`;
  const endpoints = ["--jobs", jobs, "--results", results];
  const server = startTs("server", `${DIR}/server.ts`, [
    "--port",
    "0",
    "--workers",
    String(WORKERS),
    ...endpoints,
    ...(mode === "inline" ? ["--inline"] : []),
  ]);
  // The CPU the server needs every 10 ms, it must get then, or it is late whatever it runs:
  // on a shared 2-core machine its loop's thread was measured waiting 1–2 s for a CPU per
  // 4 s of load, behind other sessions' builds (a bare Node process spending 0.5 ms every
  // 10 ms saw p99 delays of 19–50 ms there). So the server gets a higher priority than the
  // rest of the machine in both runs, as a latency-bound service gets in deployment; what
  // is left to measure is what the server's own code does to its loop.
  const unprioritized = prioritize(server, SERVER_NICE);
  if (unprioritized) t.diagnostic(unprioritized);
  const everyone: Started[] = [server];
  const dump = () => everyone.map((p) => p.describe()).join("\n");
  try {
    if (mode === "pool") {
      for (let i = 0; i < WORKERS; i++) everyone.push(startTs(`worker ${i + 1}`, `${DIR}/worker.ts`, endpoints));
    }
    // The server says where it listens once its workers have joined.
    let url: string | undefined;
    while (!url) {
      await server.waitForLines(server.lines.length + 1, 60_000);
      url = /listening on (http:\/\/\S+)/.exec(server.lines.at(-1)!.text)?.[1];
    }
    const load = startTs("load", `${DIR}/load.ts`, [
      "--url",
      url,
      ...Object.entries(LOAD).flatMap(([k, v]) => [`--${k}`, String(v)]),
    ]);
    everyone.push(load);
    assert.deepEqual(await load.exited, { code: 0, signal: null }, "the load generator exits 0");
    const last = load.lines.at(-1)?.text ?? "";
    assert.match(last, /^summary /, "the load generator's last line is its summary");
    const summary = JSON.parse(last.slice("summary ".length)) as Summary;

    assert.equal(summary.mode, mode);
    assert.deepEqual(summary.errors, [], "every request got an answer");
    assert.deepEqual(summary.wrong, [], "every answer was the right one");
    // Enough jobs that the server was under load the whole time, not one job and idle.
    assert.ok(summary.requests >= LOAD.clients, `only ${summary.requests} requests completed`);
    for (const p of everyone.slice(0, -1)) {
      assert.deepEqual(await stop(p), { code: 0, signal: null }, `${p.name} stops cleanly on SIGTERM`);
    }
    return summary;
  } catch (err) {
    if (err instanceof Error) err.message += `\n${dump()}`;
    throw err;
  }
}

function describeRun(s: Summary): string {
  return (
    `${s.mode}: ${s.requests} requests of ${LOAD.ms} ms (${LOAD.clients} at a time, ${LOAD.seconds} s), ` +
    `event-loop delay p50 ${s.server.p50} ms, p99 ${s.server.p99} ms, max ${s.server.max} ms (${s.server.samples} samples); ` +
    `feed gap p99 ${s.feed.p99GapMs} ms, max ${s.feed.maxGapMs} ms; request latency p50 ${s.latencyMs.p50} ms; ` +
    (s.serverCpu ? `server thread ran ${s.serverCpu.runMs} ms, waited ${s.serverCpu.waitMs} ms for a CPU; ` : "") +
    `by ${JSON.stringify(s.byWorker)}`
  );
}

describe("examples/offload-server (HTTP + WebSocket server, blocking work)", () => {
  it(`keeps the server's event-loop delay p99 under ${POOL_P99_BELOW_MS} ms with the work on ${WORKERS} worker processes`, async (t) => {
    const s = await runLoad(t, "pool");
    t.diagnostic(describeRun(s));
    assert.equal(Object.keys(s.byWorker).length, WORKERS, "every worker took jobs");
    assert.ok(!("inline" in s.byWorker), "no job was done by the server itself");
    assert.ok(s.server.p99 < POOL_P99_BELOW_MS, `event-loop delay p99 ${s.server.p99} ms, limit ${POOL_P99_BELOW_MS} ms`);
  });

  it(`stalls the server's event loop past ${INLINE_P99_ABOVE_MS} ms at p99 when the same load is done inline`, async (t) => {
    const s = await runLoad(t, "inline");
    t.diagnostic(describeRun(s));
    assert.deepEqual(Object.keys(s.byWorker), ["inline"]);
    assert.ok(s.server.p99 > INLINE_P99_ABOVE_MS, `event-loop delay p99 ${s.server.p99} ms, expected over ${INLINE_P99_ABOVE_MS} ms`);
  });
});
