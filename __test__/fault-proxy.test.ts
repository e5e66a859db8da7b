// The fault-injection proxy used by faults.test.ts (helpers/fault-proxy.ts), tested on its
// own with plain TCP sockets: what it forwards must be exact, a stall must hold (not drop)
// bytes, heal must release them in order, drop must kill connections, and close must leave
// nothing that keeps a process alive.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as net from "node:net";
import * as path from "node:path";
import { afterEach, describe, it } from "node:test";

import { FaultProxy } from "./helpers/fault-proxy";

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A TCP server that records, per accepted connection, every byte it receives. */
class Target {
  readonly conns: Array<{ socket: net.Socket; data: Buffer[]; ended: boolean; error: string | null }> = [];
  private constructor(readonly server: net.Server) {}

  static async start(): Promise<Target> {
    let target: Target;
    const server = net.createServer({ allowHalfOpen: true }, (socket) => {
      const rec = { socket, data: [] as Buffer[], ended: false, error: null as string | null };
      target.conns.push(rec);
      socket.on("data", (d) => rec.data.push(d));
      socket.on("end", () => (rec.ended = true));
      socket.on("error", (e: NodeJS.ErrnoException) => (rec.error = e.code ?? e.message));
    });
    target = new Target(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return target;
  }

  get address(): { host: string; port: number } {
    return { host: "127.0.0.1", port: (this.server.address() as net.AddressInfo).port };
  }

  received(i = 0): Buffer {
    return Buffer.concat(this.conns[i]?.data ?? []);
  }

  close(): Promise<void> {
    for (const c of this.conns) c.socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

interface Client {
  socket: net.Socket;
  data: Buffer[];
  ended: boolean;
  error: string | null;
  closed: boolean;
}

function connect(port: number): Promise<Client> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: "127.0.0.1", allowHalfOpen: true });
    const c: Client = { socket, data: [], ended: false, error: null, closed: false };
    socket.on("data", (d) => c.data.push(d));
    socket.on("end", () => (c.ended = true));
    socket.on("close", () => (c.closed = true));
    socket.on("error", (e: NodeJS.ErrnoException) => (c.error = e.code ?? e.message));
    socket.once("connect", () => resolve(c));
    socket.once("error", reject);
  });
}

/** Polls until `cond` holds; fails after `ms`. */
async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await pause(10);
  }
}

const total = (chunks: Buffer[]) => chunks.reduce((n, c) => n + c.length, 0);

