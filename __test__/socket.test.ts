// Push/Pull behaviour over every transport: delivery, bind/connect topologies, round-robin
// and fair-queueing, endpoints, readiness, options and high-water-mark backpressure.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import * as net from "node:net";
import { describe, it } from "node:test";

import { Pull, Push, type PullOptions, type PushOptions } from "zeropipe";
import { bindAddress, bindFresh, freePort, receiveN, trackSockets, waitFor, within, type Proto } from "./helpers/sockets";


// Generous: the machine is small and other builds may be running.
const T = { timeout: 30_000 };

const { push, pull } = trackSockets();

/** An address known before anyone binds it. */
async function fixedAddress(proto: Proto): Promise<string> {
  if (proto === "tcp") return `tcp://127.0.0.1:${await freePort()}`;
  return bindAddress(proto);
}

const text = (msg: Buffer[]) => msg.map((f) => f.toString());

async function rejectsWithCode(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (err: NodeJS.ErrnoException) => {
    assert.equal(err.code, code, `expected ${code}, got ${err.code}: ${err.message}`);
    return true;
  });
}

for (const proto of ["tcp", "ipc", "inproc"] as const) {
  describe(`over ${proto}`, () => {
    /** A connected pair, Push bound and Pull connected. */
    async function pair(pushOpts?: PushOptions, pullOpts?: PullOptions): Promise<[Push, Pull]> {
      const p = push(pushOpts);
      const q = pull(pullOpts);
      q.connect(await bindFresh(p, proto));
      return [p, q];
    }

    describe("delivery", () => {
      it("delivers single-frame messages intact and in order", T, async () => {
        const [p, q] = await pair();
        for (let i = 0; i < 200; i++) await p.send(`message ${i}`);
        const got = await receiveN(q, 200);
        assert.deepEqual(
          got.map(text),
          Array.from({ length: 200 }, (_, i) => [`message ${i}`]),
        );
      });

      it("delivers multipart messages with empty frames intact", T, async () => {
        const [p, q] = await pair();
        const everyByte = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
        await p.send(["head", null, everyByte, Buffer.alloc(0), "tail"]);
        await p.send([null]);
        await p.send("");
        await p.send([null, null, null]);
        const [a, b, c, d] = await receiveN(q, 4);
        assert.deepEqual(a, [Buffer.from("head"), Buffer.alloc(0), everyByte, Buffer.alloc(0), Buffer.from("tail")]);
        assert.deepEqual(b, [Buffer.alloc(0)]);
        assert.deepEqual(c, [Buffer.alloc(0)]);
        assert.deepEqual(d, [Buffer.alloc(0), Buffer.alloc(0), Buffer.alloc(0)]);
      });

      it("delivers a message of 1000 frames intact", T, async () => {
        const [p, q] = await pair();
        const frames = Array.from({ length: 1000 }, (_, i) => `frame ${i}`);
        await p.send(frames);
        await p.send("after");
        const [big, after] = await receiveN(q, 2);
        assert.deepEqual(text(big), frames);
        assert.deepEqual(text(after), ["after"]);
      });

      it("delivers a 4 MiB frame intact, and the messages around it in order", T, async () => {
        const [p, q] = await pair();
        const blob = randomBytes(4 * 1024 * 1024);
        await p.send("before");
        await p.send(["big", blob]);
        await p.send("after");
        const [before, big, after] = await receiveN(q, 3);
        assert.deepEqual(text(before), ["before"]);
        assert.equal(big.length, 2);
        assert.equal(big[0].toString(), "big");
        assert.equal(big[1].length, blob.length);
        assert.ok(big[1].equals(blob), "4 MiB frame arrives byte for byte");
        assert.deepEqual(text(after), ["after"]);
      });
    });

    describe("bind and connect", () => {
      for (const binder of ["push", "pull"] as const) {
        for (const order of ["bind first", "connect first"] as const) {
          const other = binder === "push" ? "PULL" : "PUSH";
          it(`delivers when ${binder.toUpperCase()} binds and ${other} connects (${order})`, T, async () => {
            const p = push();
            const q = pull();
            const [bindSock, connectSock] = binder === "push" ? [p, q] : [q, p];
            let address: string;
            if (order === "bind first") {
              address = await bindFresh(bindSock, proto);
              connectSock.connect(address);
            } else {
              address = await fixedAddress(proto);
              connectSock.connect(address);
              // A Push connecting early may already queue; the message waits for the peer.
              if (binder === "pull") await p.send("queued before bind");
              await bindSock.bind(address);
              if (binder === "push") await p.send("queued before bind");
            }
            await p.send(["after", "bind"]);
            const msgs = await receiveN(q, order === "connect first" ? 2 : 1);
            const expected = order === "connect first" ? [["queued before bind"], ["after", "bind"]] : [["after", "bind"]];
            assert.deepEqual(msgs.map(text), expected);
          });
        }
      }

      it("unbind frees the address: new connections reach the socket that binds it next", T, async () => {
        const oldPull = pull({ receiveTimeout: 0 });
        const address = await bindFresh(oldPull, proto);
        const p1 = push();
        p1.connect(address);
        await p1.send("to the old pull");
        assert.deepEqual(text(await within(waitReceive(oldPull), 10_000, "first message")), ["to the old pull"]);

        await oldPull.unbind(address);
        if (proto === "tcp") {
          await assert.rejects(rawConnect(address), (err: NodeJS.ErrnoException) => err.code === "ECONNREFUSED");
        }
        // If the old socket still held the address, this bind would fail with EADDRINUSE.
        const newPull = pull();
        await newPull.bind(address);
        const p2 = push();
        p2.connect(address);
        await p2.send("to the new pull");
        assert.deepEqual(text(await within(newPull.receive(), 10_000, "message to the new pull")), ["to the new pull"]);
        assert.equal(oldPull.readable, false);
        await rejectsWithCode(oldPull.receive(), "EAGAIN");
      });

      it("close releases the address at once: another socket can bind it", T, async () => {
        // Repeated because the failure this guards against (a listener still open for a
        // moment after close() resolved) shows up only now and then.
        for (let i = 0; i < 20; i++) {
          const first = pull();
          const address = await bindFresh(first, proto);
          await first.close();
          const second = pull();
          await second.bind(address);
          const p = push();
          p.connect(address);
          await p.send(`round ${i}`);
          assert.deepEqual(text(await within(second.receive(), 10_000, "message to the rebound socket")), [`round ${i}`]);
          await Promise.all([second.close(), p.close()]);
        }
      });

      it("disconnect stops delivery to that peer; the others get everything", T, async () => {
        const a = pull();
        const b = pull();
        const addrA = await bindFresh(a, proto);
        const addrB = await bindFresh(b, proto);
        const p = push();
        p.connect(addrA);
        p.connect(addrB);
        // One message each proves both connections carry traffic before the disconnect.
        await p.send("one");
        await p.send("two");
        const first = [...(await receiveN(a, 1)), ...(await receiveN(b, 1))].map(text).flat().sort();
        assert.deepEqual(first, ["one", "two"]);

        p.disconnect(addrA);
        for (let i = 0; i < 6; i++) await p.send(`after ${i}`);
        const rest = await receiveN(b, 6);
        assert.deepEqual(
          rest.map(text),
          Array.from({ length: 6 }, (_, i) => [`after ${i}`]),
        );
        assert.equal(a.readable, false, "nothing reached the disconnected peer");
      });
    });

    describe("distribution", () => {
      it("round-robins one Push's messages over two Pulls, alternating", T, async () => {
        const a = pull();
        const b = pull();
        const p = push();
        p.connect(await bindFresh(a, proto));
        p.connect(await bindFresh(b, proto));
        for (let i = 0; i < 20; i++) await p.send(String(i));
        const gotA = (await receiveN(a, 10)).map((m) => Number(m[0].toString()));
        const gotB = (await receiveN(b, 10)).map((m) => Number(m[0].toString()));
        const evens = Array.from({ length: 10 }, (_, i) => 2 * i);
        const odds = evens.map((n) => n + 1);
        // Which peer gets the first message is not specified; strict alternation is.
        if (gotA[0] === 0) {
          assert.deepEqual(gotA, evens);
          assert.deepEqual(gotB, odds);
        } else {
          assert.deepEqual(gotA, odds);
          assert.deepEqual(gotB, evens);
        }
      });

      it("fair-queues two Pushes into one Pull, interleaving once both have messages queued", T, async () => {
        const q = pull();
        const address = await bindFresh(q, proto);
        const pa = push();
        const pb = push();
        const disconnects = new Promise<void>((resolve) => {
          let n = 0;
          q.events.on("disconnect", () => {
            if (++n === 2) resolve();
          });
        });
        pa.connect(address);
        pb.connect(address);
        for (let i = 0; i < 8; i++) await pa.send(`a${i}`);
        for (let i = 0; i < 8; i++) await pb.send(`b${i}`);
        if (proto !== "inproc") {
          // Over a connection, a peer's disconnect is seen only after everything it sent
          // was read into the Pull's queue: then both queues are full for certain.
          await within(Promise.all([pa.close(), pb.close()]), 10_000, "pushes flushed");
          await within(disconnects, 10_000, "both disconnects seen by the Pull");
        }
        // (inproc: a resolved send is already in the Pull's queue.)
        const got = (await receiveN(q, 16)).map((m) => m[0].toString());
        const first = got[0][0];
        const second = first === "a" ? "b" : "a";
        assert.deepEqual(
          got,
          Array.from({ length: 16 }, (_, i) => `${i % 2 === 0 ? first : second}${Math.floor(i / 2)}`),
        );
      });
    });

    describe("endpoints and state", () => {
      it("for await over a Pull ends cleanly when the socket is closed", T, async () => {
        const [p, q] = await pair();
        const seen: string[] = [];
        let sawThree!: () => void;
        const three = new Promise<void>((r) => (sawThree = r));
        const loop = (async () => {
          for await (const [msg] of q) {
            seen.push(msg.toString());
            if (seen.length === 3) sawThree();
          }
          return "ended";
        })();
        await p.send("x");
        await p.send("y");
        await p.send("z");
        await within(three, 10_000, "three messages through for await");
        await q.close();
        assert.equal(await within(loop, 10_000, "loop end"), "ended");
        assert.deepEqual(seen, ["x", "y", "z"]);
      });

      it("readable and writable reflect the socket's state", T, async () => {
        // sendTimeout: a send that fails has waited this long with no room at all, so the
        // Push really is full (not just waiting for its I/O thread to catch up).
        const p = push({ sendHighWaterMark: 1, sendTimeout: 200 });
        const q = pull({ receiveHighWaterMark: 1 });
        assert.equal(p.writable, false, "no peer yet: nowhere to queue");
        assert.equal(q.readable, false);
        const address = await bindFresh(q, proto);
        p.connect(address);
        await waitFor(() => p.writable, 10_000, "Push writable once it has a peer");
        await p.send("first");
        await waitFor(() => q.readable, 10_000, "Pull readable once a message arrived");
        assert.deepEqual(text(await q.receive()), ["first"]);
        assert.equal(q.readable, false, "nothing left after receiving the only message");

        // With tiny marks and nobody reading, the Push fills up and says so.
        const payload = Buffer.alloc(64 * 1024);
        let accepted = 0;
        for (;;) {
          try {
            await p.send(payload);
            accepted++;
          } catch (err) {
            assert.equal((err as NodeJS.ErrnoException).code, "EAGAIN");
            break;
          }
          if (accepted > 5000) assert.fail("the Push never became full");
        }
        assert.equal(p.writable, false, "full Push is not writable");
        assert.equal(q.readable, true, "full Pull is readable");
        await receiveN(q, accepted);
        await waitFor(() => p.writable, 10_000, "Push writable again after the Pull read everything");

        await p.close();
        await q.close();
        assert.equal(p.writable, false, "closed Push is not writable");
        assert.equal(q.readable, false, "closed Pull is not readable");
        assert.equal(p.closed, true);
        assert.equal(q.closed, true);
      });
    });
  });
}

