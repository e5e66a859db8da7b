// Drives foreign ZeroMQ peers (pyzmq / zeromq.js, both real libzmq) as child
// processes speaking the line protocol documented in __test__/peers/.
//
// Peers live in separate processes so a test can SIGKILL one to simulate a
// crash, and so libzmq never shares an address space with the engine under
// test.

import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { existsSync, unlinkSync } from "node:fs";
import * as path from "node:path";
import { createInterface } from "node:readline";

export type PeerKind = "pyzmq" | "zeromqjs";
export type PeerRole = "push" | "pull";
export type PeerMode = "bind" | "connect";

/** Socket options, named as in zeromq.js; both peers map them to their own API. */
export interface PeerOptions {
  linger?: number;
  sendHighWaterMark?: number;
  receiveHighWaterMark?: number;
  immediate?: boolean;
  conflate?: boolean;
  reconnectInterval?: number;
  reconnectMaxInterval?: number;
  connectTimeout?: number;
  handshakeInterval?: number;
  heartbeatInterval?: number;
  heartbeatTimeout?: number;
  heartbeatTimeToLive?: number;
  maxMessageSize?: number;
  backlog?: number;
  sendBufferSize?: number;
  receiveBufferSize?: number;
  tcpKeepalive?: number;
  tcpKeepaliveCount?: number;
  tcpKeepaliveIdle?: number;
  tcpKeepaliveInterval?: number;
  tcpMaxRetransmitTimeout?: number;
  ipv6?: boolean;
  /** CURVE, keys as 40-character Z85 strings (both peers pass them to libzmq as they are). */
  curveServer?: boolean;
  curveSecretKey?: string;
  curvePublicKey?: string;
  curveServerKey?: string;
  zapDomain?: string;
}

export interface StartPeerOptions {
  /** How long to wait for the peer's `ready` line. Default 15000 ms. */
  startTimeoutMs?: number;
}

export interface Peer {
  readonly kind: PeerKind;
  readonly role: PeerRole;
  readonly mode: PeerMode;
  /** For bind: the endpoint libzmq actually bound (real port); for connect: the address given. */
  readonly endpoint: string;
  readonly pid: number;
  /** Everything the peer wrote to stderr so far. */
  readonly stderr: string;
  /** Received messages not yet taken by nextMessage()/messages(). */
  readonly buffered: number;
  /** Settles when the process has exited, for whatever reason. */
  readonly exited: Promise<PeerExit>;
  /** Push only: resolves once libzmq accepted the message (the peer printed `sent`). */
  send(frames: ReadonlyArray<Buffer | Uint8Array | string>, timeoutMs?: number): Promise<void>;
  /** Pull only: the next message in arrival order. Default timeout 5000 ms. */
  nextMessage(timeoutMs?: number): Promise<Buffer[]>;
  /** Pull only: the next n messages in arrival order, all within one timeout. Default 5000 ms. */
  messages(n: number, timeoutMs?: number): Promise<Buffer[][]>;
  /** Graceful: closes the socket (lingering so queued messages flush) and waits for exit 0. Default 15000 ms. */
  close(timeoutMs?: number): Promise<void>;
  /** SIGKILL and wait for the process to be gone. */
  kill(): Promise<void>;
}

export interface PeerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const REPO_ROOT = path.resolve(__dirname, "..", "..");
const PEERS_DIR = path.join(REPO_ROOT, "__test__", "peers");
const STDERR_LIMIT = 64 * 1024;

/** Python interpreter that has pyzmq: $ZEROPIPE_PYTHON, else the repo's .venv. */
export function pythonPath(): string {
  return process.env.ZEROPIPE_PYTHON || path.join(REPO_ROOT, ".venv", "bin", "python");
}

// Ports are handed out at most once per process so two tests can never race
// for the same address, even after the first one has released it.
const issuedPorts = new Set<number>();
const portPool: number[] = [];

