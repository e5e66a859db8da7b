// A user-space TCP proxy that injects network faults between two ZeroMQ peers: the kernel
// the tests run on may have neither netem nor iptables, so the faults are made here.
//
//   client ──tcp──▶ [ proxy 127.0.0.1:ephemeral ] ──tcp──▶ target
//
// Faults, at any moment:
// - delay(ms): every chunk read from either side is forwarded no earlier than `ms` after it
//   was read (0 = forward as soon as possible).
// - stall(): a partition. Nothing is forwarded in either direction and nothing more is read
//   from either side, so the senders' kernel buffers fill and TCP pushes back on them;
//   every TCP connection stays open and no byte is dropped — bytes are held, in the proxy's
//   queues and in the kernel buffers, until heal(). What a side closes during the partition
//   (FIN, or RST) is also held: it reaches the other side only after heal() and after the
//   bytes sent before it, as on a real network.
//   Connections made to the proxy during a partition are accepted but stalled: the client's
//   connect() succeeds (the listening socket is local), but the proxy opens the connection
//   to the target only at heal(), and until then reads nothing from the client. This stands
//   for a SYN that gets through once the network heals; the difference from a real
//   partition is that the client's connect() does not hang (nor time out after minutes).
//   A chunk already handed to the destination socket when stall() is called (at most one
//   per direction, at most 64 KiB) may still arrive: those bytes were "on the wire".
// - heal(): ends a partition: held bytes go out in their order, the connections accepted
//   during the partition are connected to the target.
// - drop(): destroys every current connection abruptly, both sides, with an RST where
//   possible (socket.resetAndDestroy()), so the peers see ECONNRESET. Bytes the proxy held
//   for them are lost, as are the bytes in the two kernels' buffers. The proxy keeps
//   listening; new connections are served as usual (stalled if a partition is on).
// - close(): drop() and stop listening. Afterwards the proxy holds no socket and no timer,
//   so it never keeps the process alive.
//
// Half-closes are forwarded (a FIN from one side ends the other side's writing, after the
// bytes before it), and an RST from one side is passed on as an RST, after the bytes that
// came before it. If the target refuses the connection, the client is reset. (libuv reports
// an RST that follows data as an end-of-stream when the read that got the data came up
// short, so such an RST may be passed on as a FIN.)
//
// An RST makes the receiving kernel throw away what its socket had not sent yet, so with it
// no one can tell what a process wrote into a connection from what it never wrote. With
// `sinkOnFailure`, once one side of an established connection fails (an RST from it, or a
// write to it that fails, as when its process was killed), the other side gets its bytes
// and then a FIN instead, and whatever it still sends is read (the tap sees it) and thrown
// away until it closes: everything that left the surviving process reaches the tap.
//
// TCP on loopback after a long stall: a sender whose receiver stopped reading ends up
// probing a zero window, or retransmitting segments the full receive buffer dropped, with
// exponential backoff; after heal() it resumes only at its next probe or retransmission, up
// to several seconds later (about 6 s after a 10 s stall). A partition of a real network
// has the same effect (every segment is lost, the retransmission timer backs off). So the
// first bytes after a heal can take that long, and a test that waits for delivery should
// wait until inFlight() is 0, not for a fixed quiet time.
//
// progress() tells, per connection and direction, how many bytes the proxy has read and
// how many the receiving kernel has taken (Linux), and a `tap` sees every chunk read, so a
// test can tell which messages left a sender and which reached a receiver.
// inFlight() counts the bytes between the two applications right now, on every connection:
// what the proxy holds plus the unsent and unread bytes in the four sockets' kernel queues
// (Linux: read from /proc/net/tcp; elsewhere only the proxy's own queues count). Bytes a
// receiving process has read are out of flight before anything it says about them reaches
// the test: a test that drains asks the receiver too.

import { readFileSync } from "node:fs";
import * as net from "node:net";

export type Direction = "up" | "down";

export interface FaultProxyOptions {
  /** Where to forward, e.g. `tcp://127.0.0.1:5555` or { host, port }. */
  target: string | { host: string; port: number };
  /**
   * Sees every chunk as the proxy reads it, in order: `up` from the client, `down` from the
   * target; `conn` numbers the connections from 1 in the order they were accepted.
   */
  tap?: (conn: number, direction: Direction, chunk: Buffer) => void;
  /** See the file's header: a failed side's peer gets a FIN and is drained, not reset. */
  sinkOnFailure?: boolean;
}

