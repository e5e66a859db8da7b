// Every MessageLike kind becomes exactly the bytes it stands for on the wire, and every
// invalid message is refused with a TypeError that says what was given, before anything
// is sent.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as path from "node:path";
import * as v8 from "node:v8";
import { once } from "node:events";
import { Worker } from "node:worker_threads";
import * as vm from "node:vm";

import { Pull, Push, type MessageLike } from "zeropipe";
import { connectedPair } from "./helpers/sockets";

const T = { timeout: 20_000 };

// One tcp pair for the whole file: the frames cross a real connection, and a message left
// over by one test would show up as the wrong first message of the next.
let push: Push;
let pull: Pull;

before(async () => {
  [push, pull] = await connectedPair("tcp", { linger: 0 });
});

after(async () => {
  await Promise.all([push.close(), pull.close()]);
});

function receive(): Promise<Buffer[]> {
  let timer: NodeJS.Timeout;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("timed out waiting for a message")), 10_000);
  });
  return Promise.race([pull.receive(), guard]).finally(() => clearTimeout(timer));
}

/** Sends `message` and returns what the Pull received, frame by frame. */
async function roundTrip(message: MessageLike | MessageLike[]): Promise<Buffer[]> {
  await push.send(message);
  const got = await receive();
  for (const frame of got) assert.ok(Buffer.isBuffer(frame), "every received frame is a Buffer");
  return got;
}

const bytes = (...values: number[]) => Buffer.from(values);

/** The bytes a view covers, and only those. */
const viewBytes = (v: ArrayBufferView) => Buffer.from(v.buffer, v.byteOffset, v.byteLength);

