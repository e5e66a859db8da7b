// The load: feed clients on the WebSocket and HTTP clients asking for blocking work, each
// answer checked, for a few seconds; then the server's own account of its event loop.
// Prints a human summary, and last a line `summary {json}` for scripts.
//
//   npx tsx examples/offload-server/load.ts [--url http://127.0.0.1:8080] [--clients 8]
//       [--feeds 20] [--seconds 4] [--ms 300]

import { parseArgs } from "node:util";

import WebSocket from "ws";

import { expectedDigest } from "./work";

const { values: opts } = parseArgs({
  options: {
    url: { type: "string", default: "http://127.0.0.1:8080" },
    clients: { type: "string", default: "8" },
    feeds: { type: "string", default: "20" },
    seconds: { type: "string", default: "4" },
    ms: { type: "string", default: "300" },
  },
});
const base = opts.url!.replace(/\/$/, "");
const clients = Number(opts.clients);
const feeds = Number(opts.feeds);
const jobMs = Number(opts.ms);

function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** A feed client: the gaps between the ticks it received, which is what a browser would see. */
async function openFeed(gaps: number[]): Promise<WebSocket> {
  const ws = new WebSocket(`${base.replace(/^http/, "ws")}/feed`);
  let last: number | null = null;
  ws.on("message", () => {
    const now = performance.now();
    if (last !== null) gaps.push(now - last);
    last = now;
  });
  await new Promise<void>((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  return ws;
}

async function main(): Promise<void> {
  const gaps: number[] = [];
  const sockets = await Promise.all(Array.from({ length: feeds }, () => openFeed(gaps)));

  const reset = await fetch(`${base}/stats/reset`, { method: "POST" });
  if (!reset.ok) throw new Error(`POST /stats/reset: ${reset.status}`);
  gaps.length = 0;

  const latencies: number[] = [];
  const byWorker: Record<string, number> = {};
  const wrong: string[] = [];
  const errors: string[] = [];
  const deadline = performance.now() + Number(opts.seconds) * 1000;
  const client = async (c: number) => {
    for (let n = 0; performance.now() < deadline; n++) {
      const input = `client ${c} request ${n}`;
      const started = performance.now();
      try {
        const res = await fetch(`${base}/work?input=${encodeURIComponent(input)}&ms=${jobMs}`);
        const body = (await res.json()) as { input?: string; digest?: string; by?: string; error?: string };
        if (!res.ok) {
          errors.push(`${input}: ${res.status} ${body.error}`);
          continue;
        }
        latencies.push(performance.now() - started);
        if (body.input !== input || body.digest !== expectedDigest(input)) wrong.push(`${input}: ${JSON.stringify(body)}`);
        byWorker[body.by!] = (byWorker[body.by!] ?? 0) + 1;
      } catch (err) {
        errors.push(`${input}: ${(err as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: clients }, (_, c) => client(c)));

  const server = (await (await fetch(`${base}/stats`)).json()) as {
    mode: string;
    eventLoopDelayMs: { p50: number; p99: number; max: number };
    cpu: { runMs: number; waitMs: number } | null;
  };
  for (const ws of sockets) ws.terminate();

  const round = (x: number) => Math.round(x * 10) / 10;
  const summary = {
    mode: server.mode,
    requests: latencies.length,
    wrong,
    errors,
    byWorker,
    latencyMs: { p50: round(percentile(latencies, 50)), p99: round(percentile(latencies, 99)) },
    feed: { ticks: gaps.length, p99GapMs: round(percentile(gaps, 99)), maxGapMs: round(Math.max(0, ...gaps)) },
    server: server.eventLoopDelayMs,
    serverCpu: server.cpu,
  };
  console.log(`${summary.requests} requests (${clients} at a time, ${jobMs} ms of blocking work each) against the ${summary.mode} server`);
  console.log(`  answers: ${wrong.length} wrong, ${errors.length} failed; by ${JSON.stringify(byWorker)}`);
  console.log(`  server's event-loop delay: p50 ${server.eventLoopDelayMs.p50} ms, p99 ${server.eventLoopDelayMs.p99} ms, max ${server.eventLoopDelayMs.max} ms`);
  if (server.cpu) console.log(`  server's loop thread: ran ${server.cpu.runMs} ms, waited ${server.cpu.waitMs} ms for a CPU`);
  console.log(`  feed: ${summary.feed.ticks} ticks to ${feeds} clients, gap p99 ${summary.feed.p99GapMs} ms, max ${summary.feed.maxGapMs} ms`);
  console.log(`summary ${JSON.stringify(summary)}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
