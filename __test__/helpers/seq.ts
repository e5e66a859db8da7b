// Sequence-numbered traffic for the fault tests (faults.test.ts): senders that number their
// messages and send them at a steady rate, receivers that record which numbers arrived and
// when, and a ledger per pair that compares the two. Each side is a child process speaking
// one line protocol (see peers/pyzmq_seq_peer.py): a pyzmq (libzmq) socket, or our Push/Pull
// (peers/zeropipe_seq_peer.mjs), so both implementations run the same way.
//
// A message is one frame of `size` bytes: the sequence number as a big-endian uint64, then
// zeros. Times are CLOCK_MONOTONIC microseconds on both sides (nowUs()).

import { spawn, type ChildProcess } from "node:child_process";
import * as path from "node:path";
import { createInterface } from "node:readline";

import { pythonPath } from "./peer";

/** CLOCK_MONOTONIC in µs: the clock the pyzmq peers stamp with (time.monotonic_ns()). */
export const nowUs = (): number => Number(process.hrtime.bigint() / 1000n);

/** What one pair's sender accepted and receiver got, and the comparison of the two. */
export class Ledger {
  /** Accept time (µs) of each accepted id. */
  private readonly acceptedAt = new Map<number, number>();
  /** First arrival time (µs) of each received id. */
  private readonly arrivedAt = new Map<number, number>();
  /** Arrival times in order, one per receive batch (the time of its first message). */
  private readonly batches: number[] = [];
  duplicates = 0;
  private changeWaiters: Array<() => void> = [];
  lastArrival = 0;

  accept(id: number, t: number): void {
    this.acceptedAt.set(id, t);
  }

  receive(ids: Iterable<number>, t: number): void {
    this.batches.push(t);
    for (const id of ids) {
      if (this.arrivedAt.has(id)) this.duplicates += 1;
      else this.arrivedAt.set(id, t);
    }
    this.lastArrival = t;
    for (const wake of this.changeWaiters.splice(0)) wake();
  }

  get acceptedCount(): number {
    return this.acceptedAt.size;
  }

  get receivedCount(): number {
    return this.arrivedAt.size;
  }

  /** When `id` was accepted (µs), if it was. */
  acceptedAtOf(id: number): number | undefined {
    return this.acceptedAt.get(id);
  }

  /** The accept time (µs) of every accepted message. */
  acceptedTimes(): IterableIterator<number> {
    return this.acceptedAt.values();
  }

  /** Accepted ids that never arrived. */
  get lost(): number {
    let n = 0;
    for (const id of this.acceptedAt.keys()) if (!this.arrivedAt.has(id)) n += 1;
    return n;
  }

  /** Arrived ids that no sender reported accepting (a SIGKILLed sender's last report). */
  get unexpected(): number {
    let n = 0;
    for (const id of this.arrivedAt.keys()) if (!this.acceptedAt.has(id)) n += 1;
    return n;
  }

  /** The accepted ids that never arrived, ascending. */
  lostIds(): number[] {
    return [...this.acceptedAt.keys()].filter((id) => !this.arrivedAt.has(id)).sort((a, b) => a - b);
  }

  /** The lost ids as runs, for diagnostics ("12-40,77"). */
  lostRuns(limit = 8): string {
    return runsOf(this.lostIds(), limit);
  }

  /** ms from `t` to the first arrival at or after it; null if nothing arrived since. */
  firstArrivalAfter(t: number): number | null {
    for (const at of this.batches) if (at >= t) return (at - t) / 1000;
    return null;
  }

  /**
   * ms from `t` to the arrival of the first message accepted at or after `t`; null if none
   * arrived. (A sender stopped by SIGSTOP between accepting a message and stamping it stamps
   * it late; such a message may have arrived before `t` and does not count.)
   */
  firstAcceptedAfterArrives(t: number): number | null {
    let best: number | null = null;
    let bestAccepted = Infinity;
    for (const [id, at] of this.acceptedAt) {
      if (at >= t && at < bestAccepted) {
        const arrived = this.arrivedAt.get(id);
        if (arrived !== undefined && arrived >= t) {
          bestAccepted = at;
          best = (arrived - t) / 1000;
        }
      }
    }
    return best;
  }

  /**
   * ms from `t` to the arrival of the last message accepted before `t` (everything the
   * sender held at `t` was through); null if one of them never arrived.
   */
  backlogDeliveredAfter(t: number): number | null {
    let last = t;
    for (const [id, at] of this.acceptedAt) {
      if (at >= t) continue;
      const arrived = this.arrivedAt.get(id);
      if (arrived === undefined) return null;
      if (arrived > last) last = arrived;
    }
    return (last - t) / 1000;
  }

