// Hostile and broken peers, written as raw bytes over node:net, against a bound Pull: each
// bad connection is closed by us, memory stays bounded, and a good Push peer keeps
// delivering, in order, the whole time.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";

import { Pull, Push, type SocketEvent } from "zeropipe";
import {
  RawClient,
  command,
  frame,
  greeting,
  handshake,
  longFrameHeader,
  parseFrames,
  portOf,
  ready,
} from "./helpers/raw-zmtp";

const T = { timeout: 60_000 };
const MB = 1024 * 1024;
// Well above anything a connection should cost, well below what the attacks would take
// unchecked (a 2^40-byte frame, ~600 MB of frame bookkeeping).
const MEMORY_BUDGET = 100 * MB;

let pull: Pull;
let goodPush: Push;
let port: number;

// The good peer: sends numbered messages on a timer; the reader checks they arrive in order.
let running = true;
let sent = 0;
let received = 0;
let freshReceived = 0;
let orderError: Error | undefined;
let sender: Promise<void>;
let reader: Promise<void>;

// Every handshake failure the Pull reports, in order.
const handshakeErrors: SocketEvent[] = [];

before(async () => {
  pull = new Pull({ handshakeInterval: 500 });
  pull.events.on("handshake:error", (ev) => handshakeErrors.push(ev));
  await pull.bind("tcp://127.0.0.1:*");
  port = portOf(pull.lastEndpoint!);
  goodPush = new Push({ linger: 0 });
  goodPush.connect(pull.lastEndpoint!);
  sender = (async () => {
    while (running) {
      await goodPush.send(["good", String(sent)]);
      sent++;
      await new Promise((r) => setTimeout(r, 2));
    }
  })();
  reader = (async () => {
    for await (const msg of pull) {
      const [tag, n] = msg.map(String);
      if (tag === "fresh") {
        freshReceived++;
        continue;
      }
      if (tag !== "good" || Number(n) !== received) {
        orderError ??= new Error(`expected good message ${received}, got ${msg.map(String).join(" ")}`);
      }
      received++;
    }
  })();
});

after(async () => {
  running = false;
  await sender.catch(() => undefined);
  await goodPush.close();
  await pull.close();
  await reader;
});

/** Resolves once the good peer has delivered `n` more messages (fails after 15 s). */
async function goodPeerDelivers(n = 20): Promise<void> {
  const target = received + n;
  const deadline = Date.now() + 15_000;
  while (received < target) {
    if (orderError) throw orderError;
    if (Date.now() > deadline) assert.fail(`good peer stalled at ${received} messages (wanted ${target})`);
    await new Promise((r) => setTimeout(r, 5));
  }
  if (orderError) throw orderError;
}

/** Samples RSS while an attack runs; `growth()` is the peak over the starting point. */
function watchMemory() {
  const start = process.memoryUsage().rss;
  let peak = start;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 5);
  return {
    growth(): number {
      clearInterval(timer);
      // maxRSS (KiB) also catches a spike between two samples.
      peak = Math.max(peak, process.memoryUsage().rss, process.resourceUsage().maxRSS * 1024);
      return peak - start;
    },
  };
}

/** The first handshake failure reported after the first `seen` ones. */
async function nextHandshakeError(seen: number): Promise<SocketEvent> {
  const deadline = Date.now() + 10_000;
  while (handshakeErrors.length <= seen) {
    if (Date.now() > deadline) assert.fail("no handshake:error event");
    await new Promise((r) => setTimeout(r, 5));
  }
  return handshakeErrors[seen];
}

/** Waits for us to close `client`, failing the test if we never do. */
async function closedByUs(client: RawClient, ms = 10_000): Promise<void> {
  let timer: NodeJS.Timeout;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`hostile connection still open after ${ms} ms`)), ms);
  });
  try {
    const { byPeer } = await Promise.race([client.closed, guard]);
    assert.equal(byPeer, true, "the connection was closed from our side");
  } finally {
    clearTimeout(timer!);
    client.destroy();
  }
}

