// Socket events as zeromq.js names them: what fires, with which address, for binds,
// connections, retries, handshakes (good and bad), unbinds and close.

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { Pull, Push, type EventType, type PushOptions, type SocketEvent } from "zeropipe";
import { RawClient, portOf } from "./helpers/raw-zmtp";
import { bindAddress, freePort, trackSockets, within } from "./helpers/sockets";

type Sock = Push | Pull;

const T = { timeout: 30_000 };

let counter = 0;
const tracked = trackSockets();
// linger 0 up front: tests here close sockets themselves and must not wait for flushes.
const push = (options?: PushOptions): Push => tracked.push({ linger: 0, ...options });
const pull = tracked.pull;

/** The first `type` event on `sock` satisfying `pred` (listening starts now). */
function nextEvent(sock: Sock, type: EventType, pred: (ev: SocketEvent) => boolean = () => true, ms = 10_000): Promise<SocketEvent> {
  return new Promise((resolve, reject) => {
    const fn = (ev: SocketEvent) => {
      if (!pred(ev)) return;
      clearTimeout(timer);
      sock.events.off(type, fn);
      resolve(ev);
    };
    const timer = setTimeout(() => {
      sock.events.off(type, fn);
      reject(new Error(`no "${type}" event within ${ms} ms`));
    }, ms);
    sock.events.on(type, fn);
  });
}

/**
 * Fails with `what` instead of hanging when `p` does not settle. Its timer also keeps the
 * process alive while the test waits, as a listener does (a listener removed on timeout
 * no longer would).
 */
/** Records every event type on `sock`, in order. */
function record(sock: Sock): SocketEvent[] {
  const seen: SocketEvent[] = [];
  const types: EventType[] = [
    "accept", "accept:error", "bind", "bind:error", "connect", "connect:delay", "connect:retry", "close",
    "disconnect", "handshake", "handshake:error:protocol", "handshake:error:other", "unbind", "end",
  ];
  for (const t of types) sock.events.on(t, (ev) => seen.push(ev));
  return seen;
}

/** An address nobody listens on (and nobody will, during the test). */
async function deadAddress(proto: "tcp" | "ipc"): Promise<string> {
  if (proto === "ipc") return `ipc:///tmp/zeropipe-events-nobody-${process.pid}-${++counter}.sock`;
  return `tcp://127.0.0.1:${await freePort()}`;
}