  /** Resolves at the next receive (or after `ms`). */
  changed(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.changeWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

/** Ascending ids as runs, for diagnostics ("12-40,77"). */
export function runsOf(ids: number[], limit = 8): string {
  const runs: string[] = [];
  for (let i = 0; i < ids.length; ) {
    let j = i;
    while (j + 1 < ids.length && ids[j + 1] === ids[j]! + 1) j++;
    runs.push(i === j ? `${ids[i]}` : `${ids[i]}-${ids[j]}`);
    i = j + 1;
  }
  return runs.length > limit ? `${runs.slice(0, limit).join(",")},… (${runs.length} runs)` : runs.join(",");
}

export function decodeSeq(frame: Buffer): number {
  return Number(frame.readBigUInt64BE(0));
}

export interface SeqSender {
  /** Begin sending `rate` msg/s from a token bucket of `burst` messages. */
  start(rate: number, burst: number): void;
  /** Stop sending; what is queued still goes out. */
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});

/** SIGKILLs every peer process still running and waits until they are gone. */
export async function killAllSeqPeers(): Promise<void> {
  await Promise.all(
    [...live].map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once("exit", () => resolve());
          child.kill("SIGKILL");
        }),
    ),
  );
}

export type SeqPeerKind = "pyzmq" | "zeropipe";

/**
 * A PUSH or PULL peer process (pyzmq or zeropipe) speaking pyzmq_seq_peer.py's protocol.
 * Its reports go to `ledger` as they happen, so what it accepted or received before a
 * SIGKILL is kept.
 */
export class SeqPeer implements SeqSender {
  endpoint = "";
  /** Every connection of this peer's socket that ended: when (µs, as seen by the peer) and why. */
  readonly disconnects: Array<{ at: number; why: string }> = [];
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  private stderr = "";
  private ready: { resolve: () => void; reject: (e: Error) => void } | null = null;
  private stopped: (() => void) | null = null;
  private acked: { verb: string; resolve: (t: number) => void } | null = null;
  private stateWaiters: Array<(state: string) => void> = [];
  private exitedNow = false;

  private constructor(
    readonly kind: SeqPeerKind,
    readonly role: "push" | "pull",
    private readonly ledger: Ledger,
    private readonly first: number,
    args: string[],
  ) {
    const peers = path.resolve(__dirname, "..", "peers");
    // Plain node for ours: the test's own --import/--test flags must not leak into the peer.
    const [command, script] =
      kind === "pyzmq" ? [pythonPath(), path.join(peers, "pyzmq_seq_peer.py")] : [process.execPath, path.join(peers, "zeropipe_seq_peer.mjs")];
    this.child = spawn(command, [script, ...args], { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, PYTHONUNBUFFERED: "1" } });
    live.add(this.child);
    this.child.stdin!.on("error", () => {});
    this.child.stderr!.setEncoding("utf8");
    this.child.stderr!.on("data", (s: string) => (this.stderr = (this.stderr + s).slice(-8000)));
    this.exited = new Promise((resolve) => {
      this.child.on("close", () => {
        this.exitedNow = true;
        live.delete(this.child);
        this.ready?.reject(this.error("exited before it was ready"));
        this.stopped?.();
        resolve();
      });
    });
    createInterface({ input: this.child.stdout!, crlfDelay: Infinity }).on("line", (line) => this.onLine(line));
  }

  /** Spawns a peer and waits for its socket to be bound or connecting. */
  static async start(
    kind: SeqPeerKind,
    role: "push" | "pull",
    mode: "bind" | "connect",
    address: string,
    options: Record<string, number | boolean>,
    ledger: Ledger,
    size: number,
    first = 0,
  ): Promise<SeqPeer> {
    const peer = new SeqPeer(kind, role, ledger, first, [role, mode, address, JSON.stringify(options), String(size), String(first)]);
    let timer: NodeJS.Timeout | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        peer.ready = { resolve, reject };
        timer = setTimeout(() => reject(peer.error("no ready line within 15 s")), 15_000);
      });
    } catch (err) {
      await peer.kill();
      throw err;
    } finally {
      clearTimeout(timer);
    }
    return peer;
  }

  get pid(): number {
    return this.child.pid!;
  }

  private error(what: string): Error {
    return new Error(`${this.kind} ${this.role} peer (pid ${this.child.pid}): ${what}\nstderr: ${this.stderr.trim() || "(empty)"}`);
  }

  private onLine(line: string): void {
    const [verb, a, b] = line.split(" ");
    switch (verb) {
      case "ready":
        this.endpoint = a!;
        this.ready?.resolve();
        this.ready = null;
        return;
      case "a":
        this.ledger.accept(this.first + Number(a) - 1, Number(b));
        return;
      case "stopped":
        this.stopped?.();
        this.stopped = null;
        return;
      case "paused":
      case "resumed":
        if (this.acked?.verb === verb) {
          this.acked.resolve(Number(a));
          this.acked = null;
        }
        return;
      case "s":
        for (const wake of this.stateWaiters.splice(0)) wake(line.slice(2));
        return;
      case "d":
        this.disconnects.push({ at: Number(a), why: line.split(" ").slice(2).join(" ") });
        return;
      case "r": {
        const ids: number[] = [];
        for (const run of b!.split(",")) {
          const dash = run.indexOf("-");
          if (dash === -1) ids.push(Number(run));
          else for (let i = Number(run.slice(0, dash)), end = Number(run.slice(dash + 1)); i <= end; i++) ids.push(i);
        }
        this.ledger.receive(ids, Number(a));
        return;
      }
      default:
        // Kept with stderr for the error text; throwing here would crash the test process.
        this.stderr += `\n[unexpected stdout line] ${line}`;
    }
  }

  start(rate: number, burst: number): void {
    this.child.stdin!.write(`start ${rate} ${burst}\n`);
  }

  stop(): Promise<void> {
    if (this.exitedNow) return Promise.resolve();
    return new Promise((resolve) => {
      this.stopped = resolve;
      this.child.stdin!.write("stop\n");
    });
  }

  /** pull: stop calling receive() (an application busy elsewhere); resolves with the peer's time (µs). */
  pause(): Promise<number> {
    return this.command("pause", "paused");
  }

  /** pull: receive again; resolves with the peer's time (µs). */
  resume(): Promise<number> {
    return this.command("resume", "resumed");
  }

  private command(line: string, verb: string): Promise<number> {
    if (this.exitedNow) return Promise.reject(this.error(`exited before ${line}`));
    return new Promise((resolve) => {
      this.acked = { verb, resolve };
      this.child.stdin!.write(`${line}\n`);
    });
  }

  /** What the peer's socket and script see now (its `s` line), for diagnostics; never rejects. */
  state(ms = 2000): Promise<string> {
    if (this.exitedNow) return Promise.resolve(`exited (${this.child.exitCode ?? this.child.signalCode}); stderr: ${this.stderr.trim() || "(empty)"}`);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(`no answer within ${ms} ms`), ms);
      this.stateWaiters.push((state) => {
        clearTimeout(timer);
        resolve(state);
      });
      this.child.stdin!.write("state\n");
    });
  }

  /**
   * The peer's `s` answer, parsed; null if it gave none. Every report the peer wrote before
   * it (its receipts, for a PULL) has been read into the ledger when this resolves.
   */
  async stateNow(ms = 2000): Promise<Record<string, unknown> | null> {
    const text = await this.state(ms);
    try {
      const state: unknown = JSON.parse(text);
      return state !== null && typeof state === "object" ? (state as Record<string, unknown>) : null;
    } catch {
      return null;
    }
  }

  signal(sig: NodeJS.Signals): void {
    if (!this.exitedNow) this.child.kill(sig);
  }

  async kill(): Promise<void> {
    if (!this.exitedNow) this.child.kill("SIGKILL");
    await this.exited;
  }

  /** Ends the peer (linger 0: only for after the test has drained what it wanted). */
  async close(): Promise<void> {
    if (this.exitedNow) return;
    this.child.stdin!.write("close\n");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 5000);
    await this.exited;
    clearTimeout(timer);
  }
}