/** How far one direction of one connection got, in bytes from its start. */
export interface FlowProgress {
  /** Read by the proxy from the sending side. */
  read: number;
  /** Received by the other side's kernel: handed to it, less what its socket has not acknowledged. */
  delivered: number;
}

export interface ProxyStats {
  /** Connections accepted since the proxy started. */
  accepted: number;
  /** Connections open now (accepted and not yet fully closed). */
  open: number;
  /** Bytes forwarded client → target and target → client. */
  bytesUp: number;
  bytesDown: number;
}

/** Pause reading a side once this much read from it is waiting to go out. */
const QUEUE_HIGH = 256 * 1024;
/** …and resume once the queue is below this. */
const QUEUE_LOW = 64 * 1024;

function parseTarget(target: FaultProxyOptions["target"]): { host: string; port: number } {
  if (typeof target !== "string") return target;
  const m = /^tcp:\/\/(.+):(\d+)$/.exec(target);
  if (!m) throw new Error(`fault proxy: cannot parse target ${JSON.stringify(target)} (expected tcp://host:port)`);
  return { host: m[1]!.replace(/^\[(.*)\]$/, "$1"), port: Number(m[2]) };
}

/** Abrupt close: an RST if the socket is connected, else a plain destroy. */
function reset(socket: net.Socket): void {
  if (socket.destroyed) return;
  if (socket.writableEnded) {
    // We passed a FIN on already. libuv refuses to reset a socket whose shutdown is still in
    // progress (EINVAL), and Node then never closes its handle: the process could not exit.
    // The peer has its FIN; close the socket normally.
    socket.destroy();
    return;
  }
  // Without a connection resetAndDestroy() destroys with ERR_SOCKET_CLOSED (heard by the
  // socket's error listener); a connect in progress is reset once it completes.
  socket.resetAndDestroy();
}

/**
 * Unsent + unread bytes of every IPv4 TCP socket that is neither listening nor in
 * TIME_WAIT, keyed `localPort>remotePort`; null where /proc/net/tcp does not exist.
 */
function kernelQueues(): Map<string, number> | null {
  let text: string;
  try {
    text = readFileSync("/proc/net/tcp", "latin1");
  } catch {
    return null;
  }
  const queues = new Map<string, number>();
  for (const line of text.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 5 || f[3] === "0A" || f[3] === "06") continue;
    const [tx, rx] = f[4]!.split(":").map((h) => parseInt(h, 16));
    const bytes = (tx ?? 0) + (rx ?? 0);
    if (bytes === 0) continue;
    const port = (addr: string) => parseInt(addr.slice(addr.indexOf(":") + 1), 16);
    const key = queueKey(port(f[1]!), port(f[2]!));
    queues.set(key, (queues.get(key) ?? 0) + bytes);
  }
  return queues;
}

/** kernelQueues()'s key for the socket from port `local` to port `remote`. */
function queueKey(local: number, remote: number): string {
  return `${local}>${remote}`;
}

/** What kernelQueues() counted for the socket from port `local` to `remote` (0 without /proc). */
function queued(queues: Map<string, number> | null, local: number, remote: number): number {
  return queues?.get(queueKey(local, remote)) ?? 0;
}

interface Chunk {
  data: Buffer;
  /** Monotonic ms before which the chunk must not be forwarded. */
  due: number;
}

/** One direction of one connection: reads `src`, writes `dst`. */
class Flow {
  private readonly queue: Chunk[] = [];
  private queued = 0;
  private writing = false;
  /** `src` sent FIN (after everything queued). */
  private ended = false;
  /** `src` was reset or failed: pass an RST on once the queue is out. */
  private failed = false;
  private finished = false;
  private salvaging = false;
  /** The destination is gone (sinkOnFailure): what `src` sends is read and thrown away. */
  private sinking = false;
  private timer: NodeJS.Timeout | null = null;
  /** Bytes read from `src` and handed to `dst`'s kernel, since the connection began. */
  readBytes = 0;
  writtenBytes = 0;