/** Receives, waiting for the message to arrive even on a `receiveTimeout: 0` socket. */
async function waitReceive(sock: Pull): Promise<Buffer[]> {
  await waitFor(() => sock.readable, 10_000, "a message to arrive");
  return sock.receive();
}

function rawConnect(address: string): Promise<void> {
  const url = new URL(address);
  return new Promise((resolve, reject) => {
    const c = net.connect(Number(url.port), url.hostname);
    c.once("connect", () => {
      c.destroy();
      resolve();
    });
    c.once("error", reject);
  });
}

describe("lastEndpoint", () => {
  it("is null before any bind", () => {
    assert.equal(push().lastEndpoint, null);
    assert.equal(pull().lastEndpoint, null);
  });

  for (const wildcard of ["tcp://127.0.0.1:*", "tcp://*:0", "tcp://127.0.0.1:0"]) {
    it(`after binding ${wildcard} is the real, connectable address`, T, async () => {
      const q = pull();
      await q.bind(wildcard);
      const ep = q.lastEndpoint!;
      const host = wildcard.includes("*:") ? "0\\.0\\.0\\.0" : "127\\.0\\.0\\.1";
      const m = new RegExp(`^tcp://${host}:(\\d+)$`).exec(ep);
      assert.ok(m, `lastEndpoint ${ep} names the host and a real port`);
      assert.ok(Number(m[1]) > 0 && Number(m[1]) < 65536);
      // (0.0.0.0 as a connect destination means this machine: still loopback traffic.)
      const p = push();
      p.connect(ep);
      await p.send("via lastEndpoint");
      assert.deepEqual(text(await within(q.receive(), 10_000, "message via lastEndpoint")), ["via lastEndpoint"]);
    });
  }

  it("after binding ipc://* is a fresh socket path that peers can connect to", T, async () => {
    const q = pull();
    await q.bind("ipc://*");
    const ep = q.lastEndpoint!;
    assert.match(ep, /^ipc:\/\/\/.+/);
    assert.notEqual(ep, "ipc://*");
    assert.ok(existsSync(ep.slice("ipc://".length)), `${ep} exists on disk`);
    const p = push();
    p.connect(ep);
    await p.send("via ipc wildcard");
    assert.deepEqual(text(await within(q.receive(), 10_000, "message via ipc://*")), ["via ipc wildcard"]);
  });

  it("names the last of several binds", T, async () => {
    const q = pull();
    await q.bind("tcp://127.0.0.1:*");
    const first = q.lastEndpoint;
    const name = `inproc://last-endpoint-${process.pid}`;
    await q.bind(name);
    assert.equal(q.lastEndpoint, name);
    assert.notEqual(first, name);
  });
});