describe("the fault-injection TCP proxy", { timeout: 60_000 }, () => {
  const cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    for (const f of cleanups.splice(0).reverse()) await f();
  });

  async function setup(): Promise<{ target: Target; proxy: FaultProxy }> {
    const target = await Target.start();
    cleanups.push(() => target.close());
    const proxy = await FaultProxy.start({ target: target.address });
    cleanups.push(() => proxy.close());
    return { target, proxy };
  }

  async function client(proxy: FaultProxy): Promise<Client> {
    const c = await connect(proxy.port);
    cleanups.push(() => c.socket.destroy());
    return c;
  }

  it("passes bytes intact both ways, and passes each side's FIN on after its bytes", { timeout: 10_000 }, async () => {
    const { target, proxy } = await setup();
    const c = await client(proxy);
    const up = randomBytes(4 << 20);
    const down = randomBytes(3 << 20);
    c.socket.end(up);
    await until(() => target.conns.length === 1, "the target to see the connection");
    target.conns[0]!.socket.end(down);
    await until(() => target.conns[0]!.ended && c.ended, "both FINs");
    assert.ok(target.received().equals(up), "client → target bytes differ");
    assert.ok(Buffer.concat(c.data).equals(down), "target → client bytes differ");
    assert.equal(proxy.stats.bytesUp, up.length);
    assert.equal(proxy.stats.bytesDown, down.length);
    await until(() => proxy.stats.open === 0, "the proxy to forget the closed connection");
  });

  it("stall() holds bytes both ways without dropping any, and pushes back on the writers; heal() releases them in order", { timeout: 15_000 }, async () => {
    const { target, proxy } = await setup();
    const c = await client(proxy);
    c.socket.write("before");
    await until(() => target.received().toString() === "before", "the first bytes");
    const t = target.conns[0]!;

    proxy.stall();
    // Far more than the kernel buffers and the proxy's queue can hold: the writers must
    // end up with bytes they cannot hand to the kernel.
    const up = randomBytes(32 << 20);
    const down = randomBytes(32 << 20);
    // In 64 KiB writes: a writer's writableLength counts a write in progress whole, even
    // the part of it already in the kernel.
    for (let i = 0; i < up.length; i += 65536) c.socket.write(up.subarray(i, i + 65536));
    for (let i = 0; i < down.length; i += 65536) t.socket.write(down.subarray(i, i + 65536));
    c.socket.end();
    await pause(500);
    assert.equal(target.received().toString(), "before", "bytes crossed the partition upwards");
    assert.equal(total(c.data), 0, "bytes crossed the partition downwards");
    assert.equal(t.ended, false, "a FIN crossed the partition");
    assert.ok(c.socket.writableLength > 0, "the client's writes were not held back (no backpressure)");
    assert.ok(t.socket.writableLength > 0, "the target's writes were not held back (no backpressure)");
    assert.equal(proxy.stats.open, 1, "the connection stays open during a partition");
    // What the writers could hand to their kernels is in flight (in the four sockets' kernel
    // queues and the proxy); the rest waits in the writers' own buffers.
    const held = proxy.inFlight();
    const inWriters = c.socket.writableLength + t.socket.writableLength;
    assert.ok(held > 0, "inFlight() sees nothing during the partition");
    const unaccounted = up.length + down.length - (held + inWriters);
    assert.ok(unaccounted <= 0 && unaccounted > -2 * 65536, `inFlight() ${held} + what the writers still hold ${inWriters} ≠ what they wrote, ${up.length + down.length}`);

    proxy.heal();
    await until(() => t.ended && total(c.data) === down.length, "the held bytes and the FIN", 10_000);
    assert.ok(target.received().equals(Buffer.concat([Buffer.from("before"), up])), "upward bytes lost, changed or reordered");
    assert.ok(Buffer.concat(c.data).equals(down), "downward bytes lost, changed or reordered");
    assert.equal(proxy.inFlight(), 0, "inFlight() after everything arrived");
  });

  it("accepts a connection made during a partition but reaches the target only at heal()", { timeout: 10_000 }, async () => {
    const { target, proxy } = await setup();
    proxy.stall();
    const c = await client(proxy);
    c.socket.write("hello through the partition");
    await pause(300);
    assert.equal(target.conns.length, 0, "the target saw a connection during the partition");
    assert.equal(proxy.stats.open, 1);
    proxy.heal();
    await until(() => target.received().toString() === "hello through the partition", "the held greeting");
    target.conns[0]!.socket.write("reply");
    await until(() => Buffer.concat(c.data).toString() === "reply", "the reply");
  });

  it("drop() resets every connection on both sides and keeps serving new ones", { timeout: 10_000 }, async () => {
    const { target, proxy } = await setup();
    const a = await client(proxy);
    const b = await client(proxy);
    a.socket.write("a");
    b.socket.write("b");
    await until(() => target.conns.length === 2 && target.received(0).length === 1 && target.received(1).length === 1, "both connections");
    proxy.drop();
    await until(() => a.closed && b.closed && target.conns.every((t) => t.socket.destroyed), "every socket to close");
    for (const x of [a, b, ...target.conns]) assert.equal(x.error, "ECONNRESET", "an abrupt close (RST) on every side");
    await until(() => proxy.stats.open === 0, "the proxy to forget them");

    const later = await client(proxy);
    later.socket.write("again");
    await until(() => target.conns.length === 3 && target.received(2).toString() === "again", "a new connection after drop()");
  });

  it("a target that refuses the connection resets the client", { timeout: 10_000 }, async () => {
    const { target, proxy } = await setup();
    await target.close();
    const c = await client(proxy);
    await until(() => c.closed, "the client to be closed");
    assert.equal(c.error, "ECONNRESET");
  });

  it("an RST from one side reaches the other after the bytes sent before it", { timeout: 10_000 }, async () => {
    const { target, proxy } = await setup();
    const c = await client(proxy);
    c.socket.write("x");
    await until(() => target.conns.length === 1 && target.received().length === 1, "the connection");
    proxy.stall();
    target.conns[0]!.socket.write("last words");
    await pause(50);
    target.conns[0]!.socket.resetAndDestroy();
    await pause(200);
    assert.equal(c.closed, false, "the RST crossed the partition");
    proxy.heal();
    // libuv reports an RST that follows data as end-of-stream when the read that got the
    // data came up short (it never reads again to see ECONNRESET), so when the client sees
    // an "end", writing tells an RST (EPIPE) from a FIN (the write would go through).
    await until(() => c.ended || c.error !== null, "the bytes and the reset");
    assert.equal(Buffer.concat(c.data).toString(), "last words");
    if (c.error === null) c.socket.write("anyone there?");
    await until(() => c.error !== null, "the client's socket to fail (it was reset)");
    assert.match(c.error!, /^(ECONNRESET|EPIPE)$/);
  });

  it("sinkOnFailure: when one side dies its peer gets a FIN, not an RST, and everything the peer still sends reaches the tap", { timeout: 10_000 }, async () => {
    const target = await Target.start();
    cleanups.push(() => target.close());
    const tapped = new Map<number, Buffer[]>();
    const proxy = await FaultProxy.start({
      target: target.address,
      sinkOnFailure: true,
      tap: (conn, direction, chunk) => {
        if (direction !== "up") return;
        if (!tapped.has(conn)) tapped.set(conn, []);
        tapped.get(conn)!.push(chunk);
      },
    });
    cleanups.push(() => proxy.close());
    const after = randomBytes(1 << 20);

    // The target resets the connection (a process killed with unread bytes does).
    const a = await client(proxy);
    a.socket.write("x");
    await until(() => target.conns.length === 1 && target.received(0).length === 1, "the first connection");
    target.conns[0]!.socket.write("last words");
    await pause(50);
    target.conns[0]!.socket.resetAndDestroy();
    await until(() => a.ended, "the client to see a FIN");
    assert.equal(Buffer.concat(a.data).toString(), "last words");
    a.socket.end(after);
    await until(() => a.closed, "the proxy to close the drained client");
    assert.equal(a.error, null, "the client was reset");
    assert.ok(Buffer.concat(tapped.get(1)!).equals(Buffer.concat([Buffer.from("x"), after])), "the tap missed bytes the client sent after the target died");

    // The target closes (FIN), and the client's next bytes make its kernel answer with an
    // RST: the proxy's write to it fails.
    const b = await client(proxy);
    b.socket.write("y");
    await until(() => target.conns.length === 2 && target.received(1).length === 1, "the second connection");
    target.conns[1]!.socket.destroy();
    await until(() => b.ended, "the client to see the target's FIN");
    for (let i = 0; i < after.length; i += 65536) {
      b.socket.write(after.subarray(i, i + 65536));
      await pause(5);
    }
    b.socket.end();
    await until(() => b.closed, "the proxy to close the drained client");
    assert.equal(b.error, null, "the client was reset");
    assert.ok(Buffer.concat(tapped.get(2)!).equals(Buffer.concat([Buffer.from("y"), after])), "the tap missed bytes the client sent after the target died");
    await until(() => proxy.stats.open === 0, "the proxy to forget both connections");
  });

  it("delay(ms) holds each chunk that long, in order", { timeout: 10_000 }, async () => {
    const { target, proxy } = await setup();
    proxy.delay(200);
    const c = await client(proxy);
    const sent = performance.now();
    c.socket.write("one");
    await pause(20);
    c.socket.write("two");
    await until(() => target.received().toString() === "onetwo", "the delayed bytes");
    const took = performance.now() - sent;
    assert.ok(took >= 215, `arrived after ${took.toFixed(0)} ms, not ≥ 200 ms after the second write`);
    proxy.delay(0);
    const t0 = performance.now();
    c.socket.write("three");
    await until(() => target.received().toString() === "onetwothree", "the undelayed bytes");
    assert.ok(performance.now() - t0 < 150, "delay(0) still delays");
  });

  it("after close() nothing of the proxy keeps the process alive, whatever was open, stalled or delayed", { timeout: 20_000 }, () => {
    const helper = path.join(__dirname, "helpers", "fault-proxy.ts");
    const script = `
      const net = require("node:net");
      const { FaultProxy } = require(${JSON.stringify(helper)});
      (async () => {
        const target = net.createServer((s) => { s.on("error", () => {}); s.write("hi"); });
        await new Promise((r) => target.listen(0, "127.0.0.1", r));
        const proxy = await FaultProxy.start({ target: { host: "127.0.0.1", port: target.address().port } });
        const clients = [];
        const open = () => new Promise((r) => { const s = net.connect(proxy.port, "127.0.0.1", () => r(s)); s.on("error", () => {}); clients.push(s); });
        await open();
        await new Promise((r) => setTimeout(r, 100));
        proxy.delay(5000);
        (await open()).write("delayed");
        proxy.stall();
        (await open()).write("stalled");
        await proxy.close();
        // Only our own test sockets and the target remain; close them, and the process
        // must exit by itself.
        for (const s of clients) s.destroy();
        target.close();
        setTimeout(() => { console.log("still alive"); process.exit(3); }, 5000).unref();
      })();
    `;
    const run = spawnSync(process.execPath, ["--import", "tsx", "-e", script], { encoding: "utf8", timeout: 15_000 });
    assert.equal(run.error, undefined, `the child did not exit by itself: ${run.error?.message}`);
    assert.equal(run.stdout.trim(), "", run.stdout);
    assert.equal(run.status, 0, `exit ${run.status} ${run.signal ?? ""}\n${run.stderr}`);
  });
});