  constructor(
    private readonly conn: Connection,
    readonly direction: Direction,
    readonly src: net.Socket,
    readonly dst: net.Socket,
    private readonly count: (bytes: number) => void,
  ) {
    src.on("data", (data: Buffer) => {
      if (!this.salvaging) this.enqueue(data);
    });
    src.on("end", () => {
      this.ended = true;
      this.pump();
    });
    src.on("error", () => {
      // A paused socket still reads up to its stream's high-water mark; bytes it read before
      // the reset are still in that buffer, and they came before the reset on the wire.
      this.salvaging = true;
      for (let chunk: Buffer | null; (chunk = src.read() as Buffer | null) !== null; ) this.enqueue(chunk);
      this.salvaging = false;
      this.failed = true;
      this.pump();
    });
  }

  private enqueue(data: Buffer): void {
    this.readBytes += data.length;
    this.conn.proxy.tap?.(this.conn.id, this.direction, data);
    if (this.sinking) return;
    this.queue.push({ data, due: performance.now() + this.conn.proxy.delayMs });
    this.queued += data.length;
    if (this.queued >= QUEUE_HIGH) this.src.pause();
    this.pump();
  }

  /** Bytes this flow holds in the proxy: queued, read but not yet emitted, being written. */
  get held(): number {
    return this.queued + this.src.readableLength + this.dst.writableLength;
  }

  /** Stop reading (partition). */
  pause(): void {
    this.src.pause();
  }

  /** Read again, unless the queue is still long. */
  resume(): void {
    if (this.queued < QUEUE_HIGH) this.src.resume();
  }

  /** Forward what is due, one chunk in the destination's hands at a time. */
  pump(): void {
    if (this.finished || this.conn.stalled || this.writing) return;
    if (this.sinking) {
      // Drained to its end: the source closed (FIN) or failed; nothing is left to pass on.
      if (this.ended || this.failed) {
        this.finished = true;
        this.src.destroy();
      }
      return;
    }
    if (!this.conn.upstreamReady) {
      // The target was never reached (refused, or the client gave up first): nothing to
      // pass on, only the failure.
      if (this.failed) this.conn.fail();
      return;
    }
    const head = this.queue[0];
    if (head) {
      const wait = head.due - performance.now();
      if (wait > 0) {
        this.timer ??= setTimeout(() => {
          this.timer = null;
          this.pump();
        }, Math.ceil(wait));
        return;
      }
      this.queue.shift();
      this.queued -= head.data.length;
      if (this.queued < QUEUE_LOW) this.src.resume();
      this.writing = true;
      // The callback runs once libuv has handed the bytes to the kernel: keeping one chunk
      // in flight means a stall() holds everything else.
      this.dst.write(head.data, (err) => {
        this.writing = false;
        if (err) {
          this.conn.fail(this.dst);
          return;
        }
        this.writtenBytes += head.data.length;
        this.count(head.data.length);
        this.pump();
      });
      return;
    }
    if (this.failed) {
      this.finished = true;
      this.conn.fail(this.src);
    } else if (this.ended) {
      this.finished = true;
      this.dst.end();
    }
  }

  clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.queue.length = 0;
    this.queued = 0;
    this.finished = true;
  }

  /** sinkOnFailure: `dst` is gone; read `src` to its end and throw it away. */
  sink(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.queue.length = 0;
    this.queued = 0;
    this.sinking = true;
    this.src.resume();
    this.pump();
  }

  /** sinkOnFailure: `src` is gone; pass on what is queued, then a FIN. */
  endSource(): void {
    this.ended = true;
    this.failed = false;
    this.pump();
  }

  get isFinished(): boolean {
    return this.finished;
  }

  /** This flow's state, for a failing test's diagnostics. */
  describe(): string {
    const flags = [
      this.writing && "writing",
      this.ended && "ended",
      this.failed && "failed",
      this.finished && "finished",
      this.sinking && "sinking",
      this.src.isPaused() && "src paused",
      this.src.destroyed && "src destroyed",
      this.dst.destroyed && "dst destroyed",
      this.timer && "timer",
    ].filter(Boolean);
    return (
      `${this.direction}: read ${this.readBytes}, written ${this.writtenBytes}, queued ${this.queued} in ${this.queue.length}, ` +
      `src readable ${this.src.readableLength}, dst writable ${this.dst.writableLength}` +
      (flags.length ? ` [${flags.join(", ")}]` : "")
    );
  }
}

class Connection {
  readonly upstream: net.Socket;
  upstreamReady = false;
  private connecting = false;
  private readonly up: Flow;
  private readonly down: Flow;
  private closed = false;
  /** sinkOnFailure: the side that failed, while the other is being drained. */
  private dead: net.Socket | null = null;
  /** The client's port (its socket is clientPort>proxyPort), fixed at accept. */
  private readonly clientPort: number;
  /** The proxy's port towards the target, once connected. */
  private upstreamPort = 0;