for (const proto of ["tcp", "ipc", "inproc"] as const) {
  describe(`over ${proto}`, () => {
    it("bind fires with the resolved address", T, async () => {
      const q = pull();
      const bound = nextEvent(q, "bind");
      await q.bind(bindAddress(proto));
      const ev = await bound;
      assert.equal(ev.type, "bind");
      assert.equal(ev.address, q.lastEndpoint);
      if (proto === "tcp") assert.match(ev.address, /^tcp:\/\/127\.0\.0\.1:[1-9]\d*$/);
    });

    it("accept and handshake fire on the binder, connect and handshake on the connector", T, async () => {
      const q = pull();
      const p = push();
      await q.bind(bindAddress(proto));
      const address = q.lastEndpoint!;
      const accepted = nextEvent(q, "accept");
      const qHandshake = nextEvent(q, "handshake");
      const connected = nextEvent(p, "connect");
      const pHandshake = nextEvent(p, "handshake");
      p.connect(address);
      const [a, qh, c, ph] = await Promise.all([accepted, qHandshake, connected, pHandshake]);
      assert.equal(a.address, address);
      assert.equal(qh.address, address);
      assert.equal(c.address, address);
      assert.equal(ph.address, address);
      // Handshake means usable: a message goes through.
      await p.send("after handshake");
      assert.deepEqual((await q.receive()).map(String), ["after handshake"]);
    });

    it("end fires once the socket is closed, and ends iteration over the events", T, async () => {
      const q = pull();
      // Observe before anything happens, so the iterator sees the whole life.
      const iterated = (async () => {
        const types: string[] = [];
        for await (const ev of q.events) types.push(ev.type);
        return types;
      })();
      await q.bind(bindAddress(proto));
      await q.close();
      const types = await iterated;
      assert.equal(types[0], "bind");
      assert.equal(types.at(-1), "end");
      assert.equal(q.events.closed, true);
    });

    if (proto !== "inproc") {
      it("disconnect fires on the Pull when its Push peer closes", T, async () => {
        const q = pull();
        const p = push();
        await q.bind(bindAddress(proto));
        const address = q.lastEndpoint!;
        const handshaken = nextEvent(q, "handshake");
        p.connect(address);
        await handshaken;
        const gone = nextEvent(q, "disconnect");
        await p.close();
        assert.equal((await gone).address, address);
      });

      it("disconnect fires on the Push when the Pull it connected to closes", T, async () => {
        const q = pull();
        const p = push();
        await q.bind(bindAddress(proto));
        const address = q.lastEndpoint!;
        const handshaken = nextEvent(p, "handshake");
        p.connect(address);
        await handshaken;
        const gone = nextEvent(p, "disconnect");
        await q.close();
        assert.equal((await gone).address, address);
      });

      it("connect:retry fires with the interval when nobody listens, backing off to reconnectMaxInterval", T, async () => {
        const address = await deadAddress(proto);
        const p = push({ reconnectInterval: 50, reconnectMaxInterval: 200 });
        const retries: SocketEvent[] = [];
        const four = new Promise<void>((resolve) => {
          p.events.on("connect:retry", (ev) => {
            retries.push(ev);
            if (retries.length === 4) resolve();
          });
        });
        const delay = nextEvent(p, "connect:delay");
        p.connect(address);
        const d = await delay;
        assert.equal(d.address, address);
        await within(four, 10_000, "four connect:retry events");
        for (const ev of retries) assert.equal(ev.address, address);
        assert.deepEqual(retries.slice(0, 4).map((ev) => ev.interval), [50, 100, 200, 200]);
      });

      it("connect:retry keeps the interval fixed without reconnectMaxInterval", T, async () => {
        const address = await deadAddress(proto);
        const p = push({ reconnectInterval: 30 });
        const retries: (number | undefined)[] = [];
        const three = new Promise<void>((resolve) => {
          p.events.on("connect:retry", (ev) => {
            retries.push(ev.interval);
            if (retries.length === 3) resolve();
          });
        });
        p.connect(address);
        await within(three, 10_000, "three connect:retry events");
        assert.deepEqual(retries.slice(0, 3), [30, 30, 30]);
      });

      it("unbind fires unbind and close (the listener is gone) with the address", T, async () => {
        const q = pull();
        await q.bind(bindAddress(proto));
        const address = q.lastEndpoint!;
        const seen = record(q);
        const unbound = nextEvent(q, "unbind");
        const closed = nextEvent(q, "close");
        await q.unbind(address);
        const [u, c] = await Promise.all([unbound, closed]);
        assert.equal(u.address, address);
        assert.equal(c.address, address);
        assert.deepEqual(
          seen.map((e) => e.type).filter((t) => t === "unbind" || t === "close").sort(),
          ["close", "unbind"],
        );
      });

      it("closing a bound socket reports close for its listener before end", T, async () => {
        const q = pull();
        await q.bind(bindAddress(proto));
        const address = q.lastEndpoint!;
        const seen = record(q);
        const ended = nextEvent(q, "end");
        await q.close();
        await ended;
        const types = seen.map((e) => e.type);
        assert.ok(types.includes("close"), `close among ${types.join(", ")}`);
        assert.equal(seen.find((e) => e.type === "close")!.address, address);
        assert.ok(types.indexOf("close") < types.indexOf("end"), `close before end in ${types.join(", ")}`);
      });

      it("a Push connecting to a Push fails the handshake with handshake:error:protocol on both", T, async () => {
        const a = push();
        const b = push({ reconnectInterval: -1 });
        await a.bind(bindAddress(proto));
        const onA = nextEvent(a, "handshake:error");
        const onB = nextEvent(b, "handshake:error");
        b.connect(a.lastEndpoint!);
        const [ea, eb] = await Promise.all([onA, onB]);
        for (const ev of [ea, eb]) {
          assert.equal(ev.type, "handshake:error:protocol");
          assert.equal(ev.error?.code, "EPROTO");
          assert.match(ev.error!.message, /PUSH/);
        }
      });
    }
  });
}

