// Fault injection: network partitions (helpers/fault-proxy.ts, a user-space TCP proxy), the
// process holding our socket stopped (SIGSTOP … SIGCONT), our application not receiving for
// a while, and the peer process killed and restarted. Each scenario runs the socket under
// test, zeropipe's, side by side with libzmq's (4.3.5, through pyzmq) in the same place:
//
//   (a) sender under test:    our Push   → proxy → pyzmq PULL
//                  reference: pyzmq PUSH → proxy → pyzmq PULL
//   (b) receiver under test:  pyzmq PUSH → proxy → our Pull
//                  reference: pyzmq PUSH → proxy → pyzmq PULL
//
// each with the socket under test connecting (to the proxy, in front of the bound peer) and
// binding (the peer connects to the proxy in front of it): libzmq treats the two differently
// (a connecting PUSH keeps its queue across reconnects). The socket under test and the pyzmq
// peer are processes of their own (helpers/seq.ts), so both implementations run alike.
//
// The sender numbers its messages and sends them at a steady rate; a message counts as
// accepted when send() resolves (ours) or zmq_send returns (pyzmq). A message is lost if it
// was accepted and never received once everything has healed and drained.
//
// Every assertion is about zeropipe and decided by zeropipe alone: where a loss is decided
// elsewhere (what a sender wrote into a connection its heartbeat then gave up, what sat in a
// killed process or its kernel, the pyzmq peer's own timers), the scenario is arranged so
// that no timer but the one under test runs, and only the part zeropipe answers for is
// asserted. libzmq's numbers in the same situation are printed beside ours, and compared
// only where the comparison cannot go either way by chance.

import assert from "node:assert/strict";
import { afterEach, describe, it, type TestContext } from "node:test";

import { FaultProxy } from "./helpers/fault-proxy";
import { killAllSeqPeers, Ledger, nowUs, runsOf, SeqPeer, ZmtpIds } from "./helpers/seq";

const RATE = 1000; // messages per second, per pair
const BURST = 10; // token bucket: at most RATE × T + BURST messages accepted in any T
const SIZE = 1024; // bytes per message: enough that a fault fills the kernel buffers and reaches the high-water marks
/** Small enough that what a sender writes at RATE during a heartbeat's limit fits in the kernel buffers (see the partition test with heartbeats). */
const SMALL_SIZE = 128;
const HWM = 1000; // send and receive high-water marks, every socket
const RECONNECT_MS = 100;
const HB_INTERVAL = 200;
const HB_TIMEOUT = 1000;
const HEARTBEATS = { heartbeatInterval: HB_INTERVAL, heartbeatTimeout: HB_TIMEOUT };
/** Every stall and pause is this long: well past the heartbeat's limit (interval + timeout), and what happens does not depend on how much longer. */
const FAULT_MS = 3000;
const WARMUP_MS = 1000; // steady traffic before the fault
const AFTER_MS = 1500; // traffic after the fault, before the senders stop
const QUIET_MS = 1000; // drained: nothing missing, or nothing arrived for this long and nothing is in flight
const DRAIN_LIMIT_MS = 20_000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const perMs = (ms: number) => Math.ceil((RATE * ms) / 1000);

type Impl = "zeropipe" | "libzmq";
/** (a): the socket under test is the Push; (b): it is the Pull. */
type Direction = "a" | "b";
/** How the socket under test attaches: it binds (the pyzmq peer connects) or it connects (the peer binds). */
type Topology = "bind" | "connect";
type SocketOpts = Record<string, number>;

interface PairSpec {
  impl: Impl;
  direction: Direction;
  topology: Topology;
  /** Options of the socket under test beyond the common ones. */
  tested?: SocketOpts;
  /** Options of the pyzmq peer beyond the common ones. */
  peer?: SocketOpts;
  /** Bytes per message, if not SIZE. */
  size?: number;
  /** The proxy's sinkOnFailure (helpers/fault-proxy.ts): a dead peer's partner gets a FIN and is drained, not reset. */
  sinkOnFailure?: boolean;
}