// The kernel is the only reliable judge of which ports are free, but asking it
// (listen on port 0) is asynchronous in Node. uniqueTcp() must stay synchronous,
// so a short-lived child does the asking, for a batch at once to amortise the
// ~100 ms process start. All sockets of a batch are open together, which makes
// the ports in it distinct.
const PORT_BATCH_SCRIPT = `
const net = require("node:net");
const n = Number(process.argv[1]);
const servers = [];
let pending = n;
for (let i = 0; i < n; i++) {
  const s = net.createServer();
  servers.push(s);
  s.listen(0, "127.0.0.1", () => {
    if (--pending === 0) {
      process.stdout.write(servers.map((x) => x.address().port).join(" "));
      for (const x of servers) x.close();
    }
  });
}
`;

function refillPortPool(): void {
  const out = execFileSync(process.execPath, ["-e", PORT_BATCH_SCRIPT, "8"], {
    encoding: "utf8",
    timeout: 10_000,
  });
  for (const word of out.trim().split(/\s+/)) {
    const port = Number(word);
    if (Number.isInteger(port) && port > 0 && !issuedPorts.has(port)) portPool.push(port);
  }
}

/** `tcp://127.0.0.1:<port>` with a port the OS just reported free, never repeated in this process. */
export function uniqueTcp(): string {
  for (let attempt = 0; portPool.length === 0; attempt++) {
    if (attempt === 5) throw new Error("uniqueTcp: could not obtain a fresh free port");
    refillPortPool();
  }
  const port = portPool.shift()!;
  issuedPorts.add(port);
  return `tcp://127.0.0.1:${port}`;
}

let ipcCounter = 0;
const issuedIpcPaths: string[] = [];

/** `ipc:///tmp/zeropipe-test-<pid>-<n>.sock`, unique in this process; the file is removed at exit. */
export function uniqueIpc(): string {
  ipcCounter += 1;
  const file = `/tmp/zeropipe-test-${process.pid}-${ipcCounter}.sock`;
  // A previous process with a recycled pid may have left its socket file.
  removeQuietly(file);
  issuedIpcPaths.push(file);
  return `ipc://${file}`;
}

function removeQuietly(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // Already gone is the normal case.
  }
}

const livePeers = new Set<PeerProcess>();

// Last line of defence against leaked peers: kill whatever a test forgot. The
// peers also exit on stdin EOF, which covers this process dying by a signal
// (where "exit" handlers don't run).
process.on("exit", () => {
  for (const peer of livePeers) peer.killNow();
  for (const file of issuedIpcPaths) removeQuietly(file);
});

function toBuffer(frame: Buffer | Uint8Array | string): Buffer {
  return typeof frame === "string" ? Buffer.from(frame, "utf8") : Buffer.from(frame);
}

function tail(text: string, max = 4000): string {
  return text.length > max ? "…" + text.slice(-max) : text;
}

interface MessageWaiter {
  n: number;
  resolve: (messages: Buffer[][]) => void;
  reject: (err: Error) => void;
  timer?: NodeJS.Timeout;
}

interface SendWaiter {
  settled: boolean;
  resolve: () => void;
  reject: (err: Error) => void;
  timer?: NodeJS.Timeout;
}

class PeerProcess implements Peer {
  endpoint = "";
  readonly pid: number;
  readonly exited: Promise<PeerExit>;

  private readonly child: ChildProcess;
  private stderrText = "";
  private exitInfo: PeerExit | null = null;
  private protocolError: string | null = null;
  private readonly queue: Buffer[][] = [];
  private messageWaiter: MessageWaiter | null = null;
  // Sends complete in order, so the n-th `sent` line belongs to the n-th entry.
  private readonly sendWaiters: SendWaiter[] = [];
  private sentCount = 0;
  private readyWaiter: { resolve: () => void; reject: (err: Error) => void } | null = null;
  private closing = false;
  private killed = false;
  private holds = 0;