describe("options", () => {
  // The defaults documented in index.d.ts.
  const common = {
    linger: 30000,
    immediate: false,
    reconnectInterval: 100,
    reconnectMaxInterval: 0,
    maxMessageSize: 268435456,
    handshakeInterval: 30000,
    heartbeatInterval: 0,
    heartbeatTimeout: 0,
    heartbeatTimeToLive: 0,
    connectTimeout: 0,
  };

  it("Push has the documented defaults", () => {
    const p = push();
    for (const [name, value] of Object.entries({ ...common, sendHighWaterMark: 1000, sendTimeout: -1 })) {
      assert.equal((p as any)[name], value, name);
    }
  });

  it("Pull has the documented defaults", () => {
    const q = pull();
    for (const [name, value] of Object.entries({ ...common, receiveHighWaterMark: 1000, receiveTimeout: -1 })) {
      assert.equal((q as any)[name], value, name);
    }
  });

  it("takes options from the constructor and reads them back as properties", () => {
    const p = push({ sendHighWaterMark: 7, sendTimeout: 250, linger: 0, immediate: true, reconnectInterval: 20 });
    assert.equal(p.sendHighWaterMark, 7);
    assert.equal(p.sendTimeout, 250);
    assert.equal(p.linger, 0);
    assert.equal(p.immediate, true);
    assert.equal(p.reconnectInterval, 20);
    assert.equal(p.handshakeInterval, 30000, "unspecified options keep their defaults");
    const q = pull({ receiveHighWaterMark: 3, receiveTimeout: 0, maxMessageSize: -1, heartbeatInterval: 500 });
    assert.equal(q.receiveHighWaterMark, 3);
    assert.equal(q.receiveTimeout, 0);
    assert.equal(q.maxMessageSize, -1);
    assert.equal(q.heartbeatInterval, 500);
  });

  it("options set as properties read back and take effect", T, async () => {
    const q = pull();
    q.receiveTimeout = 50;
    assert.equal(q.receiveTimeout, 50);
    // No peer: the new timeout is what ends the wait.
    await rejectsWithCode(within(q.receive(), 10_000, "receive with receiveTimeout 50"), "EAGAIN");

    const p = push();
    p.sendTimeout = 0;
    assert.equal(p.sendTimeout, 0);
    await rejectsWithCode(p.send("nowhere to go"), "EAGAIN");
    p.linger = 5;
    assert.equal(p.linger, 5);
  });
});