describe("hostile peers against a bound Pull", () => {
  it("the good peer delivers before any attack", T, async () => {
    await goodPeerDelivers();
  });

  // "handshake": refused during the handshake, which the Pull reports as a protocol error
  // (not as the handshakeInterval timeout); "stream": refused after a good handshake.
  const oneShot: [string, "handshake" | "stream", () => Buffer][] = [
    ["a valid handshake then a LONG frame header declaring 2^40 bytes", "stream", () => Buffer.concat([handshake("PUSH"), longFrameHeader(2n ** 40n)])],
    ["a LONG frame header declaring 2^63-1 bytes", "stream", () => Buffer.concat([handshake("PUSH"), longFrameHeader(2n ** 63n - 1n)])],
    ["an HTTP request instead of a greeting", "handshake", () => Buffer.from("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")],
    ["random bytes instead of a greeting", "handshake", () => Buffer.concat([Buffer.from([0x00]), randomBytes(255)])],
    ["a ZMTP 2.0 greeting", "handshake", () => greeting({ major: 1, minor: 0 })],
    ["a greeting asking for the CURVE mechanism", "handshake", () => greeting({ mechanism: "CURVE" })],
    ["READY with Socket-Type PULL (wrong socket type)", "handshake", () => Buffer.concat([greeting(), ready({ "Socket-Type": "PULL" })])],
    ["READY with no Socket-Type", "handshake", () => Buffer.concat([greeting(), ready({ Identity: "" })])],
    ["a data frame instead of READY", "handshake", () => Buffer.concat([greeting(), frame("no READY")])],
    ["a command frame declaring 2^40 bytes instead of READY", "handshake", () => {
      const h = longFrameHeader(2n ** 40n);
      h[0] = 0x06; // COMMAND | LONG
      return Buffer.concat([greeting(), h]);
    }],
    ["reserved flag bits after the handshake", "stream", () => Buffer.concat([handshake("PUSH"), Buffer.from([0x80, 0x00])])],
    ["an ERROR command after the handshake", "stream", () => Buffer.concat([handshake("PUSH"), command("ERROR", Buffer.from([3, ...Buffer.from("bye")]))])],
  ];

  for (const [what, phase, bytes] of oneShot) {
    it(`${what}: closed by us, memory bounded, the good peer keeps delivering`, T, async () => {
      const mem = watchMemory();
      const errorsBefore = handshakeErrors.length;
      const client = await RawClient.connect(port);
      await client.write(bytes());
      await closedByUs(client);
      if (phase === "handshake") {
        const ev = await nextHandshakeError(errorsBefore);
        assert.equal(ev.type, "handshake:error:protocol", `${ev.type}: ${ev.error?.message}`);
        assert.equal(ev.error?.code, "EPROTO");
      }
      await goodPeerDelivers();
      assert.ok(mem.growth() < MEMORY_BUDGET, `RSS grew by ${(mem.growth() / MB).toFixed(1)} MB`);
    });
  }

  it("wrong socket type is answered with an ERROR command before the close", T, async () => {
    const client = await RawClient.connect(port);
    await client.write(Buffer.concat([greeting(), ready({ "Socket-Type": "PULL" })]));
    await closedByUs(client);
    assert.equal(client.received[0], 0xff, "our greeting came first");
    const commands = parseFrames(client.received.subarray(64)).filter((f) => f.flags & 0x04);
    const names = commands.map((c) => c.body.subarray(1, 1 + c.body[0]).toString());
    assert.deepEqual(names, ["READY", "ERROR"]);
    const err = commands[1].body.subarray(1 + "ERROR".length);
    assert.ok(err[0] > 0 && err.subarray(1, 1 + err[0]).length === err[0], "ERROR carries a reason");
  });

  it("a connection that never sends anything is closed after handshakeInterval", T, async () => {
    const t0 = Date.now();
    const errorsBefore = handshakeErrors.length;
    const client = await RawClient.connect(port);
    await closedByUs(client);
    const ev = await nextHandshakeError(errorsBefore);
    assert.equal(ev.type, "handshake:error:other");
    assert.equal(ev.error?.code, "EAGAIN");
    // Not closed at once (that would be refusing everyone), but by the 500 ms deadline.
    assert.ok(Date.now() - t0 >= 400, `closed after only ${Date.now() - t0} ms`);
    await goodPeerDelivers();
  });

  it("a connection that stalls halfway through its greeting is closed after handshakeInterval", T, async () => {
    const client = await RawClient.connect(port);
    await client.write(greeting().subarray(0, 20));
    await closedByUs(client);
    await goodPeerDelivers();
  });

  it("a valid greeting with no READY is closed after handshakeInterval", T, async () => {
    const client = await RawClient.connect(port);
    await client.write(greeting());
    await closedByUs(client);
    await goodPeerDelivers();
  });

  it("endless empty MORE frames: closed by us before memory balloons", T, async () => {
    const mem = watchMemory();
    const client = await RawClient.connect(port);
    await client.write(handshake("PUSH"));
    // 1 MiB = 512 Ki empty frames, each with MORE set: a message that never ends.
    const chunk = Buffer.alloc(MB);
    for (let i = 0; i < chunk.length; i += 2) chunk[i] = 0x01;
    let chunks = 0;
    let open = true;
    client.closed.then(() => (open = false));
    while (open && chunks < 256) {
      if (!(await client.write(chunk))) break;
      chunks++;
    }
    await closedByUs(client);
    assert.ok(chunks < 256, `still accepting empty frames after ${chunks} MiB`);
    await goodPeerDelivers();
    const growth = mem.growth();
    assert.ok(growth < MEMORY_BUDGET, `RSS grew by ${(growth / MB).toFixed(1)} MB after ${chunks} MiB of empty frames`);
  });

  it("a hundred connections that never handshake at once: all closed, the good peer unaffected", T, async () => {
    const mem = watchMemory();
    const clients = await Promise.all(Array.from({ length: 100 }, () => RawClient.connect(port)));
    await goodPeerDelivers();
    await Promise.all(clients.map((c) => closedByUs(c)));
    await goodPeerDelivers();
    assert.ok(mem.growth() < MEMORY_BUDGET, `RSS grew by ${(mem.growth() / MB).toFixed(1)} MB`);
  });

  it("a new good peer can still connect and deliver after all of the above", T, async () => {
    const p = new Push({ linger: 0 });
    try {
      p.connect(pull.lastEndpoint!);
      for (let i = 0; i < 5; i++) await p.send(["fresh", String(i)]);
      const deadline = Date.now() + 10_000;
      while (freshReceived < 5) {
        if (Date.now() > deadline) assert.fail(`only ${freshReceived} of 5 messages from the new peer arrived`);
        await new Promise((r) => setTimeout(r, 5));
      }
    } finally {
      await p.close();
    }
    await goodPeerDelivers();
  });

  it("the good peer's messages all arrived in order, none lost", T, async () => {
    await goodPeerDelivers(5);
    assert.equal(orderError, undefined);
    assert.ok(received <= sent);
    assert.ok(received > 0);
  });
});

describe("a declared size costs only the bytes that arrive", () => {
  it("with maxMessageSize -1, a 2^40-byte frame header and 16 MiB of its body hold about that much", T, async () => {
    const q = new Pull({ maxMessageSize: -1 });
    try {
      await q.bind("tcp://127.0.0.1:*");
      const mem = watchMemory();
      const client = await RawClient.connect(portOf(q.lastEndpoint!));
      await client.write(Buffer.concat([handshake("PUSH"), longFrameHeader(2n ** 40n)]));
      // Write callbacks fire once the kernel took the bytes; with its buffers holding a few
      // MiB at most, most of this has been read by the Pull when the last one fires.
      const body = Buffer.alloc(MB, 0xab);
      for (let i = 0; i < 16; i++) assert.ok(await client.write(body), "still connected");
      const growth = mem.growth();
      assert.ok(growth < MEMORY_BUDGET, `RSS grew by ${(growth / MB).toFixed(1)} MB`);
      assert.equal(q.readable, false, "an incomplete frame is never delivered");
      client.destroy();
    } finally {
      await q.close();
    }
  });
});
