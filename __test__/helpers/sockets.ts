// Shared by the test files: sockets closed after every test, fresh addresses and free TCP
// ports, and time limits on anything awaited (a hang is a failure with a message).

import { existsSync, unlinkSync } from "node:fs";
import * as net from "node:net";
import { afterEach } from "node:test";

import { Pull, Push, type PullOptions, type PushOptions } from "zeropipe";

export type Proto = "tcp" | "ipc" | "inproc";
export const PROTOS: Proto[] = ["tcp", "ipc", "inproc"];

let counter = 0;

/** A fresh address to bind to: for tcp an ephemeral port (read it back from lastEndpoint). */
export function bindAddress(proto: Proto): string {
  counter++;
  if (proto === "tcp") return "tcp://127.0.0.1:*";
  if (proto === "ipc") return `ipc:///tmp/zeropipe-test-${process.pid}-${counter}.sock`;
  return `inproc://test-${process.pid}-${counter}`;
}

/** Binds `sock` to a fresh address and returns the address peers connect to. */
export async function bindFresh(sock: Push | Pull, proto: Proto): Promise<string> {
  await sock.bind(bindAddress(proto));
  const ep = sock.lastEndpoint;
  if (!ep) throw new Error("lastEndpoint is not set after bind");
  return ep;
}

/** Fails with `what` instead of hanging the test when `p` does not settle within `ms`. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([p, guard]).finally(() => clearTimeout(timer));
}

/** Polls a state that has no event of its own (e.g. `readable`) until it holds. */
export async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * A Push connected to a Pull bound on a fresh address of `proto`, made by `make` (a
 * file's tracked factories from `trackSockets()`; by default plain sockets, for a pair a
 * whole file shares and closes in its `after`).
 */
export async function connectedPair(
  proto: Proto = "tcp",
  pushOpts: PushOptions = {},
  pullOpts: PullOptions = {},
  make: { push: (o: PushOptions) => Push; pull: (o: PullOptions) => Pull } = {
    push: (o) => new Push(o),
    pull: (o) => new Pull(o),
  },
): Promise<[Push, Pull]> {
  const q = make.pull(pullOpts);
  const p = make.push(pushOpts);
  p.connect(await bindFresh(q, proto));
  return [p, q];
}

/** The next `n` messages of `q`, each within 15 s. */
export async function receiveN(q: Pull, n: number): Promise<Buffer[][]> {
  const out: Buffer[][] = [];
  for (let i = 0; i < n; i++) out.push(await within(q.receive(), 15_000, `message ${i + 1} of ${n}`));
  return out;
}

/**
 * Sockets opened by a test file's tests, closed after each test — a failed test must not
 * leave sockets behind that hold addresses or keep the runner alive. Closed with linger 0
 * so a Push with undelivered messages does not wait out the 30 s default.
 */
export function trackSockets() {
  const open: (Push | Pull)[] = [];
  afterEach(async () => {
    await Promise.all(
      open.splice(0).map((s) => {
        if (!s.closed) s.linger = 0;
        return s.close();
      }),
    );
  });
  const track = <S extends Push | Pull>(s: S): S => {
    open.push(s);
    return s;
  };
  return {
    track,
    push: (options?: PushOptions) => track(new Push(options)),
    pull: (options?: PullOptions) => track(new Pull(options)),
  };
}

/** A TCP port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Addresses known before anyone binds them (the module API and the example scripts need the
 * same address on both sides): a free tcp port, an ipc path (its file removed after each
 * test, since a killed script cannot remove it), or an inproc name. `tag` keeps files apart.
 */
export function fixedEndpoints(tag: string): (proto: Proto) => Promise<string> {
  const ipcPaths: string[] = [];
  let counter = 0;
  afterEach(() => {
    for (const p of ipcPaths.splice(0)) {
      if (existsSync(p)) unlinkSync(p);
    }
  });
  return async (proto) => {
    counter += 1;
    if (proto === "tcp") return `tcp://127.0.0.1:${await freePort()}`;
    if (proto === "ipc") {
      const p = `/tmp/zeropipe-test-${tag}-${process.pid}-${counter}.sock`;
      ipcPaths.push(p);
      return `ipc://${p}`;
    }
    return `inproc://${tag}-${process.pid}-${counter}`;
  };
}