  constructor(
    readonly proxy: FaultProxy,
    readonly client: net.Socket,
    readonly id: number,
  ) {
    this.clientPort = client.remotePort ?? 0;
    this.upstream = new net.Socket({ allowHalfOpen: true });
    // Until the target is connected nothing is read from the client.
    client.pause();
    this.up = new Flow(this, "up", client, this.upstream, (n) => (proxy.stats.bytesUp += n));
    this.down = new Flow(this, "down", this.upstream, client, (n) => (proxy.stats.bytesDown += n));
    client.on("close", () => this.onClose());
    this.upstream.on("close", () => this.onClose());
    this.upstream.on("connect", () => {
      this.upstreamReady = true;
      this.upstreamPort = this.upstream.localPort ?? 0;
      if (this.stalled) {
        this.up.pause();
        this.down.pause();
        return;
      }
      this.up.resume();
      this.down.resume();
      this.up.pump();
      this.down.pump();
    });
    if (!this.stalled) this.connectUpstream();
  }

  get stalled(): boolean {
    return this.proxy.isStalled;
  }

  private connectUpstream(): void {
    if (this.connecting || this.closed) return;
    this.connecting = true;
    // A refused or failed connect shows up as an "error" on upstream; its Flow turns that
    // into a reset of the client.
    this.upstream.connect(this.proxy.target.port, this.proxy.target.host);
  }

  stall(): void {
    this.up.pause();
    this.down.pause();
  }

  heal(): void {
    if (!this.connecting) {
      // A client that gave up during the partition never reaches the target.
      if (this.client.destroyed) this.fail();
      else this.connectUpstream();
      return; // "connect" resumes both flows
    }
    if (!this.upstreamReady) return;
    this.up.resume();
    this.down.resume();
    this.up.pump();
    this.down.pump();
  }

  /** Bytes between the two applications: in the proxy, and in the four sockets' kernel queues. */
  inFlight(queues: Map<string, number> | null): number {
    if (this.closed) return 0;
    const p = this.proxy.port;
    const t = this.proxy.target.port;
    let bytes = this.up.held + this.down.held;
    bytes += queued(queues, this.clientPort, p) + queued(queues, p, this.clientPort);
    if (this.upstreamPort) bytes += queued(queues, this.upstreamPort, t) + queued(queues, t, this.upstreamPort);
    return bytes;
  }

  /** This connection's state, for a failing test's diagnostics. */
  describe(queues: Map<string, number> | null): string {
    const p = this.proxy.port;
    const t = this.proxy.target.port;
    const q = (from: number, to: number) => `${queueKey(from, to)} ${queued(queues, from, to)}`;
    return (
      `conn ${this.id}${this.closed ? " (closed)" : ""}: ${this.up.describe()}; ${this.down.describe()}; ` +
      `kernel queues (tx+rx): ${q(this.clientPort, p)}, ${q(p, this.clientPort)}, ${q(this.upstreamPort, t)}, ${q(t, this.upstreamPort)}`
    );
  }

  /** See FaultProxy.progress(). */
  progress(queues: Map<string, number> | null): Record<Direction, FlowProgress> {
    const p = this.proxy.port;
    const unackedUp = this.upstreamPort ? queued(queues, this.upstreamPort, this.proxy.target.port) : 0;
    const unackedDown = queued(queues, p, this.clientPort);
    return {
      up: { read: this.up.readBytes, delivered: Math.max(0, this.up.writtenBytes - unackedUp) },
      down: { read: this.down.readBytes, delivered: Math.max(0, this.down.writtenBytes - unackedDown) },
    };
  }

  /**
   * Something broke (an RST, a refused connect, a write error) or drop(): reset both sides.
   * With sinkOnFailure, when `dead` (the side that failed) was connected, its peer is ended
   * and drained instead (see the file's header).
   */
  fail(dead?: net.Socket): void {
    // A late error from the side already gone (a write to it that was under way) changes nothing.
    if (this.dead && dead === this.dead) return;
    if (dead && this.proxy.sinkOnFailure && this.upstreamReady && !this.dead) {
      this.dead = dead;
      const [into, from] = dead === this.upstream ? [this.up, this.down] : [this.down, this.up];
      reset(dead);
      into.sink();
      // The survivor gets what the dead side sent before it failed, then a FIN.
      if (!from.isFinished) from.endSource();
      else if (!into.src.writableEnded) into.src.end();
      return;
    }
    this.up.clear();
    this.down.clear();
    reset(this.client);
    reset(this.upstream);
  }

