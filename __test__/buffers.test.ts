// A JS program's own buffers can do anything after send() returns — be reused, detached by
// transferring them to a worker, or freed with their thread — and received messages can be
// transferred or shared like any Buffer: none of it may crash, corrupt another message, leak
// other memory, or stop a socket.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MessageChannel, Worker } from "node:worker_threads";
import { once } from "node:events";
import * as v8 from "node:v8";
import * as vm from "node:vm";

import { bindFresh, PROTOS, receiveN, trackSockets, within } from "./helpers/sockets";

const T = { timeout: 30_000 };

v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;

/** Detaches `buf`'s ArrayBuffer the way an application would: by transferring it. */
function detach(buf: Uint8Array): void {
  const { port1, port2 } = new MessageChannel();
  port1.postMessage(buf, [buf.buffer as ArrayBuffer]);
  port1.close();
  port2.close();
  assert.equal(buf.byteLength, 0, "the buffer is detached");
}

/** Tries to transfer `buf`: true if it went (the buffer is then detached), false if refused. */
function tryTransfer(buf: Buffer): boolean {
  const { port1, port2 } = new MessageChannel();
  try {
    port1.postMessage(buf, [buf.buffer as ArrayBuffer]);
    return true;
  } catch (err) {
    assert.ok(err instanceof Error && /transfer/i.test(err.message), `a clear error: ${String(err)}`);
    return false;
  } finally {
    port1.close();
    port2.close();
  }
}

const pattern = (size: number, seed: number) => {
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
};

