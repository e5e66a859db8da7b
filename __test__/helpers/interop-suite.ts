// The interop cases, shared by interop-pyzmq.test.ts and interop-zeromqjs.test.ts: every
// behaviour below runs against one foreign peer kind (libzmq 4.3.5 via pyzmq, or
// zeromq.js) over tcp and ipc. One file per peer kind lets the two run in parallel.

import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";

import { curveKeyPair, Pull, Push, z85, type EventType, type PullOptions, type PushOptions } from "zeropipe";

import { startPeer, uniqueIpc, uniqueTcp, type Peer, type PeerKind, type PeerMode, type PeerOptions, type PeerRole } from "./peer";

type OurSocket = Push | Pull;

// Failure guards only: every wait below normally ends on a message or an event.
const GUARD_MS = 15_000;

const EMPTY = Buffer.alloc(0);
const b = (text: string): Buffer => Buffer.from(text, "utf8");

/** Bytes that differ per position and per seed, so a swapped, shifted or truncated frame shows. */
function pattern(size: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) out[i] = (i * 131 + (i >>> 8) * 7 + seed * 29) & 0xff;
  return out;
}

/** Every multipart shape worth getting wrong on the wire, sent in this order. */
const MESSAGE_CASES: ReadonlyArray<readonly [string, Buffer[]]> = [
  ["a single frame", [b("hello")]],
  ["first frame empty", [EMPTY, b("middle"), b("last")]],
  ["middle frame empty", [b("first"), EMPTY, b("last")]],
  ["last frame empty", [b("first"), b("middle"), EMPTY]],
  ["a single empty frame", [EMPTY]],
  ["50 frames, every seventh empty", Array.from({ length: 50 }, (_, i) => (i % 7 === 3 ? EMPTY : b(`frame ${i}`)))],
  ["a 1 MiB frame between small ones", [b("before"), pattern(1 << 20, 1), b("after")]],
  ["an 8 MiB frame", [pattern(8 << 20, 2)]],
  // 255/256 bytes straddle ZMTP's short/long frame size encoding.
  ["frames of 255 and 256 bytes", [pattern(255, 3), pattern(256, 4)]],
];

function describeMessage(frames: Buffer[]): string {
  return `[${frames.map((f) => (f.length > 32 ? `<${f.length} bytes>` : JSON.stringify(f.toString("latin1")))).join(", ")}]`;
}

/** deepEqual without dumping megabytes into the failure message. */
function assertSameMessage(actual: Buffer[], expected: Buffer[], label: string): void {
  const same = actual.length === expected.length && actual.every((f, i) => f.equals(expected[i]!));
  assert.ok(same, `${label}: got ${describeMessage(actual)}, expected ${describeMessage(expected)}`);
}

/** A numbered message: the sequence number, then a 1 KiB body derived from it. */
function numbered(seq: number, size = 1024): Buffer[] {
  const body = Buffer.alloc(size, seq & 0xff);
  body.writeUInt32BE(seq, 0);
  return [b(String(seq)), body];
}

function seqOf(frames: Buffer[]): number {
  assert.equal(frames.length, 2, `expected a numbered 2-frame message, got ${describeMessage(frames)}`);
  const seq = Number(frames[0]!.toString());
  assert.ok(frames[1]!.equals(numbered(seq, frames[1]!.length)[1]!), `body of message ${seq} is corrupted`);
  return seq;
}