  constructor(
    readonly kind: PeerKind,
    readonly role: PeerRole,
    readonly mode: PeerMode,
    readonly address: string,
    command: string,
    args: string[],
  ) {
    this.child = spawn(command, args, {
      stdio: ["pipe", "pipe", "pipe"],
      cwd: REPO_ROOT,
      env: { ...process.env, PYTHONUNBUFFERED: "1" },
    });
    if (this.child.pid === undefined) {
      // spawn reports ENOENT etc. asynchronously via "error"; pid is the sync tell.
      this.pid = -1;
    } else {
      this.pid = this.child.pid;
    }
    livePeers.add(this);

    this.exited = new Promise<PeerExit>((resolve) => {
      let done = false;
      const finish = (info: PeerExit) => {
        if (done) return;
        done = true;
        this.exitInfo = info;
        livePeers.delete(this);
        this.failAll();
        resolve(info);
      };
      // "close" rather than "exit": it comes after stdout/stderr are drained,
      // so the last `recv` lines and the error text are in before waiters fail.
      this.child.on("close", (code, signal) => finish({ code, signal }));
      this.child.on("error", (err) => {
        this.stderrText += `\n[spawn error] ${err.message}`;
        finish({ code: null, signal: null });
      });
    });

    this.setHeld(false);
    // EPIPE on a dead peer's stdin surfaces through exit handling instead.
    this.child.stdin!.on("error", () => {});

    this.child.stderr!.setEncoding("utf8");
    this.child.stderr!.on("data", (chunk: string) => {
      this.stderrText += chunk;
      if (this.stderrText.length > STDERR_LIMIT) this.stderrText = this.stderrText.slice(-STDERR_LIMIT);
    });
    createInterface({ input: this.child.stdout!, crlfDelay: Infinity }).on("line", (line) => this.onLine(line));
  }

  // A test that forgets to close a peer must not keep the test process alive
  // (the exit hook then kills it), so the child's handles are unref'd while
  // idle and ref'd only while somebody is waiting on the peer.
  private setHeld(held: boolean): void {
    const handles: Array<{ ref?: () => void; unref?: () => void } | null> = [
      this.child,
      this.child.stdin as unknown as { ref?: () => void; unref?: () => void } | null,
      this.child.stdout as unknown as { ref?: () => void; unref?: () => void } | null,
      this.child.stderr as unknown as { ref?: () => void; unref?: () => void } | null,
    ];
    for (const handle of handles) {
      if (held) handle?.ref?.();
      else handle?.unref?.();
    }
  }

  private async hold<T>(operation: Promise<T>): Promise<T> {
    if (this.holds++ === 0) this.setHeld(true);
    try {
      return await operation;
    } finally {
      if (--this.holds === 0) this.setHeld(false);
    }
  }

  get stderr(): string {
    return this.stderrText;
  }

  get buffered(): number {
    return this.queue.length;
  }

  private describe(): string {
    const where = this.endpoint || this.address;
    return `${this.kind} ${this.role} peer (pid ${this.pid}, ${this.mode} ${where})`;
  }

  /** Error text with everything useful for debugging a failed interop test. */
  private error(what: string): Error {
    const parts = [`${this.describe()}: ${what}`];
    if (this.exitInfo) {
      parts.push(`exited with ${this.exitInfo.signal ? `signal ${this.exitInfo.signal}` : `code ${this.exitInfo.code}`}`);
    }
    if (this.protocolError) parts.push(`protocol error: ${this.protocolError}`);
    parts.push(this.stderrText.trim() ? `stderr:\n${tail(this.stderrText.trim())}` : "stderr: (empty)");
    return new Error(parts.join("\n"));
  }