describe("OS errors in events", () => {
  it("connect:delay carries the errno name of a refused connection, ECONNREFUSED", T, async () => {
    const p = push({ reconnectInterval: 50 });
    const delay = nextEvent(p, "connect:delay");
    p.connect(`tcp://127.0.0.1:${await freePort()}`);
    const ev = await delay;
    assert.equal(ev.error?.code, "ECONNREFUSED", ev.error?.message);
  });
});

describe("bind:error", () => {
  it("fires with the error when the address is taken", T, async () => {
    const first = pull();
    await first.bind("tcp://127.0.0.1:*");
    const address = first.lastEndpoint!;
    const second = pull();
    const failed = nextEvent(second, "bind:error");
    await assert.rejects(second.bind(address), (err: NodeJS.ErrnoException) => err.code === "EADDRINUSE");
    const ev = await failed;
    assert.equal(ev.address, address);
    assert.equal(ev.error?.code, "EADDRINUSE");
  });
});

describe("handshake:error from a raw client", () => {
  it("garbage instead of a greeting: handshake:error listeners hear handshake:error:protocol, and we close the connection", T, async () => {
    const q = pull();
    await q.bind("tcp://127.0.0.1:*");
    const address = q.lastEndpoint!;
    const heard = nextEvent(q, "handshake:error");
    const specific = nextEvent(q, "handshake:error:protocol");
    const client = await RawClient.connect(portOf(address));
    await client.write(Buffer.from("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"));
    const [ev, ev2] = await Promise.all([heard, specific]);
    assert.equal(ev.type, "handshake:error:protocol");
    assert.equal(ev, ev2, "one event, heard by both listeners");
    assert.equal(ev.address, address);
    assert.equal(ev.error?.code, "EPROTO");
    const { byPeer } = await client.closed;
    assert.equal(byPeer, true, "zeropipe closed the connection");
  });

  it("silence past handshakeInterval: handshake:error:other with EAGAIN", T, async () => {
    const q = pull({ handshakeInterval: 200 });
    await q.bind("tcp://127.0.0.1:*");
    const heard = nextEvent(q, "handshake:error");
    const client = await RawClient.connect(portOf(q.lastEndpoint!));
    const ev = await heard;
    assert.equal(ev.type, "handshake:error:other");
    assert.equal(ev.error?.code, "EAGAIN");
    assert.equal((await client.closed).byPeer, true);
  });
});

describe("the observer", () => {
  it("receive() resolves with queued events in order", T, async () => {
    const q = pull();
    const obs = q.events;
    await q.bind(`inproc://events-receive-${++counter}`);
    await q.bind("tcp://127.0.0.1:*");
    const first = await obs.receive();
    const second = await obs.receive();
    assert.deepEqual([first.type, second.type], ["bind", "bind"]);
    assert.equal(first.address, `inproc://events-receive-${counter}`);
    assert.equal(second.address, q.lastEndpoint);
  });

  it("off() stops a listener", T, async () => {
    const q = pull();
    const heard: string[] = [];
    const fn = (ev: SocketEvent) => heard.push(ev.address);
    const a = `inproc://events-off-a-${++counter}`;
    const b = `inproc://events-off-b-${counter}`;
    q.events.on("bind", fn);
    // Listeners run in registration order within one dispatch: once this one has the
    // event, fn has it too.
    const firstSeen = nextEvent(q, "bind");
    await q.bind(a);
    await firstSeen;
    q.events.off("bind", fn);
    const secondSeen = nextEvent(q, "bind");
    await q.bind(b);
    assert.equal((await secondSeen).address, b);
    assert.deepEqual(heard, [a]);
  });

  it("rejects a listener that is not a function", () => {
    const q = pull();
    assert.throws(() => q.events.on("bind", "nope" as any), TypeError);
  });
});