/** The four pairs of a scenario: both implementations, both topologies. */
function fourPairs(direction: Direction, common: Omit<PairSpec, "impl" | "direction" | "topology"> = {}): PairSpec[] {
  const specs: PairSpec[] = [];
  for (const topology of ["connect", "bind"] as const) {
    for (const impl of ["zeropipe", "libzmq"] as const) specs.push({ impl, direction, topology, ...common });
  }
  return specs;
}

/**
 * One side-by-side half: the socket under test (ours, or pyzmq's as the reference) in a
 * process of its own, a proxy, and the pyzmq peer at the other end. Whoever binds takes an
 * ephemeral port; the proxy forwards to it; the other connects to the proxy. A restarted
 * peer binds the same address again, or connects again.
 */
class Pair {
  readonly ledger = new Ledger();
  tested!: SeqPeer;
  peer!: SeqPeer;
  proxy!: FaultProxy;
  /** µs: when the fault began and ended for this pair. */
  faultAt = 0;
  healedAt = 0;
  private address = "tcp://127.0.0.1:0";
  private readonly processes: SeqPeer[] = [];
  private incarnation = 0;
  /** The message stream of each proxied connection, as the proxy read it from the sender. */
  private readonly streams = new Map<number, ZmtpIds>();
  /** Set while waiting for the sender's next PING (see stallAtNextPing). */
  private onPing: (() => void) | null = null;
  /** performance.now() when the proxy last read a message from the sender (0: never). */
  lastMessageRead = 0;
  /** Ids the receiving peer's kernel had taken when it was SIGKILLed. */
  private readonly inReceiverAtKill = new Set<number>();

  constructor(readonly spec: PairSpec) {}

  get impl(): Impl {
    return this.spec.impl;
  }

  get topology(): Topology {
    return this.spec.topology;
  }

  get size(): number {
    return this.spec.size ?? SIZE;
  }

  get sender(): SeqPeer {
    return this.spec.direction === "a" ? this.tested : this.peer;
  }

  get receiver(): SeqPeer {
    return this.spec.direction === "a" ? this.peer : this.tested;
  }

  private options(role: "push" | "pull", extra: SocketOpts = {}): SocketOpts {
    const hwm: SocketOpts = role === "push" ? { sendHighWaterMark: HWM } : { receiveHighWaterMark: HWM };
    return { ...hwm, reconnectInterval: RECONNECT_MS, ...extra };
  }

  private get testedRole(): "push" | "pull" {
    return this.spec.direction === "a" ? "push" : "pull";
  }

  private get peerRole(): "push" | "pull" {
    return this.spec.direction === "a" ? "pull" : "push";
  }

  private async startPeer(): Promise<void> {
    // A restarted PUSH numbers from a fresh block, so its ids never collide with the first's.
    const first = this.incarnation++ * 1_000_000;
    const role = this.peerRole;
    const opts = this.options(role, this.spec.peer);
    this.peer =
      this.topology === "connect"
        ? await SeqPeer.start("pyzmq", role, "bind", this.address, opts, this.ledger, this.size, first)
        : await SeqPeer.start("pyzmq", role, "connect", this.proxy.endpoint, opts, this.ledger, this.size, first);
    this.processes.push(this.peer);
    if (this.topology === "connect") this.address = this.peer.endpoint;
  }

  private async startTested(): Promise<void> {
    const role = this.testedRole;
    const bind = this.topology === "bind";
    const where = bind ? this.address : this.proxy.endpoint;
    const kind = this.impl === "libzmq" ? "pyzmq" : "zeropipe";
    this.tested = await SeqPeer.start(kind, role, bind ? "bind" : "connect", where, this.options(role, this.spec.tested), this.ledger, this.size);
    this.processes.push(this.tested);
    if (bind) this.address = this.tested.endpoint;
  }

  /** The proxy direction the messages take: "up" when the sender is the one connecting. */
  private get dataDirection(): "up" | "down" {
    return (this.spec.direction === "a") === (this.topology === "connect") ? "up" : "down";
  }

