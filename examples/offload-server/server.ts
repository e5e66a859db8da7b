// The server of the article: WebSocket clients get a real-time feed (a tick every 10 ms),
// and HTTP requests ask for blocking work. The feed must never stall, so the work goes to
// worker processes through a zeropipe Pool; with --inline the server does it itself, which
// is the problem the article sets out to solve, kept here for comparison.
//
//   npx tsx examples/offload-server/server.ts [--port 8080] [--workers 2]
//       [--jobs tcp://127.0.0.1:5555] [--results tcp://127.0.0.1:5556] [--inline]
//
//   GET  /work?input=<text>&ms=<n>  blocking work of n ms; {"input","digest","by"}
//   GET  /stats                     the event loop's delay (ms percentiles) and counters
//   POST /stats/reset               starts the measurement afresh
//   WS   /feed                      {"seq","at"} every 10 ms

import { readFileSync } from "node:fs";
import * as http from "node:http";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { parseArgs } from "node:util";

import { WebSocket, WebSocketServer } from "ws";
import { Pool } from "zeropipe";

import { blockingWork } from "./work";

const { values: opts } = parseArgs({
  options: {
    port: { type: "string", default: "8080" },
    host: { type: "string", default: "127.0.0.1" },
    workers: { type: "string", default: "2" },
    jobs: { type: "string", default: "tcp://127.0.0.1:5555" },
    results: { type: "string", default: "tcp://127.0.0.1:5556" },
    inline: { type: "boolean", default: false },
    tick: { type: "string", default: "10" },
  },
});
const mode = opts.inline ? "inline" : "pool";
/** A request cannot ask for more than this: the work is an example, not a way to hog workers. */
const MAX_JOB_MS = 5_000;

// Node's default sampling: a timer every 10 ms. The histogram holds the time between its
// firings, so a loop that is never late reads 10 ms; stats() subtracts that, to report how
// late the loop was. A stall shows as one sample of its length, and an idle stretch as one
// near-zero sample per 10 ms, so the stalls of a busy loop are not drowned out.
const RESOLUTION_MS = 10;
const loopDelay = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
loopDelay.enable();
const counters = { requests: 0, failed: 0, ticks: 0 };

/**
 * Linux: how long the event loop's thread has run, and waited for a CPU while runnable (ms,
 * since the last reset). A loop that is late because the machine is busy, not because of
 * this server's code, shows here.
 */
function schedstat(): { runMs: number; waitMs: number } | null {
  try {
    const [run, wait] = readFileSync("/proc/thread-self/schedstat", "utf8").split(" ").map(Number);
    return { runMs: run! / 1e6, waitMs: wait! / 1e6 };
  } catch {
    return null;
  }
}
let schedAtReset = schedstat();

const pool = opts.inline ? null : new Pool({ jobs: opts.jobs, results: opts.results });

async function work(input: string, ms: number): Promise<{ digest: string; by: string }> {
  if (!pool) return { digest: blockingWork(input, ms), by: "inline" };
  const [digest, by] = await pool.run([input, String(ms)], { timeout: 60_000 });
  return { digest: digest!.toString(), by: by!.toString() };
}

function cpuSinceReset(): { runMs: number; waitMs: number } | null {
  const now = schedstat();
  if (!now || !schedAtReset) return null;
  return { runMs: Math.round(now.runMs - schedAtReset.runMs), waitMs: Math.round(now.waitMs - schedAtReset.waitMs) };
}

function stats() {
  const late = (ns: number) => Math.max(0, Math.round((ns / 1e6 - RESOLUTION_MS) * 100) / 100);
  return {
    mode,
    eventLoopDelayMs: {
      p50: late(loopDelay.percentile(50)),
      p99: late(loopDelay.percentile(99)),
      max: late(loopDelay.max),
      mean: late(loopDelay.mean),
      samples: loopDelay.count,
    },
    ...counters,
    cpu: cpuSinceReset(),
    feedClients: wss.clients.size,
    pool: pool?.stats ?? null,
  };
}

function reply(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? "/", "http://server");
  if (req.method === "GET" && url.pathname === "/work") {
    const input = url.searchParams.get("input") ?? "";
    const ms = Number(url.searchParams.get("ms") ?? "100");
    if (!Number.isFinite(ms) || ms < 0 || ms > MAX_JOB_MS) return reply(res, 400, { error: `ms must be 0..${MAX_JOB_MS}` });
    counters.requests++;
    work(input, ms).then(
      (answer) => reply(res, 200, { input, ...answer }),
      (err: Error) => {
        counters.failed++;
        reply(res, 500, { error: err.message });
      },
    );
  } else if (req.method === "GET" && url.pathname === "/stats") {
    reply(res, 200, stats());
  } else if (req.method === "POST" && url.pathname === "/stats/reset") {
    loopDelay.reset();
    schedAtReset = schedstat();
    Object.assign(counters, { requests: 0, failed: 0, ticks: 0 });
    reply(res, 200, { ok: true });
  } else {
    reply(res, 404, { error: "not found" });
  }
});

const wss = new WebSocketServer({ server, path: "/feed" });
let seq = 0;
const feed = setInterval(() => {
  const tick = JSON.stringify({ seq: seq++, at: Date.now() });
  counters.ticks++;
  for (const client of wss.clients) if (client.readyState === WebSocket.OPEN) client.send(tick);
}, Number(opts.tick));

async function stop(): Promise<void> {
  clearInterval(feed);
  for (const client of wss.clients) client.terminate();
  await new Promise<void>((resolve) => wss.close(() => resolve()));
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await pool?.close({ force: true });
}

function fail(err: unknown): never {
  console.error(err);
  process.exit(1);
}

// Once: a second Ctrl-C while stopping ends the process the default way.
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => void stop().then(() => process.exit(0), fail));
}

async function main(): Promise<void> {
  if (pool) {
    // Requests before the workers are there would only queue; a server that says it is
    // listening should be able to answer.
    const workers = Number(opts.workers);
    console.log(`server: waiting for ${workers} workers on ${opts.jobs} and ${opts.results}`);
    await pool.waitForWorkers(workers, { timeout: 60_000 });
  }
  await new Promise<void>((resolve) => server.listen(Number(opts.port), opts.host, resolve));
  const { port } = server.address() as import("node:net").AddressInfo;
  console.log(`server: listening on http://${opts.host}:${port} (${mode})`);
}

main().catch(fail);