describe("frames round-trip to the expected bytes", () => {
  it("a string as UTF-8, non-ASCII included", T, async () => {
    const s = "héllo wörld ✓ 𝄞 日本語";
    assert.deepEqual(await roundTrip(s), [Buffer.from(s, "utf8")]);
    assert.deepEqual(await roundTrip(""), [Buffer.alloc(0)]);
  });

  it("a Buffer, including one that is a slice of Node's shared pool", T, async () => {
    const b = bytes(0, 1, 2, 254, 255);
    assert.deepEqual(await roundTrip(b), [b]);
    // Small Buffers from Buffer.from(string) live at an offset inside an 8 KiB pool.
    const pooled = Buffer.from("pooled");
    assert.ok(pooled.byteOffset > 0 || pooled.buffer.byteLength > pooled.length, "really a pooled slice");
    assert.deepEqual(await roundTrip(pooled), [Buffer.from("pooled")]);
  });

  it("a Uint8Array", T, async () => {
    const u = new Uint8Array([9, 8, 7, 0, 255]);
    assert.deepEqual(await roundTrip(u), [bytes(9, 8, 7, 0, 255)]);
  });

  it("a Uint16Array as its bytes", T, async () => {
    const u = new Uint16Array([1, 0x0203, 0xffff]);
    const got = await roundTrip(u);
    assert.equal(got[0].length, 6);
    assert.deepEqual(got, [viewBytes(u)]);
    assert.deepEqual([...new Uint16Array(got[0].buffer.slice(got[0].byteOffset, got[0].byteOffset + 6))], [1, 0x0203, 0xffff]);
  });

  it("a Float64Array as its bytes", T, async () => {
    const f = new Float64Array([1.5, -0, Math.PI]);
    const got = await roundTrip(f);
    assert.equal(got[0].length, 24);
    assert.deepEqual(got, [viewBytes(f)]);
    assert.equal(got[0].readDoubleLE(0), 1.5);
    assert.equal(got[0].readDoubleLE(16), Math.PI);
  });

  it("a DataView as the bytes of its window only", T, async () => {
    const ab = new Uint8Array([0, 1, 2, 3, 4, 5, 6, 7]).buffer;
    assert.deepEqual(await roundTrip(new DataView(ab, 2, 3)), [bytes(2, 3, 4)]);
    assert.deepEqual(await roundTrip(new DataView(ab, 8)), [Buffer.alloc(0)]);
  });

  it("a subarray view as the view's bytes only", T, async () => {
    const whole = new Uint8Array([10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
    assert.deepEqual(await roundTrip(whole.subarray(3, 6)), [bytes(13, 14, 15)]);
    const words = new Uint16Array([1, 2, 3, 4]);
    const mid = words.subarray(1, 3);
    assert.deepEqual(await roundTrip(mid), [viewBytes(mid)]);
    assert.equal((await roundTrip(mid))[0].length, 4);
    // A window into a large buffer: the frame sizes and offsets must come from the view.
    const big = new Uint8Array(300 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = i % 251;
    const win = big.subarray(1000, 1000 + 100 * 1024);
    assert.deepEqual(await roundTrip(win), [viewBytes(win)]);
  });

  it("an ArrayBuffer as its bytes", T, async () => {
    const ab = new Uint8Array([5, 4, 3, 2, 1]).buffer;
    assert.deepEqual(await roundTrip(ab), [bytes(5, 4, 3, 2, 1)]);
    assert.deepEqual(await roundTrip(new ArrayBuffer(0)), [Buffer.alloc(0)]);
  });

  it('a SharedArrayBuffer as its bytes, not "[object SharedArrayBuffer]"', T, async () => {
    const sab = new SharedArrayBuffer(4);
    new Uint8Array(sab).set([0xde, 0xad, 0xbe, 0xef]);
    const got = await roundTrip(sab);
    assert.notEqual(got[0].toString(), "[object SharedArrayBuffer]");
    assert.deepEqual(got, [bytes(0xde, 0xad, 0xbe, 0xef)]);
    // A view onto shared memory is a view like any other.
    assert.deepEqual(await roundTrip(new Uint8Array(sab, 1, 2)), [bytes(0xad, 0xbe)]);
  });

  it("buffers made in another realm (a vm context) as their bytes", T, async () => {
    const ab = vm.runInNewContext("new Uint8Array([7, 7, 7]).buffer") as ArrayBuffer;
    assert.ok(!(ab instanceof ArrayBuffer), "really from another realm");
    assert.deepEqual(await roundTrip(ab), [bytes(7, 7, 7)]);
    const view = vm.runInNewContext("new Uint8Array([1, 2, 3, 4]).subarray(1, 3)") as Uint8Array;
    assert.deepEqual(await roundTrip(view), [bytes(2, 3)]);
  });

  it("a number as decimal text", T, async () => {
    assert.deepEqual(await roundTrip(42), [Buffer.from("42")]);
    assert.deepEqual(await roundTrip(1.5), [Buffer.from("1.5")]);
    assert.deepEqual(await roundTrip(-7), [Buffer.from("-7")]);
    assert.deepEqual(await roundTrip(0), [Buffer.from("0")]);
  });

  it("null as an empty frame", T, async () => {
    assert.deepEqual(await roundTrip(null), [Buffer.alloc(0)]);
  });

  it("an array of every kind as one multipart message, frame for frame", T, async () => {
    const sab = new SharedArrayBuffer(2);
    new Uint8Array(sab).set([1, 2]);
    const u16 = new Uint16Array([0x1234]);
    const got = await roundTrip([
      "ü",
      bytes(1),
      new Uint8Array([2, 3]),
      u16,
      new DataView(new Uint8Array([9, 8, 7]).buffer, 1, 1),
      new Uint8Array([4, 5, 6]).subarray(2),
      new Uint8Array([6]).buffer,
      sab,
      42,
      null,
      "",
    ]);
    assert.deepEqual(got, [
      Buffer.from("ü"),
      bytes(1),
      bytes(2, 3),
      viewBytes(u16),
      bytes(8),
      bytes(6),
      bytes(6),
      bytes(1, 2),
      Buffer.from("42"),
      Buffer.alloc(0),
      Buffer.alloc(0),
    ]);
  });
});

describe("invalid messages", () => {
  const cases: [string, unknown, RegExp][] = [
    ["a plain object", { job: 1 }, /a plain object.*JSON\.stringify/s],
    ["undefined", undefined, /undefined/],
    ["a symbol", Symbol("job"), /a symbol/],
    ["a function", () => "job", /a function/],
    ["a BigInt", 10n, /a BigInt/],
    ["a boolean", true, /a boolean/],
    ["an instance of a class", new Map(), /Map/],
    ["an empty array", [], /empty array/],
    ["an array containing a bad element", ["good first frame", { bad: true }, "last"], /a plain object/],
    ["an array containing undefined", [null, undefined], /undefined/],
    ["a nested array", [["a"]], /Array/],
  ];

  for (const [what, value, names] of cases) {
    it(`${what} rejects with a TypeError naming it, and nothing is sent`, T, async () => {
      const result = push.send(value as MessageLike);
      assert.ok(result instanceof Promise, "send reports bad input through its promise");
      await assert.rejects(result, (err: Error) => {
        assert.ok(err instanceof TypeError, `expected a TypeError, got ${err}`);
        assert.match(err.message, names);
        return true;
      });
      // Had any part of the bad message gone out, it would be received before this one.
      const marker = `good after ${what}`;
      assert.deepEqual(await roundTrip(marker), [Buffer.from(marker)]);
    });
  }

  it("a bad message queued behind waiting sends fails alone, leaving the order of the rest", T, async () => {
    const p = new Push({ sendHighWaterMark: 1 });
    const q = new Pull();
    try {
      await q.bind("inproc://messages-behind-waiting-sends");
      // No peer yet, so the good sends wait; the bad one must fail without a place in line.
      const first = p.send("first");
      const bad = p.send({} as unknown as MessageLike);
      const second = p.send("second");
      await assert.rejects(bad, TypeError);
      p.connect("inproc://messages-behind-waiting-sends");
      await Promise.all([first, second]);
      assert.deepEqual((await q.receive()).map(String), ["first"]);
      assert.deepEqual((await q.receive()).map(String), ["second"]);
    } finally {
      await Promise.all([p.close(), q.close()]);
    }
  });
});

// Frames of 64 KiB and more are sent without a copy: the queued message holds the sender's
// buffer. It must stay valid when the sender drops every reference and the GC runs.
describe("large frames sent without a copy", () => {
  v8.setFlagsFromString("--expose-gc");
  const gc = vm.runInNewContext("gc") as () => void;

  for (const proto of ["tcp", "ipc", "inproc"] as const) {
    it(`stay intact while queued after the sender dropped them and the GC ran, over ${proto}`, T, async () => {
      const push = new Push({ linger: 0 });
      const pull = new Pull({ receiveHighWaterMark: 2 });
      try {
        const address = {
          tcp: "tcp://127.0.0.1:*",
          ipc: `ipc:///tmp/zeropipe-messages-zc-${process.pid}.sock`,
          inproc: `inproc://messages-zero-copy-${process.pid}`,
        }[proto];
        await pull.bind(address);
        push.connect(proto === "tcp" ? pull.lastEndpoint! : address);
        // Built in a scope of its own, so nothing here refers to the buffers afterwards.
        await (async () => {
          for (let i = 0; i < 12; i++) {
            const u16 = new Uint16Array(512 * 1024).fill(0x0101 * (i + 1));
            await push.send(i % 2 ? [Buffer.alloc(256 * 1024, i + 1), null] : u16);
          }
        })();
        for (let round = 0; round < 3; round++) {
          gc();
          // Churn the heap so freed memory would be reused and show up as corruption.
          Array.from({ length: 64 }, () => Buffer.alloc(1024 * 1024, 0xee));
        }
        for (let i = 0; i < 12; i++) {
          const [frame, rest] = await pull.receive();
          assert.equal(frame!.length, i % 2 ? 256 * 1024 : 1024 * 1024, `size of message ${i}`);
          assert.ok(frame!.every((b) => b === i + 1), `message ${i} changed while queued`);
          if (i % 2) assert.equal(rest!.length, 0);
        }
      } finally {
        await Promise.all([push.close(), pull.close()]);
      }
    });
  }

  it("from a worker thread are copied, so they stay intact at an inproc peer after the worker is gone", T, async () => {
    const address = `inproc://messages-worker-frames-${process.pid}`;
    const pull = new Pull();
    try {
      await pull.bind(address);
      const worker = new Worker(
        `
        const { Push } = require(${JSON.stringify(path.resolve(__dirname, "..", "index.js"))});
        const { parentPort } = require("node:worker_threads");
        (async () => {
          const push = new Push({ linger: 0 });
          push.connect(${JSON.stringify(address)});
          for (let i = 0; i < 8; i++) await push.send(Buffer.alloc(512 * 1024, i + 1));
          parentPort.postMessage("sent");
        })();
        `,
        { eval: true },
      );
      await once(worker, "message");
      // The worker's heap, and every buffer it allocated, goes away with it.
      await worker.terminate();
      for (let round = 0; round < 3; round++) {
        gc();
        Array.from({ length: 64 }, () => Buffer.alloc(1024 * 1024, 0xee));
      }
      for (let i = 0; i < 8; i++) {
        const [frame] = await pull.receive();
        assert.equal(frame!.length, 512 * 1024);
        assert.ok(frame!.every((b) => b === i + 1), `message ${i} changed after its worker ended`);
      }
    } finally {
      await pull.close();
    }
  });
});