  async setup(): Promise<void> {
    if (this.topology === "bind") await this.startTested();
    else await this.startPeer();
    this.proxy = await FaultProxy.start({
      target: this.address,
      sinkOnFailure: this.spec.sinkOnFailure,
      tap: (conn, direction, chunk) => {
        if (direction !== this.dataDirection) return;
        let stream = this.streams.get(conn);
        if (!stream) {
          stream = new ZmtpIds((name) => {
            if (name === "PING") this.onPing?.();
          });
          this.streams.set(conn, stream);
        }
        const before = stream.ids.length;
        stream.feed(chunk);
        if (stream.ids.length > before) this.lastMessageRead = performance.now();
      },
    });
    if (this.topology === "bind") await this.startPeer();
    else await this.startTested();
  }

  /**
   * Partitions this pair the moment the proxy reads a PING from the sender: that PING and
   * everything after it are held, so the sender's heartbeat timer runs from a known point.
   */
  stallAtNextPing(): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.onPing = null;
        reject(new Error(`ours ${this.topology} ${this.impl}: no PING from the sender within 2 s`));
      }, 2000);
      this.onPing = () => {
        // Called from the proxy's tap, before the chunk holding the PING is queued: stalled
        // now, the proxy holds it.
        this.onPing = null;
        clearTimeout(timer);
        this.proxy.stall();
        this.faultAt = nowUs();
        resolve();
      };
    });
  }

  /** SIGKILL the peer; when it is the receiver, first note what its kernel had taken (lost with it). */
  async killPeer(): Promise<void> {
    if (this.spec.direction === "a") {
      for (const [conn, progress] of this.proxy.progress()) {
        for (const id of this.streams.get(conn)?.within(progress[this.dataDirection].delivered) ?? []) this.inReceiverAtKill.add(id);
      }
    }
    await this.peer.kill();
  }

  /** A new peer where the killed one was (bound on the same address, or connecting to it); a PUSH starts sending at once. */
  async restartPeer(): Promise<void> {
    await this.startPeer();
    if (this.spec.direction === "b") this.peer.start(RATE, BURST);
  }

  async close(): Promise<void> {
    await Promise.all(this.processes.map((p) => p.kill()));
    await this.proxy?.close();
  }

  outcome(): Outcome {
    const l = this.ledger;
    const lost = l.lostIds();
    const left = new Set<number>();
    for (const stream of this.streams.values()) for (const id of stream.ids) left.add(id);
    const neverLeft = lost.filter((id) => !left.has(id));
    return {
      impl: this.impl,
      topology: this.topology,
      accepted: l.acceptedCount,
      received: l.receivedCount,
      lost: lost.length,
      lostRuns: runsOf(lost),
      lostAcceptedMs: lost.map((id) => (l.acceptedAtOf(id)! - this.faultAt) / 1000),
      neverLeftSender: neverLeft.length,
      neverLeftRuns: runsOf(neverLeft),
      inKilledPeer: lost.filter((id) => this.inReceiverAtKill.has(id)).length,
      duplicates: l.duplicates,
      unexpected: l.unexpected,
      resumedMs: l.firstArrivalAfter(this.healedAt),
      caughtUpMs: l.firstAcceptedAfterArrives(this.healedAt),
      backlogMs: l.backlogDeliveredAfter(this.healedAt),
      connections: this.proxy.stats.accepted,
      disconnects: this.tested.disconnects.map((d) => ({ ms: (d.at - this.faultAt) / 1000, why: d.why })),
      acceptedDuringFault: [...l.acceptedTimes()].filter((at) => at >= this.faultAt && at < this.healedAt).length,
    };
  }
}