  private onClose(): void {
    if (this.client.destroyed && this.upstream.destroyed) {
      if (this.closed) return;
      this.closed = true;
      this.up.clear();
      this.down.clear();
      this.proxy.forget(this);
      return;
    }
    // One side is closed while the other still runs: once a flow has passed on what it had,
    // the close reaches the other side through it (end or reset).
    this.up.pump();
    this.down.pump();
  }
}

export class FaultProxy {
  readonly target: { host: string; port: number };
  readonly stats: ProxyStats = { accepted: 0, open: 0, bytesUp: 0, bytesDown: 0 };
  delayMs = 0;
  readonly tap: FaultProxyOptions["tap"];
  readonly sinkOnFailure: boolean;
  private stalledNow = false;
  private readonly server: net.Server;
  private readonly connections = new Set<Connection>();
  private readonly everyConnection: Connection[] = [];
  private portNumber = 0;
  private closing: Promise<void> | null = null;

  private constructor(options: FaultProxyOptions) {
    this.target = parseTarget(options.target);
    this.tap = options.tap;
    this.sinkOnFailure = options.sinkOnFailure ?? false;
    this.server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client) => {
      this.stats.accepted += 1;
      this.stats.open += 1;
      const conn = new Connection(this, client, this.stats.accepted);
      this.connections.add(conn);
      this.everyConnection.push(conn);
    });
  }

  /** Starts a proxy on 127.0.0.1 with an ephemeral port, forwarding to `target`. */
  static async start(options: FaultProxyOptions): Promise<FaultProxy> {
    const proxy = new FaultProxy(options);
    await new Promise<void>((resolve, reject) => {
      proxy.server.once("error", reject);
      proxy.server.listen(0, "127.0.0.1", () => {
        proxy.server.off("error", reject);
        resolve();
      });
    });
    proxy.portNumber = (proxy.server.address() as net.AddressInfo).port;
    return proxy;
  }

  get port(): number {
    return this.portNumber;
  }

  /** `tcp://127.0.0.1:<port>`: where clients connect. */
  get endpoint(): string {
    return `tcp://127.0.0.1:${this.portNumber}`;
  }

  get isStalled(): boolean {
    return this.stalledNow;
  }

  /** Forward each chunk no earlier than `ms` after it was read; 0 ends the delay. */
  delay(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`fault proxy: bad delay ${ms}`);
    this.delayMs = ms;
  }

  /** Partition: hold everything, read nothing, keep every connection open. */
  stall(): void {
    this.stalledNow = true;
    for (const conn of this.connections) conn.stall();
  }

  /** End the partition: held bytes go out in order; stalled new connections reach the target. */
  heal(): void {
    this.stalledNow = false;
    for (const conn of this.connections) conn.heal();
  }

  /** Reset every current connection (RST to both sides); the proxy stays up. */
  drop(): void {
    for (const conn of [...this.connections]) conn.fail();
  }

  /** Bytes between the two applications on every open connection (see the file's header). */
  inFlight(): number {
    const queues = kernelQueues();
    let bytes = 0;
    for (const conn of this.connections) bytes += conn.inFlight(queues);
    return bytes;
  }

  /** Every connection's state, one line each, for a failing test's diagnostics. */
  describe(): string {
    const queues = kernelQueues();
    return this.everyConnection.map((c) => c.describe(queues)).join("\n") || "no connection";
  }

  /**
   * Per connection ever accepted (by id), per direction: bytes the proxy read from the
   * sending side, and bytes the receiving side's kernel took (handed to it less what it has
   * not acknowledged; for a connection already closed, what was handed to it).
   */
  progress(): Map<number, Record<Direction, FlowProgress>> {
    const queues = kernelQueues();
    return new Map(this.everyConnection.map((c) => [c.id, c.progress(queues)]));
  }

  /** Reset every connection and stop listening. Idempotent. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.drop();
    });
    return this.closing;
  }

  /** @internal */
  forget(conn: Connection): void {
    if (this.connections.delete(conn)) this.stats.open -= 1;
  }
}