/**
 * Reads one direction of a ZMTP 3.x byte stream (as a proxy sees it) and records the id of
 * every message frame with the stream offset where the frame ends: which sequence-numbered
 * messages left a sender, and how many bytes a receiver needs to have them all.
 */
export class ZmtpIds {
  /** Ids in stream order, and for each the byte offset just past its frame. */
  readonly ids: number[] = [];
  readonly ends: number[] = [];
  private buf: Buffer = Buffer.alloc(0);
  /** Stream offset of buf[0]. */
  private base = 0;
  private greeted = false;

  /** `onCommand` hears the name of every command frame (READY, PING, PONG, ...) as it is read. */
  constructor(private readonly onCommand?: (name: string) => void) {}

  feed(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    let at = 0;
    if (!this.greeted) {
      if (this.buf.length < 64) return;
      this.greeted = true;
      at = 64;
    }
    for (;;) {
      if (this.buf.length - at < 2) break;
      const flags = this.buf[at]!;
      const long = (flags & 0x02) !== 0;
      const head = long ? 9 : 2;
      if (this.buf.length - at < head) break;
      const size = long ? Number(this.buf.readBigUInt64BE(at + 1)) : this.buf[at + 1]!;
      if (this.buf.length - at < head + size) break;
      if ((flags & 0x04) === 0 && size >= 8) {
        this.ids.push(decodeSeq(this.buf.subarray(at + head, at + head + 8)));
        this.ends.push(this.base + at + head + size);
      } else if ((flags & 0x04) !== 0 && size >= 1 && this.onCommand) {
        const nameLength = this.buf[at + head]!;
        this.onCommand(this.buf.toString("latin1", at + head + 1, at + head + 1 + Math.min(nameLength, size - 1)));
      }
      at += head + size;
    }
    this.base += at;
    this.buf = this.buf.subarray(at);
  }

  /** Ids of the frames wholly within the first `bytes` bytes of the stream. */
  within(bytes: number): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.ids.length && this.ends[i]! <= bytes; i++) out.push(this.ids[i]!);
    return out;
  }
}