interface Outcome {
  impl: Impl;
  topology: Topology;
  accepted: number;
  received: number;
  lost: number;
  lostRuns: string;
  /** When each lost message was accepted, ms after the fault began (negative: before). */
  lostAcceptedMs: number[];
  /** Lost messages the proxy never read: still in the sending process or its kernel when they were lost. */
  neverLeftSender: number;
  neverLeftRuns: string;
  /** Lost messages the SIGKILLed receiver's kernel had taken. */
  inKilledPeer: number;
  duplicates: number;
  unexpected: number;
  /** ms from the heal to the first message received after it. */
  resumedMs: number | null;
  /** ms from the heal to the arrival of the first message accepted after it. */
  caughtUpMs: number | null;
  /** ms from the heal until everything accepted before it had arrived (null: some never did). */
  backlogMs: number | null;
  /** TCP connections the proxy accepted (1 + reconnections). */
  connections: number;
  /** Connections of the socket under test that ended: ms after the fault began, and why. */
  disconnects: Array<{ ms: number; why: string }>;
  acceptedDuringFault: number;
}

const fmt = (ms: number | null) => (ms === null ? "never" : `${ms.toFixed(1)} ms`);
const whole = (ms: number) => `${Math.round(ms) || 0}`;

function describeOutcome(o: Outcome): string {
  const disconnects = o.disconnects.length
    ? `disconnected at ${o.disconnects.map((d) => `${d.ms.toFixed(0)} ms (${d.why})`).join(", ")}`
    : "never disconnected";
  return (
    `ours ${o.topology.padEnd(7)} ${o.impl.padEnd(8)} lost ${o.lost} of ${o.accepted} accepted` +
    (o.lost
      ? ` (ids ${o.lostRuns}, accepted ${whole(Math.min(...o.lostAcceptedMs))} to ${whole(Math.max(...o.lostAcceptedMs))} ms after the fault began;` +
        ` ${o.neverLeftSender} never reached the proxy${o.inKilledPeer ? `, ${o.inKilledPeer} were in the killed peer's kernel` : ""})`
      : "") +
    `; received ${o.received}, duplicates ${o.duplicates}` +
    (o.unexpected ? `, ${o.unexpected} received but never reported accepted` : "") +
    `; ${o.acceptedDuringFault} accepted during the fault; socket under test ${disconnects}` +
    `; after the fault ended: first arrival ${fmt(o.resumedMs)}, all accepted before it through ${fmt(o.backlogMs)}, first accepted after it arrived ${fmt(o.caughtUpMs)}` +
    `; ${o.connections} TCP connection(s)`
  );
}

const live: Pair[] = [];
afterEach(async () => {
  await Promise.all(live.splice(0).map((p) => p.close()));
  // Whatever a failed setup left behind: a peer process waits for its stdin to close, and
  // its pipes would keep this process alive.
  await killAllSeqPeers();
});

/** Waits until every pair has received something (the connections are up and flowing). */
async function flowing(pairs: Pair[]): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (pairs.some((p) => p.ledger.receivedCount < 50)) {
    if (Date.now() > deadline) {
      throw new Error(`no traffic within 10 s: received ${pairs.map((p) => `${p.impl}/${p.topology} ${p.ledger.receivedCount}`).join(", ")}`);
    }
    await sleep(20);
  }
}

/**
 * Waits until each pair is missing nothing, or is settled: no message has left the sender or
 * arrived for QUIET_MS, no byte is between the two processes now (TCP may hold bytes for
 * seconds after a long stall, see helpers/fault-proxy.ts; what a sender still queues itself
 * shows up within a reconnect), and its receiver, asked, has nothing left to receive. Past
 * DRAIN_LIMIT_MS what is still missing counts as lost; the returned notes say so.
 */