  private onLine(line: string): void {
    const space = line.indexOf(" ");
    const verb = space === -1 ? line : line.slice(0, space);
    const rest = space === -1 ? "" : line.slice(space + 1);
    switch (verb) {
      case "ready":
        this.endpoint = rest;
        this.readyWaiter?.resolve();
        this.readyWaiter = null;
        return;
      case "sent": {
        this.sentCount += 1;
        if (Number(rest) !== this.sentCount) {
          this.protocolError ??= `expected "sent ${this.sentCount}", got ${JSON.stringify(line)}`;
        }
        const waiter = this.sendWaiters.shift();
        if (waiter && !waiter.settled) {
          waiter.settled = true;
          clearTimeout(waiter.timer);
          waiter.resolve();
        }
        return;
      }
      case "recv": {
        let frames: Buffer[];
        try {
          const parsed: unknown = JSON.parse(rest);
          if (!Array.isArray(parsed)) throw new Error("not an array");
          frames = parsed.map((f) => Buffer.from(String(f), "base64"));
        } catch (err) {
          this.protocolError ??= `unparsable line ${JSON.stringify(line)}: ${(err as Error).message}`;
          return;
        }
        this.queue.push(frames);
        this.serveMessageWaiter();
        return;
      }
      default:
        this.protocolError ??= `unexpected line ${JSON.stringify(line)}`;
    }
  }

  private serveMessageWaiter(): void {
    const waiter = this.messageWaiter;
    if (waiter && this.queue.length >= waiter.n) {
      this.messageWaiter = null;
      clearTimeout(waiter.timer);
      waiter.resolve(this.queue.splice(0, waiter.n));
    }
  }

  private failAll(): void {
    const reason = this.killed ? "peer was killed" : this.closing ? "peer closed" : "peer exited unexpectedly";
    if (this.readyWaiter) {
      this.readyWaiter.reject(this.error(`${reason} before it was ready`));
      this.readyWaiter = null;
    }
    for (const waiter of this.sendWaiters.splice(0)) {
      if (waiter.settled) continue;
      waiter.settled = true;
      clearTimeout(waiter.timer);
      waiter.reject(this.error(`${reason} before the message was sent`));
    }
    const waiter = this.messageWaiter;
    if (waiter) {
      this.messageWaiter = null;
      clearTimeout(waiter.timer);
      waiter.reject(this.error(`${reason} with ${this.queue.length} of ${waiter.n} expected message(s) received`));
    }
  }

