// Sends are accepted in JS and handed to Rust in batches, and received messages come out of
// one buffer per batch (see index.js). What a user can observe must not change: a message
// is fixed when send() is called, nothing accepted is lost or reordered, the high-water mark
// holds exactly, and a received message stays intact however long it is kept.

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import type { PullOptions, PushOptions } from "zeropipe";
import { bindAddress, connectedPair, receiveN, trackSockets, within, type Proto } from "./helpers/sockets";

const T = { timeout: 30_000 };
const { push, pull } = trackSockets();
const pair = (proto: Proto, pushOpts: PushOptions = {}, pullOpts: PullOptions = {}) =>
  connectedPair(proto, pushOpts, pullOpts, { push, pull });

/** A deterministic byte pattern, so a frame shifted or overwritten by another shows. */
function pattern(len: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(len);
  for (let i = 0; i < len; i++) b[i] = (seed * 31 + i * 7) & 0xff;
  return b;
}

for (const proto of ["tcp", "ipc", "inproc"] as const) {
  describe(`batched sends and receives over ${proto}`, () => {
    it("a buffer reused right after send() still sends what it held at the call", T, async () => {
      const [p, q] = await pair(proto);
      const buf = Buffer.alloc(16);
      const N = 2000;
      // Half awaited, half not: neither kind may see a later write.
      for (let i = 0; i < N; i++) {
        buf.writeUInt32LE(i, 0);
        buf.fill(i & 0xff, 4);
        const sent = p.send(buf);
        if (i % 2 === 0) await sent;
      }
      const got = await receiveN(q, N);
      got.forEach((m, i) => {
        assert.equal(m[0].readUInt32LE(0), i, `message ${i}`);
        assert.ok(m[0].subarray(4).every((x) => x === (i & 0xff)), `message ${i} body`);
      });
    });

    it("a reused buffer sent as frames of a message too big for one batch keeps what it held", T, async () => {
      const [p, q] = await pair(proto);
      await within(p.send("warm-up"), 5_000, "warm-up");
      await receiveN(q, 1);
      const parts = Buffer.alloc(20_000);
      for (let i = 0; i < 20; i++) {
        parts.fill(i);
        void p.send(Array.from({ length: 9 }, () => parts));
      }
      parts.fill(0xff);
      const got = await receiveN(q, 20);
      got.forEach((m, i) => assert.ok(m.every((f) => f.every((x) => x === i)), `message ${i} as it was at send()`));
    });

    it("a buffer reused while its send waits for a peer still sends what it held at the call", T, async () => {
      const p = push();
      await p.bind(bindAddress(proto));
      // No peer yet, so every one of these waits in the send queue.
      const buf = Buffer.alloc(8);
      const parts = Buffer.alloc(20_000);
      const sends: Promise<void>[] = [];
      for (let i = 0; i < 50; i++) {
        buf.fill(i);
        parts.fill(i);
        // Nine 20 000-byte frames: more than one batch buffer, the path that keeps copies.
        sends.push(p.send([buf, ...Array.from({ length: 9 }, () => parts)]));
      }
      buf.fill(0xff);
      parts.fill(0xff);
      const q = pull();
      q.connect(p.lastEndpoint!);
      await within(Promise.all(sends), 15_000, "waiting sends resolved");
      const got = await receiveN(q, 50);
      got.forEach((m, i) => {
        assert.ok(m.every((f) => f.every((x) => x === i)), `message ${i} as it was at send()`);
      });
    });

    it("strings, small, empty and large frames, multipart and oversized messages keep their bytes and order", T, async () => {
      const [p, q] = await pair(proto);
      const sent: Buffer[][] = [];
      const calls: Promise<void>[] = [];
      for (let i = 0; i < 300; i++) {
        let msg: (string | Buffer)[];
        switch (i % 6) {
          case 0:
            msg = [`ünïcode ${i} ✓`];
            break;
          case 1:
            msg = [pattern(i % 50, i)];
            break;
          case 2:
            // Large frames travel by reference next to small ones copied into the batch.
            msg = [pattern(10, i), pattern(70_000, i), Buffer.alloc(0), `t${i}`];
            break;
          case 3:
            // Small frames adding up to more than one batch buffer (64 KiB).
            msg = Array.from({ length: 9 }, (_, k) => pattern(9_000, i + k));
            break;
          case 4:
            // A string too long to stage as UTF-8.
            msg = ["é".repeat(20_000 + i)];
            break;
          default:
            msg = [Buffer.alloc(0)];
        }
        sent.push(msg.map((f) => (typeof f === "string" ? Buffer.from(f) : Buffer.from(f))));
        calls.push(p.send(msg));
      }
      await within(Promise.all(calls), 15_000, "all sends resolved");
      const got = await receiveN(q, sent.length);
      got.forEach((m, i) => {
        assert.equal(m.length, sent[i].length, `message ${i} frame count`);
        m.forEach((f, k) => assert.ok(f.equals(sent[i][k]), `message ${i} frame ${k}`));
      });
    });

    it("received messages stay intact while later batches arrive", T, async () => {
      const [p, q] = await pair(proto);
      const N = 3000;
      const kept: Buffer[][] = [];
      const consumer = (async () => {
        for await (const m of q) {
          kept.push(m);
          if (kept.length === N) break;
        }
      })();
      for (let i = 0; i < N; i++) await p.send([pattern(1 + (i % 300), i), String(i)]);
      await within(consumer, 15_000, "all messages received");
      kept.forEach((m, i) => {
        assert.ok(m[0].equals(pattern(1 + (i % 300), i)), `message ${i} first frame`);
        assert.equal(m[1].toString(), String(i));
      });
    });

    it("close() delivers messages whose send() resolved but had not yet left JS", T, async () => {
      const [p, q] = await pair(proto);
      await within(p.send("warm-up"), 5_000, "warm-up");
      assert.equal((await receiveN(q, 1))[0][0].toString(), "warm-up");
      // Not awaited, and closed in the same tick: nothing has crossed into Rust yet.
      for (let i = 0; i < 50; i++) void p.send(`last ${i}`);
      await within(p.close(), 10_000, "close with linger");
      const got = await receiveN(q, 50);
      assert.deepEqual(
        got.map((m) => m[0].toString()),
        Array.from({ length: 50 }, (_, i) => `last ${i}`),
      );
    });
  });
}

describe("the high-water mark while sends are batched", () => {
  it("accepts exactly the joint inproc mark, then refuses without losing anything", T, async () => {
    // inproc's one queue holds both marks (libzmq sums them): exactly 7 + 5 messages fit.
    const [p, q] = await pair("inproc", { sendHighWaterMark: 7, sendTimeout: 0 }, { receiveHighWaterMark: 5 });
    let accepted = 0;
    for (;;) {
      try {
        await p.send(String(accepted));
        accepted++;
      } catch (err) {
        assert.equal((err as NodeJS.ErrnoException).code, "EAGAIN");
        break;
      }
      assert.ok(accepted <= 12, `accepted ${accepted} messages past the mark of 12`);
    }
    assert.equal(accepted, 12);
    assert.equal(p.writable, false);
    const got = await receiveN(q, 12);
    assert.deepEqual(
      got.map((m) => m[0].toString()),
      Array.from({ length: 12 }, (_, i) => String(i)),
    );
  });

  it("accepts nothing while there is no peer, however many sends were accepted before", T, async () => {
    const p = push({ sendHighWaterMark: 1000, sendTimeout: 0 });
    await assert.rejects(p.send("x"), (err: NodeJS.ErrnoException) => err.code === "EAGAIN");
    assert.equal(p.writable, false);
  });
});