async function drained(pairs: Pair[]): Promise<string[]> {
  const deadline = Date.now() + DRAIN_LIMIT_MS;
  const since = performance.now();
  const quiet = (p: Pair) =>
    performance.now() - Math.max(since, p.lastMessageRead) >= QUIET_MS &&
    (nowUs() - p.ledger.lastArrival) / 1000 >= QUIET_MS &&
    p.proxy.inFlight() === 0;
  const done = async (p: Pair): Promise<boolean> => {
    if (p.ledger.lost === 0) return true;
    if (!quiet(p)) return false;
    // Bytes the receiving process has read are out of flight before the test reads its
    // receipts for them (after a partition they come all at once, up to megabytes): the
    // answer comes after every receipt the receiver wrote before it, and says whether its
    // socket still holds a message.
    const state = await p.receiver.stateNow();
    if (p.ledger.lost === 0) return true;
    return state !== null && state.readable === false && quiet(p);
  };
  for (;;) {
    const settled = await Promise.all(pairs.map(done));
    const waiting = pairs.filter((_, i) => !settled[i]);
    if (waiting.length === 0) return [];
    if (Date.now() > deadline) {
      return waiting.map((p) => `ours ${p.topology} ${p.impl}: not drained ${DRAIN_LIMIT_MS} ms after the senders stopped: ${p.ledger.lost} missing, ${p.proxy.inFlight()} bytes in flight`);
    }
    await Promise.race(waiting.map((p) => p.ledger.changed(200)));
  }
}

type Fault = (pairs: Pair[]) => Promise<void>;

/** Sets up the pairs, runs traffic through `fault`, drains, and prints each outcome. */
async function runScenario(t: TestContext, specs: PairSpec[], fault: Fault): Promise<Map<Pair, Outcome>> {
  const pairs = specs.map((spec) => new Pair(spec));
  live.push(...pairs);
  // Every setup runs to its end before a failure is thrown, so nothing starts after cleanup.
  const setups = await Promise.allSettled(pairs.map((p) => p.setup()));
  for (const s of setups) if (s.status === "rejected") throw s.reason;

  for (const p of pairs) p.sender.start(RATE, BURST);
  await flowing(pairs);
  await sleep(WARMUP_MS);
  await fault(pairs);
  await sleep(AFTER_MS);
  await Promise.all(pairs.map((p) => p.sender.stop()));
  for (const note of await drained(pairs)) t.diagnostic(note);
  // Where our pairs' missing messages are, as the proxy and both processes see it (some
  // scenarios lose messages by design; this tells those apart from a failure's).
  for (const p of pairs.filter((p) => p.impl === "zeropipe" && p.ledger.lost > 0)) {
    const [tested, peer] = await Promise.all([p.tested.state(), p.peer.state()]);
    t.diagnostic(`ours ${p.topology} ${p.impl}, ${p.ledger.lost} missing: socket under test ${tested}; peer ${peer}; proxy ${p.proxy.describe()}`);
  }

  const outcomes = new Map(pairs.map((p) => [p, p.outcome()]));
  for (const o of outcomes.values()) t.diagnostic(describeOutcome(o));
  return outcomes;
}

/**
 * The network between the two processes stops for `ms`, then heals. With `atPing` each
 * pair's partition starts at its sender's next PING (see Pair.stallAtNextPing), and the
 * connections it caught are reset at the heal: see the partition test with heartbeats.
 */
const partition =
  (ms: number, atPing = false): Fault =>
  async (pairs) => {
    if (atPing) await Promise.all(pairs.map((p) => p.stallAtNextPing()));
    else {
      const at = nowUs();
      for (const p of pairs) {
        p.proxy.stall();
        p.faultAt = at;
      }
    }
    await sleep(ms);
    for (const p of pairs) {
      if (atPing) p.proxy.drop();
      p.proxy.heal();
      p.healedAt = nowUs();
    }
  };

/** The process holding the socket under test is stopped (SIGSTOP) for `ms`, then continued. */
const stopTested =
  (ms: number): Fault =>
  async (pairs) => {
    for (const p of pairs) {
      p.tested.signal("SIGSTOP");
      p.faultAt = nowUs();
    }
    await sleep(ms);
    for (const p of pairs) {
      p.tested.signal("SIGCONT");
      p.healedAt = nowUs();
    }
  };

/** The application holding the Pull under test stops calling receive() for `ms`. */
const pauseTested =
  (ms: number): Fault =>
  async (pairs) => {
    await Promise.all(
      pairs.map(async (p) => {
        p.faultAt = await p.tested.pause();
      }),
    );
    await sleep(ms);
    await Promise.all(
      pairs.map(async (p) => {
        p.healedAt = await p.tested.resume();
      }),
    );
  };