  waitReady(timeoutMs: number): Promise<void> {
    if (this.endpoint) return Promise.resolve();
    if (this.exitInfo) return Promise.reject(this.error("peer exited before it was ready"));
    return this.hold(
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          this.readyWaiter = null;
          reject(this.error(`no "ready" within ${timeoutMs} ms`));
        }, timeoutMs);
        this.readyWaiter = {
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
          reject: (err) => {
            clearTimeout(timer);
            reject(err);
          },
        };
      }),
    );
  }

  private write(line: string): void {
    this.child.stdin!.write(line + "\n");
  }

  send(frames: ReadonlyArray<Buffer | Uint8Array | string>, timeoutMs = 10_000): Promise<void> {
    if (this.role !== "push") return Promise.reject(this.error("send() on a pull peer"));
    if (frames.length === 0) return Promise.reject(this.error("send() needs at least one frame"));
    if (this.exitInfo || this.closing) return Promise.reject(this.error("send() after the peer was closed or exited"));
    const encoded = JSON.stringify(frames.map((f) => toBuffer(f).toString("base64")));
    return this.hold(
      new Promise<void>((resolve, reject) => {
        const waiter: SendWaiter = { settled: false, resolve, reject };
        if (Number.isFinite(timeoutMs)) {
          // The entry stays queued after a timeout so that a late `sent` still
          // lines up with the right send.
          waiter.timer = setTimeout(() => {
            waiter.settled = true;
            reject(this.error(`send not accepted within ${timeoutMs} ms (high-water mark reached, or no connected peer?)`));
          }, timeoutMs);
        }
        this.sendWaiters.push(waiter);
        this.write(`send ${encoded}`);
      }),
    );
  }

  async nextMessage(timeoutMs = 5000): Promise<Buffer[]> {
    const [message] = await this.messages(1, timeoutMs);
    return message!;
  }

  messages(n: number, timeoutMs = 5000): Promise<Buffer[][]> {
    if (this.role !== "pull") return Promise.reject(this.error("messages() on a push peer"));
    if (!Number.isInteger(n) || n < 0) return Promise.reject(this.error(`bad message count ${n}`));
    if (this.messageWaiter) return Promise.reject(this.error("concurrent nextMessage()/messages() calls"));
    if (this.queue.length >= n) return Promise.resolve(this.queue.splice(0, n));
    if (this.exitInfo) {
      return Promise.reject(this.error(`peer has exited; only ${this.queue.length} of ${n} message(s) were received`));
    }
    return this.hold(
      new Promise<Buffer[][]>((resolve, reject) => {
        const waiter: MessageWaiter = { n, resolve, reject };
        if (Number.isFinite(timeoutMs)) {
          // Messages that did arrive stay queued on timeout, so the test can
          // still inspect them.
          waiter.timer = setTimeout(() => {
            this.messageWaiter = null;
            reject(this.error(`only ${this.queue.length} of ${n} expected message(s) arrived within ${timeoutMs} ms`));
          }, timeoutMs);
        }
        this.messageWaiter = waiter;
      }),
    );
  }

  async close(timeoutMs = 15_000): Promise<void> {
    if (this.killed) return;
    if (this.exitInfo && !this.closing) throw this.error("close() on a peer that had already exited");
    if (!this.closing) {
      this.closing = true;
      this.write("close");
    }
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), timeoutMs);
    });
    const result = await this.hold(Promise.race([this.exited, timedOut]));
    clearTimeout(timer);
    if (result === "timeout") {
      await this.kill();
      throw this.error(`did not exit within ${timeoutMs} ms of "close" (killed)`);
    }
    if (result.code !== 0) throw this.error("close failed");
    if (this.protocolError) throw this.error("protocol violation");
  }

  killNow(): void {
    if (this.exitInfo) return;
    this.killed = true;
    this.child.kill("SIGKILL");
  }

  async kill(): Promise<void> {
    this.killNow();
    await this.hold(this.exited);
  }
}

function peerCommand(kind: PeerKind): { command: string; script: string } {
  switch (kind) {
    case "pyzmq": {
      const python = pythonPath();
      if (!existsSync(python)) {
        throw new Error(`Python for the pyzmq peer not found at ${python}; run ./scripts/setup-python.sh or set ZEROPIPE_PYTHON`);
      }
      return { command: python, script: path.join(PEERS_DIR, "pyzmq_peer.py") };
    }
    case "zeromqjs":
      // Plain node: the test's own --import/--test flags must not leak into the peer.
      return { command: process.execPath, script: path.join(PEERS_DIR, "zeromqjs_peer.mjs") };
    default:
      throw new Error(`unknown peer kind ${String(kind)}`);
  }
}

/**
 * Spawns a foreign peer and waits until its socket is bound or connected.
 * For bind, `tcp://host:0` (or `:*`) picks a free port; read it from `peer.endpoint`.
 */
export async function startPeer(
  kind: PeerKind,
  role: PeerRole,
  mode: PeerMode,
  address: string,
  options: PeerOptions = {},
  start: StartPeerOptions = {},
): Promise<Peer> {
  const { command, script } = peerCommand(kind);
  const args = [script, role, mode, address, JSON.stringify(options)];
  const peer = new PeerProcess(kind, role, mode, address, command, args);
  try {
    await peer.waitReady(start.startTimeoutMs ?? 15_000);
  } catch (err) {
    await peer.kill();
    throw err;
  }
  return peer;
}