function assertInOrder(seqs: number[], expected: number[], label: string): void {
  const firstBad = seqs.findIndex((s, i) => s !== expected[i]);
  assert.ok(
    firstBad === -1 && seqs.length === expected.length,
    `${label}: ${seqs.length} of ${expected.length} messages, first mismatch at index ${firstBad}: ` +
      `got ${seqs.slice(Math.max(0, firstBad - 2), firstBad + 3).join(",")}, ` +
      `expected ${expected.slice(Math.max(0, firstBad - 2), firstBad + 3).join(",")}`,
  );
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

/** Counts our socket's monitor events and lets a test wait for the n-th one of a type. */
class EventLog {
  private readonly counts = new Map<EventType, number>();
  private readonly waiters: Array<{ type: EventType; n: number; resolve: () => void }> = [];

  constructor(socket: OurSocket, types: EventType[]) {
    for (const type of types) {
      this.counts.set(type, 0);
      socket.events.on(type, () => {
        this.counts.set(type, this.count(type) + 1);
        for (const w of this.waiters.filter((w) => w.type === type && this.count(type) >= w.n)) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve();
        }
      });
    }
  }

  count(type: EventType): number {
    const n = this.counts.get(type);
    if (n === undefined) throw new Error(`EventLog is not counting "${type}"`);
    return n;
  }

  /** Resolves once `type` has happened at least n times in total. */
  async until(type: EventType, n: number): Promise<void> {
    if (this.count(type) >= n) return;
    let timer: NodeJS.Timeout | undefined;
    const reached = new Promise<void>((resolve) => this.waiters.push({ type, n, resolve }));
    const guard = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`only ${this.count(type)} of ${n} "${type}" events within ${GUARD_MS} ms`)), GUARD_MS);
    });
    try {
      await Promise.race([reached, guard]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Receives into an array in the background, so a test can watch two PULLs at once. */
class Collector {
  readonly received: Buffer[][] = [];
  private wake: (() => void) | null = null;
  private failure: Error | null = null;

  constructor(readonly pull: Pull) {
    void this.run();
  }

  private async run(): Promise<void> {
    for (;;) {
      try {
        this.received.push(await this.pull.receive());
      } catch (err) {
        if (this.pull.closed) return;
        this.failure = err as Error;
      }
      this.wake?.();
      if (this.failure) return;
    }
  }

  /** Waits until `done()` holds, re-checking whenever this PULL receives (and at least every 100 ms). */
  async until(done: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + GUARD_MS;
    while (!done()) {
      if (this.failure) throw this.failure;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 100);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  take(): Buffer[][] {
    return this.received.splice(0);
  }
}

/**
 * Polls a counter until it stops moving for `quietMs`. Used only where progress has no
 * event of its own: a foreign sender blocked by backpressure simply stops reporting.
 */
async function settledValue(read: () => number, quietMs = 300): Promise<number> {
  const deadline = Date.now() + GUARD_MS;
  let last = read();
  let since = Date.now();
  while (Date.now() - since < quietMs) {
    if (Date.now() > deadline) throw new Error(`counter still moving after ${GUARD_MS} ms (at ${last})`);
    await new Promise((resolve) => setTimeout(resolve, 25));
    const now = read();
    if (now !== last) {
      last = now;
      since = Date.now();
    }
  }
  return last;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** How the suite runs: over NULL (the default), or with every connection over CURVE. */
export interface SuiteMode {
  /**
   * Every PULL, ours or the peer's, is a CURVE server and every PUSH a client, whichever
   * side binds. The peers take Z85 keys; ours take them as 32-byte Buffers.
   */
  curve?: boolean;
}

export function interopSuite(kind: PeerKind, mode: SuiteMode = {}): void {
  const peers: Peer[] = [];
  const sockets: OurSocket[] = [];
  const server = curveKeyPair();
  const client = curveKeyPair();
  const peerCurve = (role: PeerRole): PeerOptions =>
    !mode.curve
      ? {}
      : role === "pull"
        ? { curveServer: true, curveSecretKey: server.secretKey }
        : { curveServerKey: server.publicKey, curveSecretKey: client.secretKey, curvePublicKey: client.publicKey };
  const ourCurve = (role: PeerRole): PushOptions & PullOptions =>
    !mode.curve
      ? {}
      : role === "pull"
        ? { curveServer: true, curveSecretKey: z85.decode(server.secretKey) }
        : { curveServerKey: z85.decode(server.publicKey), curveSecretKey: z85.decode(client.secretKey) };
  const over = mode.curve ? " over CURVE" : "";

  async function peer(role: PeerRole, mode: PeerMode, address: string, options?: PeerOptions): Promise<Peer> {
    const p = await startPeer(kind, role, mode, address, { ...peerCurve(role), ...options });
    peers.push(p);
    return p;
  }

  function ours<T extends OurSocket>(socket: T): T {
    sockets.push(socket);
    return socket;
  }
  const newPush = (options: PushOptions = {}) => ours(new Push({ sendTimeout: GUARD_MS, ...ourCurve("push"), ...options }));
  const newPull = (options: PullOptions = {}) => ours(new Pull({ receiveTimeout: GUARD_MS, ...ourCurve("pull"), ...options }));

  /** Closes the peers gracefully (that fails on a crash or a protocol violation) and checks no PULL peer got extra messages. */
  async function closePeers(...list: Peer[]): Promise<void> {
    for (const p of list) {
      await p.close();
      if (p.role === "pull") assert.equal(p.buffered, 0, `${p.kind} PULL peer received messages nobody expected`);
    }
  }

  // A failed assertion must not leave processes or sockets behind for the next test.
  afterEach(async () => {
    await Promise.all(peers.splice(0).map((p) => p.kill()));
    await Promise.all(
      sockets.splice(0).map((s) => {
        if (!s.closed) s.linger = 0;
        return s.close();
      }),
    );
  });

  let abstractCounter = 0;
  const ADDRESS_KINDS = {
    // libzmq spells a Linux abstract socket name with a leading "@"; both sides must agree on
    // the exact name bytes (no trailing NULs), or they never meet.
    "a Linux abstract ipc name": () => `ipc://@zeropipe-test-${process.pid}-${kind}-${++abstractCounter}`,
    "IPv6 loopback": () => "tcp://[::1]:0",
  };

  describe(`${kind} peers on other address forms${over}`, () => {
    for (const [label, address] of Object.entries(ADDRESS_KINDS)) {
      // libzmq refuses IPv6 addresses unless ZMQ_IPV6 is set.
      const peerOptions: PeerOptions = label === "IPv6 loopback" ? { ipv6: true } : {};

      it(`a ${kind} PUSH connects to our PULL bound on ${label}`, async () => {
        const pull = newPull();
        await pull.bind(address());
        assert.ok(pull.lastEndpoint, "lastEndpoint is set after bind");
        const push = await peer("push", "connect", pull.lastEndpoint, peerOptions);
        await push.send(["over", EMPTY, label]);
        assertSameMessage(await pull.receive(), [b("over"), EMPTY, b(label)], label);
        await closePeers(push);
      });

      it(`our PUSH connects to a ${kind} PULL bound on ${label}`, async () => {
        const push = newPush();
        const pull = await peer("pull", "bind", address(), peerOptions);
        push.connect(pull.endpoint);
        await push.send(["over", EMPTY, label]);
        assertSameMessage(await pull.nextMessage(GUARD_MS), [b("over"), EMPTY, b(label)], label);
        await closePeers(pull);
      });
    }
  });

  for (const transport of ["tcp", "ipc"] as const) {
    /** An address to bind once: an ephemeral port, or a fresh ipc path. */
    const bindAddress = (): string => (transport === "tcp" ? "tcp://127.0.0.1:0" : uniqueIpc());
    /** An address a restarted peer can bind again. */
    const stableAddress = (): string => (transport === "tcp" ? uniqueTcp() : uniqueIpc());

    async function bindOurs(socket: OurSocket): Promise<string> {
      await socket.bind(bindAddress());
      const endpoint = socket.lastEndpoint;
      assert.ok(endpoint, "lastEndpoint is set after bind");
      return endpoint;
    }

    describe(`${kind} peers over ${transport}${over}`, () => {
      for (const ourMode of ["bind", "connect"] as const) {
        const peerMode: PeerMode = ourMode === "bind" ? "connect" : "bind";

        it(`${kind} PUSH (${peerMode}) → our PULL (${ourMode}) delivers single-part and multipart messages intact: empty first/middle/last/only frames, 50 frames, 1 MiB and 8 MiB frames`, async () => {
          const pull = newPull();
          let push: Peer;
          if (ourMode === "bind") {
            push = await peer("push", "connect", await bindOurs(pull));
          } else {
            push = await peer("push", "bind", bindAddress());
            pull.connect(push.endpoint);
          }
          for (const [, frames] of MESSAGE_CASES) await push.send(frames);
          for (const [label, frames] of MESSAGE_CASES) assertSameMessage(await pull.receive(), frames, label);
          await closePeers(push);
          assert.equal(pull.readable, false, "nothing beyond the sent messages arrived");
        });

        it(`our PUSH (${ourMode}) → ${kind} PULL (${peerMode}) delivers single-part and multipart messages intact: empty first/middle/last/only frames, 50 frames, 1 MiB and 8 MiB frames`, async () => {
          const push = newPush();
          let pull: Peer;
          if (ourMode === "bind") {
            pull = await peer("pull", "connect", await bindOurs(push));
          } else {
            pull = await peer("pull", "bind", bindAddress());
            push.connect(pull.endpoint);
          }
          for (const [, frames] of MESSAGE_CASES) await push.send(frames);
          const got = await pull.messages(MESSAGE_CASES.length, GUARD_MS);
          MESSAGE_CASES.forEach(([label, frames], i) => assertSameMessage(got[i]!, frames, label));
          await closePeers(pull);
        });
      }

      it(`${kind} PUSH → our PULL keeps the order of 10 000 messages while our receive high-water mark stops the sender`, async () => {
        const TOTAL = 10_000;
        const pull = newPull({ receiveHighWaterMark: 10 });
        // Small peer-side queues and socket buffers, so most of the 10 MB has to wait on us.
        const push = await peer("push", "connect", await bindOurs(pull), { sendHighWaterMark: 10, sendBufferSize: 8192 });
        let accepted = 0;
        const sends = range(0, TOTAL).map((i) =>
          push.send(numbered(i), Number.POSITIVE_INFINITY).then(() => {
            accepted += 1;
          }),
        );
        // Nothing is read yet, so the sender must stall short of the end: proof that our
        // full queue stopped reading the connection instead of buffering without bound.
        const stalledAt = await settledValue(() => accepted);
        assert.ok(stalledAt < TOTAL, `the peer got all ${TOTAL} messages accepted without anyone reading`);

        const seqs: number[] = [];
        for (let i = 0; i < TOTAL; i++) seqs.push(seqOf(await pull.receive()));
        await Promise.all(sends);
        assertInOrder(seqs, range(0, TOTAL), "received order");
        await closePeers(push);
      });

      it(`our PUSH → ${kind} PULL keeps the order of 10 000 messages while our send high-water mark makes send() wait`, async () => {
        const TOTAL = 10_000;
        const push = newPush({ sendHighWaterMark: 10 });
        // A receive buffer above loopback's 64 KiB segment size: below it, the peer's window
        // can only reopen through TCP's zero-window probes (200 ms and up), and on a loaded
        // machine 10 MB then takes minutes (seen with the old engine as with this one).
        const pull = await peer("pull", "bind", bindAddress(), { receiveHighWaterMark: 10, receiveBufferSize: 128 * 1024 });
        push.connect(pull.endpoint);
        let waited = 0;
        for (let i = 0; i < TOTAL; i++) {
          if (!push.writable) waited += 1;
          await push.send(numbered(i));
        }
        assert.ok(waited > 0, "send() never had to wait, so the high-water mark was never reached");
        const got = await pull.messages(TOTAL, GUARD_MS);
        assertInOrder(got.map(seqOf), range(0, TOTAL), "received order");
        await closePeers(pull);
      });

      it(`our PUSH (bind) round-robins evenly over two ${kind} PULLs`, async () => {
        const push = newPush();
        const log = new EventLog(push, ["handshake"]);
        const endpoint = await bindOurs(push);
        const a = await peer("pull", "connect", endpoint);
        const b2 = await peer("pull", "connect", endpoint);
        // Both must be in the rotation before the first send, or the first one gets more.
        await log.until("handshake", 2);
        for (let i = 0; i < 100; i++) await push.send([String(i)]);
        const [gotA, gotB] = await Promise.all([a.messages(50, GUARD_MS), b2.messages(50, GUARD_MS)]);
        const seqA = gotA.map((m) => Number(m[0]!.toString()));
        const seqB = gotB.map((m) => Number(m[0]!.toString()));
        // Strict alternation: one peer gets every even message, the other every odd one.
        const [evens, odds] = seqA[0]! % 2 === 0 ? [seqA, seqB] : [seqB, seqA];
        assertInOrder(evens, range(0, 50).map((i) => 2 * i), "even share");
        assertInOrder(odds, range(0, 50).map((i) => 2 * i + 1), "odd share");
        await closePeers(a, b2);
      });

      it(`a ${kind} PUSH (bind) round-robins evenly over two of our PULLs`, async () => {
        const push = await peer("push", "bind", bindAddress());
        const pullA = newPull({ receiveTimeout: -1 });
        const pullB = newPull({ receiveTimeout: -1 });
        pullA.connect(push.endpoint);
        pullB.connect(push.endpoint);
        const a = new Collector(pullA);
        const b2 = new Collector(pullB);
        // libzmq adds a connection to its rotation a moment after the handshake, invisible
        // to us; probing until both PULLs have had one proves both are in it.
        for (let probes = 0; a.received.length === 0 || b2.received.length === 0; probes++) {
          assert.ok(probes < 20, "20 probes never reached both PULLs");
          const before = a.received.length + b2.received.length;
          await push.send(["probe"]);
          await a.until(() => a.received.length + b2.received.length > before, "a probe");
        }
        a.take();
        b2.take();
        for (let i = 0; i < 100; i++) await push.send([String(i)]);
        await a.until(() => a.received.length + b2.received.length >= 100, "100 messages over both PULLs");
        const seqA = a.take().map((m) => Number(m[0]!.toString()));
        const seqB = b2.take().map((m) => Number(m[0]!.toString()));
        const [evens, odds] = seqA[0]! % 2 === 0 ? [seqA, seqB] : [seqB, seqA];
        assertInOrder(evens, range(0, 50).map((i) => 2 * i), "even share");
        assertInOrder(odds, range(0, 50).map((i) => 2 * i + 1), "odd share");
        await closePeers(push);
      });

      it(`our PULL fair-queues two ${kind} PUSHes that both have a backlog: interleaved, neither starved`, async () => {
        const PER_PEER = 300;
        const HWM = 20;
        const pull = newPull({ receiveHighWaterMark: HWM });
        const endpoint = await bindOurs(pull);
        const options: PeerOptions = { sendHighWaterMark: 10, sendBufferSize: 8192 };
        const senders = [await peer("push", "connect", endpoint, options), await peer("push", "connect", endpoint, options)];
        // One message from each first, so both connections are up before the backlog builds.
        await Promise.all(senders.map((p, who) => p.send([String(who), b("hello")])));
        const hellos = [await pull.receive(), await pull.receive()].map((m) => m[0]!.toString()).sort();
        assert.deepEqual(hellos, ["0", "1"]);

        const accepted = [0, 0];
        const sends = senders.flatMap((p, who) =>
          range(0, PER_PEER).map((i) =>
            p.send([String(who), ...numbered(i, 4096)], Number.POSITIVE_INFINITY).then(() => {
              accepted[who]! += 1;
            }),
          ),
        );
        // Both senders stalling while nothing is read means both of our queues are full.
        await settledValue(() => accepted[0]! * (PER_PEER + 1) + accepted[1]!);
        assert.ok(accepted.every((n) => n < PER_PEER), `a sender was never held back (accepted ${accepted.join(" and ")})`);

        const order: number[] = [];
        const seqs: number[][] = [[], []];
        for (let i = 0; i < 2 * PER_PEER; i++) {
          const [who, ...rest] = await pull.receive();
          const w = Number(who!.toString());
          order.push(w);
          seqs[w]!.push(seqOf(rest));
        }
        await Promise.all(sends);
        // While both queues hold a backlog, the PULL takes one from each in turn.
        const head = order.slice(0, 2 * HWM);
        assert.ok(
          head.every((w, i) => i === 0 || w !== head[i - 1]),
          `the first ${2 * HWM} messages do not alternate between the senders: ${head.join("")}`,
        );
        assertInOrder(seqs[0]!, range(0, PER_PEER), "sender 0");
        assertInOrder(seqs[1]!, range(0, PER_PEER), "sender 1");
        await closePeers(...senders);
      });

      it(`our PUSH (connect) reconnects to a ${kind} PULL that was SIGKILLed and restarted, delivering what was queued meanwhile`, async () => {
        const address = stableAddress();
        const push = newPush({ reconnectInterval: 50 });
        const log = new EventLog(push, ["handshake", "disconnect"]);
        const before = await peer("pull", "bind", address);
        push.connect(before.endpoint);
        await push.send(["before"]);
        assertSameMessage(await before.nextMessage(GUARD_MS), [b("before")], "before the crash");

        await before.kill();
        await log.until("disconnect", 1);
        // The connect-side pipe outlives the connection, so these queue at once.
        for (let i = 0; i < 3; i++) await push.send(["while down", String(i)]);

        const after = await peer("pull", "bind", address);
        await push.send(["after"]);
        const got = await after.messages(4, GUARD_MS);
        for (let i = 0; i < 3; i++) assertSameMessage(got[i]!, [b("while down"), b(String(i))], `queued message ${i}`);
        assertSameMessage(got[3]!, [b("after")], "after the restart");
        // Events travel separately from messages, so the second handshake may still be on its way.
        await log.until("handshake", 2);
        await closePeers(after);
      });

      it(`our PULL (connect) reconnects to a ${kind} PUSH that was SIGKILLed and restarted`, async () => {
        const address = stableAddress();
        const pull = newPull({ reconnectInterval: 50 });
        const log = new EventLog(pull, ["handshake", "disconnect"]);
        const before = await peer("push", "bind", address);
        pull.connect(before.endpoint);
        await before.send(["before"]);
        assertSameMessage(await pull.receive(), [b("before")], "before the crash");

        await before.kill();
        await log.until("disconnect", 1);
        const after = await peer("push", "bind", address);
        // A bound libzmq PUSH holds this until a PULL is connected: only our reconnect lets it go.
        await after.send(["after", "restart"]);
        assertSameMessage(await pull.receive(), [b("after"), b("restart")], "after the restart");
        // Events travel separately from messages, so the second handshake may still be on its way.
        await log.until("handshake", 2);
        await closePeers(after);
      });

      it(`our PUSH (bind) delivers to a ${kind} PULL that reconnects after a SIGKILL, including sends made while no peer was there`, async () => {
        const push = newPush();
        const log = new EventLog(push, ["handshake", "disconnect"]);
        const endpoint = await bindOurs(push);
        const before = await peer("pull", "connect", endpoint);
        await push.send(["before"]);
        assertSameMessage(await before.nextMessage(GUARD_MS), [b("before")], "before the crash");

        await before.kill();
        await log.until("disconnect", 1);
        assert.equal(push.writable, false, "a bound PUSH without peers has nowhere to queue");
        // With no peer these sends wait (libzmq semantics); they must not be lost.
        const waiting = range(0, 3).map((i) => push.send(["while down", String(i)]));

        const after = await peer("pull", "connect", endpoint);
        await Promise.all(waiting);
        await push.send(["after"]);
        const got = await after.messages(4, GUARD_MS);
        for (let i = 0; i < 3; i++) assertSameMessage(got[i]!, [b("while down"), b(String(i))], `waiting message ${i}`);
        assertSameMessage(got[3]!, [b("after")], "after the restart");
        await closePeers(after);
      });

      it(`our PULL (bind) accepts a ${kind} PUSH that comes back after a SIGKILL`, async () => {
        const pull = newPull();
        const log = new EventLog(pull, ["handshake", "disconnect"]);
        const endpoint = await bindOurs(pull);
        const before = await peer("push", "connect", endpoint);
        await before.send(["before"]);
        assertSameMessage(await pull.receive(), [b("before")], "before the crash");

        await before.kill();
        await log.until("disconnect", 1);
        const after = await peer("push", "connect", endpoint);
        await after.send(["after", ""]);
        assertSameMessage(await pull.receive(), [b("after"), EMPTY], "after the restart");
        // Events travel separately from messages, so the second handshake may still be on its way.
        await log.until("handshake", 2);
        await closePeers(after);
      });

      // Only against pyzmq: a zeromq.js peer buffers its stdout in memory without bound, so
      // when it is SIGKILLed it takes an unknown number of messages it had already received
      // with it, and how many of ours survived could not be checked.
      if (kind === "pyzmq") {
        for (const ourMode of ["connect", "bind"] as const) {
          it(`our PUSH (${ourMode}) keeps the messages it had not yet written to a SIGKILLed pyzmq PULL and delivers them to the replacement`, async () => {
            const TOTAL = 32;
            const SIZE = 512 * 1024;
            const push = newPush({ reconnectInterval: 50 });
            const log = new EventLog(push, ["handshake", "disconnect"]);
            const slow: PeerOptions = { receiveHighWaterMark: 1, receiveBufferSize: 8192 };
            let first: Peer;
            let restart: () => Promise<Peer>;
            if (ourMode === "connect") {
              const address = stableAddress();
              first = await peer("pull", "bind", address, slow);
              push.connect(first.endpoint);
              restart = () => peer("pull", "bind", address);
            } else {
              const endpoint = await bindOurs(push);
              first = await peer("pull", "connect", endpoint, slow);
              restart = () => peer("pull", "connect", endpoint);
            }
            await log.until("handshake", 1);
            // Frozen, the peer lets our writer get stuck on the first messages while the rest
            // queue up; once it thaws, the writer goes on with a backlog of 16 MiB that the
            // peer's small buffers can only take a little of before it dies.
            process.kill(first.pid, "SIGSTOP");
            for (let i = 0; i < TOTAL; i++) await push.send(numbered(i, SIZE));
            process.kill(first.pid, "SIGCONT");
            assert.equal(seqOf(await first.nextMessage(GUARD_MS)), 0);
            await first.kill();
            await log.until("disconnect", 1);

            const second = await restart();
            // What sat in the kernel's buffers when the peer died is gone, as with libzmq;
            // everything after it must arrive, in order, up to the last message.
            const seqs: number[] = [];
            while (seqs[seqs.length - 1] !== TOTAL - 1) seqs.push(seqOf(await second.nextMessage(GUARD_MS)));
            assertInOrder(seqs, range(seqs[0]!, TOTAL), "messages after the restart");
            assert.ok(seqs.length >= TOTAL / 2, `only ${seqs.length} of ${TOTAL} messages survived the peer's death`);
            await closePeers(second);
          });
        }
      }

      it(`stays connected to a ${kind} PUSH that sends heartbeats for more than three intervals, and drops it once it falls silent past the TTL its PINGs announce`, async () => {
        const pull = newPull();
        const log = new EventLog(pull, ["handshake", "disconnect"]);
        const endpoint = await bindOurs(pull);
        // libzmq drops the connection if no traffic answers its PING within the timeout, and
        // its PINGs ask us to drop it after 500 ms of silence.
        const push = await peer("push", "connect", endpoint, { heartbeatInterval: 100, heartbeatTimeout: 250, heartbeatTimeToLive: 500 });
        await log.until("handshake", 1);
        // Time passing is the point here: there is no event for "nothing went wrong".
        await pause(700);
        await push.send(["still", "connected"]);
        assertSameMessage(await pull.receive(), [b("still"), b("connected")], "after the heartbeats");
        assert.equal(log.count("disconnect"), 0, "the connection dropped during heartbeats");
        assert.equal(log.count("handshake"), 1, "the peer had to reconnect");

        // A frozen process keeps its TCP connection open; only the TTL tells us it is gone
        // (our PULL sends no heartbeats of its own).
        process.kill(push.pid, "SIGSTOP");
        await log.until("disconnect", 1);
        process.kill(push.pid, "SIGCONT");
        await log.until("handshake", 2);
        await push.send(["reconnected"]);
        assertSameMessage(await pull.receive(), [b("reconnected")], "after the peer reconnected");
        await closePeers(push);
      });

      it(`our heartbeats (heartbeatInterval/heartbeatTimeout) keep a connection to a ${kind} PULL alive while it answers, and drop it once it stops`, async () => {
        const push = newPush({ heartbeatInterval: 100, heartbeatTimeout: 200, reconnectInterval: 50 });
        const log = new EventLog(push, ["handshake", "disconnect"]);
        const pull = await peer("pull", "bind", bindAddress());
        push.connect(pull.endpoint);
        await log.until("handshake", 1);
        // Longer than interval + timeout: without the peer's PONGs our side would have hung up.
        await pause(700);
        await push.send(["still", "connected"]);
        assertSameMessage(await pull.nextMessage(GUARD_MS), [b("still"), b("connected")], "after the heartbeats");
        assert.equal(log.count("disconnect"), 0, "the connection dropped during heartbeats");
        assert.equal(log.count("handshake"), 1, "we had to reconnect");

        // Frozen, the peer cannot answer our PINGs, though its kernel keeps the TCP connection.
        process.kill(pull.pid, "SIGSTOP");
        await log.until("disconnect", 1);
        process.kill(pull.pid, "SIGCONT");
        await log.until("handshake", 2);
        await push.send(["reconnected"]);
        assertSameMessage(await pull.nextMessage(GUARD_MS), [b("reconnected")], "after we reconnected");
        await closePeers(pull);
      });

      it(`our PUSH's close() flushes every queued message to a ${kind} PULL before it resolves`, async () => {
        const push = newPush();
        const pull = await peer("pull", "bind", bindAddress());
        push.connect(pull.endpoint);
        // Queued before the connection is even up: all of it is still ours when close() starts.
        for (let i = 0; i < 500; i++) await push.send(numbered(i, 64));
        await push.close();
        const got = await pull.messages(500, GUARD_MS);
        assertInOrder(got.map(seqOf), range(0, 500), "flushed on close");
        await closePeers(pull);
      });

      it(`a ${kind} PULL that drops us for an oversize message does not break our PUSH`, async () => {
        const push = newPush({ reconnectInterval: 50 });
        const log = new EventLog(push, ["handshake", "disconnect"]);
        const strict = await peer("pull", "bind", bindAddress(), { maxMessageSize: 1024 });
        push.connect(strict.endpoint);
        await push.send([pattern(4096, 5)]);
        // libzmq refuses the frame header and closes; we reconnect.
        await log.until("disconnect", 1);
        await log.until("handshake", 2);

        const relaxed = await peer("pull", "bind", bindAddress());
        push.connect(relaxed.endpoint);
        for (let i = 0; i < 10; i++) await push.send([String(i)]);
        const [fromStrict, fromRelaxed] = await Promise.all([strict.messages(5, GUARD_MS), relaxed.messages(5, GUARD_MS)]);
        const all = [...fromStrict, ...fromRelaxed].map((m) => Number(m[0]!.toString())).sort((x, y) => x - y);
        assert.deepEqual(all, range(0, 10), "the oversize message was not retried and nothing else was lost");
        await closePeers(strict, relaxed);
      });
    });
  }
}