for (const proto of ["tcp", "ipc", "inproc"] as const) {
  describe(`timeouts and backpressure over ${proto}`, () => {
    it("receiveTimeout rejects with EAGAIN when nothing arrives, and the socket still works after", T, async () => {
      const p = push();
      const q = pull({ receiveTimeout: 100 });
      q.connect(await bindFresh(p, proto));
      await rejectsWithCode(within(q.receive(), 10_000, "timed-out receive"), "EAGAIN");
      await p.send("later");
      assert.deepEqual(text(await within(q.receive(), 10_000, "message after a timeout")), ["later"]);
    });

    it("receiveTimeout 0 rejects with EAGAIN at once when nothing is queued", T, async () => {
      const q = pull({ receiveTimeout: 0 });
      await bindFresh(q, proto);
      await rejectsWithCode(q.receive(), "EAGAIN");
    });

    it("send rejects with EAGAIN after sendTimeout once the high-water marks are full, losing nothing it accepted", T, async () => {
      const p = push({ sendHighWaterMark: 2, sendTimeout: 300 });
      const q = pull({ receiveHighWaterMark: 2 });
      q.connect(await bindFresh(p, proto));
      // Big frames fill the kernel's socket buffers quickly over tcp/ipc.
      const payload = Buffer.alloc(64 * 1024, 0x5a);
      let accepted = 0;
      let rejection: NodeJS.ErrnoException | undefined;
      while (accepted < 5000) {
        try {
          await p.send([String(accepted), payload]);
          accepted++;
        } catch (err) {
          rejection = err as NodeJS.ErrnoException;
          break;
        }
      }
      assert.ok(rejection, `send never rejected after ${accepted} accepted messages`);
      assert.equal(rejection.code, "EAGAIN");
      assert.ok(accepted >= 2, `at least the high-water mark was accepted (got ${accepted})`);

      const receiving = receiveN(q, accepted + 1);
      await p.send(["sentinel", payload]);
      const got = await receiving;
      for (let i = 0; i < accepted; i++) {
        assert.equal(got[i][0].toString(), String(i), `message ${i} in order`);
        assert.ok(got[i][1].equals(payload), `message ${i} intact`);
      }
      // The rejected message was not queued: the sentinel comes right after the accepted ones.
      assert.equal(got[accepted][0].toString(), "sentinel");
    });

    it("many concurrent un-awaited sends resolve in call order and arrive in order", T, async () => {
      const p = push({ sendHighWaterMark: 5 });
      const q = pull({ receiveHighWaterMark: 5 });
      const address = await bindFresh(p, proto);
      const N = 500;
      const resolved: number[] = [];
      // No peer yet: every send has to wait, so the queue is exercised from the start.
      const sends = Array.from({ length: N }, (_, i) => p.send(`m${i}`).then(() => resolved.push(i)));
      await new Promise((r) => setImmediate(r));
      assert.equal(resolved.length, 0, "nothing resolves before there is a peer");
      assert.equal(p.writable, false, "a Push with waiting sends is not writable");
      q.connect(address);
      const got = await receiveN(q, N);
      await within(Promise.all(sends), 10_000, "all sends resolved");
      assert.deepEqual(resolved, Array.from({ length: N }, (_, i) => i));
      assert.deepEqual(
        got.map((m) => m[0].toString()),
        Array.from({ length: N }, (_, i) => `m${i}`),
      );
    });
  });
}