for (const proto of PROTOS) {
  describe(`over ${proto}`, () => {
    const { push, pull } = trackSockets();

    it("a large frame whose buffer is detached right after send() arrives intact", T, async () => {
      const q = pull();
      const p = push();
      p.connect(await bindFresh(q, proto));
      const sizes = [64 * 1024, 256 * 1024, 1024 * 1024];
      for (const [i, size] of sizes.entries()) {
        const buf = pattern(size, i);
        const copy = Buffer.from(buf);
        await p.send(["large", buf]);
        detach(buf);
        const [tag, body] = await within(q.receive(), 10_000, `message ${i}`);
        assert.equal(String(tag), "large");
        assert.ok(body!.equals(copy), `${size} bytes intact`);
      }
    });

    it("a frame detached while its send waits for a peer arrives intact once one connects", T, async () => {
      const p = push({ sendHighWaterMark: 1 });
      const q = pull();
      const address = await bindFresh(q, proto);
      await q.close();
      const late = pull();
      p.connect(address);
      // The first fills the only slot; the second waits for room with its buffer held.
      const first = pattern(128 * 1024, 1);
      const second = pattern(128 * 1024, 2);
      const [firstCopy, secondCopy] = [Buffer.from(first), Buffer.from(second)];
      await p.send(first);
      const waiting = p.send(second);
      detach(first);
      detach(second);
      await late.bind(address);
      await within(waiting, 10_000, "the waiting send");
      const got = [await within(late.receive(), 10_000, "first"), await within(late.receive(), 10_000, "second")];
      assert.ok(got[0]![0]!.equals(firstCopy));
      assert.ok(got[1]![0]!.equals(secondCopy));
    });

    it("transferring a received message fails for that call or works, and the socket keeps delivering", T, async () => {
      const q = pull();
      const p = push();
      p.connect(await bindFresh(q, proto));
      for (let i = 0; i < 20; i++) await p.send([`small ${i}`, i % 2 ? pattern(100 * 1024, i) : `tail ${i}`]);
      for (let i = 0; i < 20; i++) {
        const [head, tail] = await within(q.receive(), 10_000, `message ${i}`);
        assert.equal(String(head), `small ${i}`);
        const expected = i % 2 ? pattern(100 * 1024, i) : Buffer.from(`tail ${i}`);
        assert.ok(tail!.equals(expected), `message ${i} intact before the transfer`);
        // The documented idiom to hand bytes to a worker, tried on both frames.
        tryTransfer(head!);
        // Transferred (this copy is then detached), copied instead (Node does that with
        // buffers it will not detach), or refused: the message is never half-broken.
        const went = tryTransfer(tail!);
        assert.ok(tail!.byteLength === 0 ? went : tail!.equals(expected), `message ${i} after the transfer`);
      }
      // Later messages, in later batches, still arrive whole.
      for (let i = 0; i < 5; i++) await p.send(`after ${i}`);
      for (let i = 0; i < 5; i++) assert.equal(String((await within(q.receive(), 10_000, "after"))[0]), `after ${i}`);
    });

    it("a received message shared with a worker arrives there intact", T, async () => {
      const q = pull();
      const p = push();
      p.connect(await bindFresh(q, proto));
      await p.send(["job", "payload ✓"]);
      const [, payload] = await within(q.receive(), 10_000, "the job");
      const worker = new Worker(
        `require("node:worker_threads").parentPort.once("message", (b) => { require("node:worker_threads").parentPort.postMessage(Buffer.from(b).toString()); });`,
        { eval: true },
      );
      try {
        worker.postMessage(payload);
        const [text] = await within(once(worker, "message"), 10_000, "the worker's reply");
        assert.equal(text, "payload ✓");
      } finally {
        await worker.terminate();
      }
    });

    // A received frame is either copied into a batch's shared slab or handed over as a
    // Buffer of its own over the bytes as read, by size; the sizes straddle both sides of
    // that cut (and of the engine's own-body and the sender's large-frame cuts), all sent
    // before any is read so that they share batches: a wrong offset, a shared backing store
    // or an early free shows up here.
    it("frames of every size around the copy cuts arrive intact, unaliased, and stay so after GC", T, async () => {
      const q = pull({ receiveHighWaterMark: 100 });
      const p = push();
      p.connect(await bindFresh(q, proto));
      const sizes = [0, 1, 4095, 16383, 16384, 16385, 24576, 32767, 32768, 32769, 65535, 65536, 65537];
      const messages = sizes.map((size, i) => [`m${i}`, pattern(size, i), pattern(size % 97, i + 1)]);
      for (const m of messages) await p.send(m);
      const got = await receiveN(q, messages.length);
      for (const [i, m] of got.entries()) {
        assert.equal(m.length, 3, `message ${i}'s frame count`);
        m.forEach((f, j) => {
          const sent = messages[i]![j]!;
          assert.ok(f.equals(typeof sent === "string" ? Buffer.from(sent) : sent), `message ${i} frame ${j} (${f.length} bytes) intact`);
        });
      }
      // Each frame written with a pattern of its own: a frame sharing bytes with another
      // would carry the other's pattern afterwards.
      const own = (i: number, j: number, f: Buffer) => pattern(f.length, 7 * i + j + 3);
      got.forEach((m, i) => m.forEach((f, j) => f.set(own(i, j, f))));
      const check = (when: string) =>
        got.forEach((m, i) => m.forEach((f, j) => assert.ok(f.equals(own(i, j, f)), `message ${i} frame ${j} ${when}`)));
      check("after every frame was written");
      for (let round = 0; round < 3; round++) {
        gc();
        // Churn the heap so freed memory would be reused and show up as corruption.
        Array.from({ length: 32 }, () => Buffer.alloc(1024 * 1024, 0xee));
      }
      check("after GC");
    });
  });
}

describe("memory held for large messages", () => {
  const { push, pull } = trackSockets();

  it("queues 16 MiB of large messages per peer, not the mark's 1 000, and all of them arrive", T, async () => {
    // Each accepted message is a copy (see README, "A queue also counts as full at 16 MiB"):
    // counting messages alone would let 1 000 queued 1 MiB messages hold 1 GiB.
    const q = pull();
    const p = push({ sendTimeout: 0 });
    p.connect(await bindFresh(q, "inproc"));
    const body = pattern(1024 * 1024, 7);
    let accepted = 0;
    for (;;) {
      try {
        await p.send([String(accepted), body]);
        accepted++;
      } catch (err) {
        assert.equal((err as { code?: string }).code, "EAGAIN");
        break;
      }
      assert.ok(accepted <= 64, "sends were never refused: the queue is not bounded by bytes");
    }
    assert.equal(accepted, 16);
    for (let i = 0; i < accepted; i++) {
      const [n, got] = await within(q.receive(), 10_000, `message ${i}`);
      assert.equal(String(n), String(i));
      assert.ok(got!.equals(body));
    }
    // Room again once the PULL took them.
    await p.send(["after", body]);
    assert.equal(String((await within(q.receive(), 10_000, "after"))[0]), "after");
  });
});