/** The pyzmq peer is killed (SIGKILL) and a new one started in its place `downMs` later. */
const killPeer =
  (downMs: number): Fault =>
  async (pairs) => {
    await Promise.all(
      pairs.map(async (p) => {
        p.faultAt = nowUs();
        await p.killPeer();
      }),
    );
    await sleep(downMs);
    await Promise.all(
      pairs.map(async (p) => {
        await p.restartPeer();
        p.healedAt = nowUs();
      }),
    );
  };

function ours(outcomes: Map<Pair, Outcome>): Outcome[] {
  return [...outcomes.values()].filter((o) => o.impl === "zeropipe");
}

function reference(outcomes: Map<Pair, Outcome>, topology: Topology): Outcome {
  return [...outcomes.values()].find((o) => o.impl === "libzmq" && o.topology === topology)!;
}

/** Every assertion fails with every pair's failure at once. */
function check(failures: string[]): void {
  assert.ok(failures.length === 0, failures.join("\n"));
}

function noDuplicates(o: Outcome, failures: string[]): void {
  if (o.duplicates) failures.push(`ours ${o.topology} ${o.impl}: ${o.duplicates} message(s) delivered twice`);
}

function noneLost(o: Outcome, failures: string[]): void {
  noDuplicates(o, failures);
  if (o.lost) failures.push(`ours ${o.topology} ${o.impl}: lost ${o.lost} of ${o.accepted} accepted (ids ${o.lostRuns}; ${o.neverLeftSender} never reached the proxy)`);
}

function keptItsConnection(o: Outcome, failures: string[]): void {
  if (o.disconnects.length || o.connections !== 1) {
    failures.push(
      `ours ${o.topology} ${o.impl}: the connection did not survive: ${o.connections} TCP connection(s), disconnects ${JSON.stringify(o.disconnects)}`,
    );
  }
}

const HB_LABEL = `heartbeats (${HB_INTERVAL} ms interval, ${HB_TIMEOUT} ms timeout)`;

describe("faults, zeropipe side by side with libzmq", { timeout: 170_000 }, () => {
  it(`our Pull's process stopped ${FAULT_MS / 1000} s (SIGSTOP) with ${HB_LABEL} on our side, the PUSH sending on: zeropipe reads what its kernel holds before judging silence, loses nothing and keeps the connection`, { timeout: 30_000 }, async (t) => {
    // (b), heartbeats on the Pull under test only: the PUSH answers its PINGs but runs no
    // timeout of its own, so the only judgement made is the tested socket's. While the process
    // is stopped the PUSH's bytes pile up in our kernel (and the proxy, and its kernel): when
    // it continues, the heartbeat deadline has long passed, but the peer was never silent.
    // The libzmq PULL in our place is printed beside: it arms its timeout at a PING and any
    // message disarms it, so after SIGCONT it PINGs afresh and reads before that runs out.
    const outcomes = await runScenario(t, fourPairs("b", { tested: HEARTBEATS }), stopTested(FAULT_MS));
    const failures: string[] = [];
    for (const o of ours(outcomes)) {
      noneLost(o, failures);
      keptItsConnection(o, failures);
    }
    check(failures);
  });

  for (const peerHeartbeats of [false, true]) {
    const peerLabel = peerHeartbeats ? "the PUSH running the same heartbeats (our paused reader must PING it)" : "the PUSH running none";
    it(`our Pull's application stops receiving for ${FAULT_MS / 1000} s with ${HB_LABEL}, ${peerLabel}: zeropipe loses nothing and keeps the connection`, { timeout: 30_000 }, async (t) => {
      // (b): the Pull's queue reaches its high-water mark and its reader stops reading, TCP
      // pushes back on the PUSH. Not reading on purpose is not silence. With heartbeats on
      // the PUSH too, its PINGs go unread while we are paused, so our connection PINGs it at
      // its pace instead: any message from us resets its timeout.
      const outcomes = await runScenario(t, fourPairs("b", { tested: HEARTBEATS, peer: peerHeartbeats ? HEARTBEATS : {} }), pauseTested(FAULT_MS));
      const failures: string[] = [];
      for (const o of ours(outcomes)) {
        noneLost(o, failures);
        keptItsConnection(o, failures);
      }
      check(failures);
    });
  }

  it(`a ${FAULT_MS / 1000} s partition with ${HB_LABEL} on the sender under test only: our Push loses no more than its heartbeat allows, and no more than libzmq's PUSH beyond one interval`, { timeout: 30_000 }, async (t) => {
    // (a), heartbeats on the PUSH under test (ours, or pyzmq's in the reference pair) and none
    // on the PULL peer: the sender's heartbeat alone decides when the connection is given up.
    // The sender's TCP peer is the proxy: for a while after the partition begins its kernel
    // still takes bytes into its receive buffer, as a buffering middlebox or a hung peer's
    // kernel does. That is not hearing from the PULL.
    // What it wrote into the connection from the partition until then is lost with it; what
    // it accepts afterwards waits in its queue for the next connection (bound, it has no peer
    // left and accepts nothing).
    //
    // Two things would otherwise decide the count by chance, and are fixed here:
    // - At the heal the proxy resets the connections it held (partition(…, true)). Healed
    //   instead, the doomed connection's bytes would race the peer's first reply, whose RST
    //   makes the sender's kernel throw away what it had not sent yet: anything from none to
    //   all of them, run to run.
    // - Messages are SMALL_SIZE bytes, so what RATE brings in (interval + timeout) fits in the
    //   kernel buffers: the count is what was written until the timeout, not what the two
    //   kernels' buffers (autotuned, different per connection) happened to take.
    //
    // Phase: each pair's partition starts as the proxy reads a PING from its sender; that PING
    // is held, so no PONG comes back. libzmq arms its timeout at a PING when none is armed and
    // any message from the peer disarms it: it gives up HB_TIMEOUT after that PING. Ours gives
    // up (HB_INTERVAL + HB_TIMEOUT) after it last heard from the peer, the PONG to the PING
    // one interval earlier: also about HB_TIMEOUT after the partition began.
    //
    // Against libzmq: in general the two timers' phase relative to a partition differs by up
    // to one interval (libzmq counts from the first unanswered PING, we from the last answer,
    // which came at most one interval before it), so we allow one interval's worth more,
    // RATE × HB_INTERVAL (here, with the phases aligned, it is left for a timer fired late or
    // a PONG delayed on a loaded machine). Counting "ours ≤ libzmq's + RATE × HB_INTERVAL"
    // would take both senders to keep RATE, and the reference's is a Python loop that falls
    // behind on a loaded machine (under a CPU hog: 421 accepted in the second before libzmq
    // gave up) and then has less to lose. So the comparison is made in time, at our own
    // sender's pace: we lost no message accepted later than one interval after the moment
    // libzmq gave up (each from its own partition's start, libzmq's moment as its monitor
    // saw it, so if anything late). At RATE that is ours ≤ libzmq's + RATE × HB_INTERVAL.
    //
    // Alone, whatever the phase: the connection is given up at most (HB_INTERVAL +
    // HB_TIMEOUT) after the last thing heard, which is no earlier than the partition began,
    // and a token bucket accepts at most RATE × T + BURST messages in any T. Add what was
    // accepted before the partition began and lost with it: what the proxy had not forwarded
    // yet, in its hands with the PING and reset at the heal (a handful; more when the proxy's
    // process is starved, which is not ours to answer for). With this phase the loss is about
    // RATE × HB_TIMEOUT, one interval's worth under the bound.
    const outcomes = await runScenario(t, fourPairs("a", { tested: HEARTBEATS, size: SMALL_SIZE }), partition(FAULT_MS, true));
    const failures: string[] = [];
    for (const o of ours(outcomes)) {
      noDuplicates(o, failures);
      const r = reference(outcomes, o.topology);
      // The scenario did what it is for: the heartbeat ended the connection during the partition.
      const during = o.disconnects.filter((d) => d.ms > 0 && d.ms < FAULT_MS);
      if (during.length !== 1 || !/heartbeat timeout/.test(during[0]!.why)) {
        failures.push(`ours ${o.topology}: expected one disconnect during the partition, a heartbeat timeout; saw ${JSON.stringify(o.disconnects)}`);
      }
      const before = o.lostAcceptedMs.filter((ms) => ms < 0).length;
      const bound = perMs(HB_INTERVAL + HB_TIMEOUT) + BURST + before;
      if (o.lost > bound) {
        failures.push(
          `ours ${o.topology}: zeropipe lost ${o.lost} (ids ${o.lostRuns}), more than RATE × (interval + timeout) + BURST + the ${before} lost that were accepted before the partition = ${bound}`,
        );
      }
      const gaveUp = r.disconnects.find((d) => d.ms > 0 && d.ms < FAULT_MS);
      if (!gaveUp) {
        failures.push(`ours ${o.topology}: harness check: libzmq's PUSH never gave up its partitioned connection (${JSON.stringify(r.disconnects)})`);
        continue;
      }
      const late = o.lostAcceptedMs.filter((ms) => ms > gaveUp.ms + HB_INTERVAL);
      if (late.length) {
        failures.push(
          `ours ${o.topology}: zeropipe lost ${late.length} message(s) accepted more than one interval after libzmq gave up (${gaveUp.ms.toFixed(0)} ms into its partition), the last ${Math.max(...late).toFixed(0)} ms in; lost ${o.lost} in all (ids ${o.lostRuns}), libzmq ${r.lost}`,
        );
      }
    }
    check(failures);
  });

  it("the PULL peer killed (SIGKILL) and restarted on the same address 1 s later: our Push loses nothing that it had not handed to the network", { timeout: 30_000 }, async (t) => {
    // (a), no heartbeats. What was between the two processes when the PULL died is lost for
    // either implementation: what its kernel had taken, and what the proxy forwarded into the
    // dead connection before it noticed. What zeropipe answers for is what never left it:
    // accepted by send() and never read by the proxy. That must be nothing; what it still
    // queued when the connection died goes out on the next one (connecting, about a second's
    // worth waits in its queue while the peer is down).
    // Where the dead peer's kernel answers our next bytes with an RST, our kernel throws away
    // what it had not sent yet, and then no one can tell what zeropipe wrote from what it
    // never did. So the proxy (sinkOnFailure) ends our side with a FIN instead, and reads and
    // throws away what we still send: everything that leaves our process reaches its tap.
    const outcomes = await runScenario(t, fourPairs("a", { sinkOnFailure: true }), killPeer(1000));
    const failures: string[] = [];
    for (const o of ours(outcomes)) {
      noDuplicates(o, failures);
      if (o.neverLeftSender) {
        failures.push(`ours ${o.topology}: zeropipe lost ${o.neverLeftSender} message(s) it never handed to the network (ids ${o.neverLeftRuns}; ${o.lost} lost in all)`);
      }
    }
    check(failures);
  });

  for (const direction of ["a", "b"] as const) {
    const side = direction === "a" ? "our Push → proxy → pyzmq PULL" : "pyzmq PUSH → proxy → our Pull";
    it(`(${direction}) ${side}: a 10 s partition without heartbeats loses nothing; every accepted message arrives after the heal`, { timeout: 45_000 }, async (t) => {
      // The proxy holds every byte and no timer closes a connection, for either implementation.
      // Only zeropipe's pairs are asserted: a broken harness can only lose messages, never
      // make a loss look like a delivery, so 0 lost on our pairs stands whatever the libzmq
      // pairs show. After a 10 s stall TCP may resume a link only at a retransmission
      // seconds after the heal, and then megabytes arrive at once: the drain asks the
      // receiver before it counts a loss (see drained()). Counting on "nothing in flight"
      // alone once declared a loss, for ours and for libzmq's PULL alike, while the
      // receipts were still in the receiver's stdout pipe.
      const outcomes = await runScenario(t, fourPairs(direction), partition(10_000));
      const failures: string[] = [];
      for (const o of ours(outcomes)) noneLost(o, failures);
      check(failures);
    });
  }
});
