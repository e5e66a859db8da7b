// Bad endpoints, taken addresses, closed sockets and bad options fail with the documented
// error class and `code`, name what was wrong, and leave every other socket working.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";

import { Pull, Push } from "zeropipe";
import { connectedPair, trackSockets } from "./helpers/sockets";

const T = { timeout: 20_000 };

let counter = 0;
const ipcPath = () => `/tmp/zeropipe-errors-${process.pid}-${++counter}.sock`;

// A working pair that every test below may try to disturb; the last test proves it still
// delivers.
let goodPush: Push;
let goodPull: Pull;
let goodAddress: string;

before(async () => {
  [goodPush, goodPull] = await connectedPair("tcp", { linger: 0 });
  goodAddress = goodPull.lastEndpoint!;
  await goodPush.send("before the errors");
  assert.deepEqual((await goodPull.receive()).map(String), ["before the errors"]);
});

after(async () => {
  await Promise.all([goodPush.close(), goodPull.close()]);
});

const { track } = trackSockets();

/** Checks an error's class, `code`, and that its message names `mentions`. */
function matches(cls: new (...args: any[]) => Error, code: string | undefined, mentions?: string | RegExp) {
  return (err: NodeJS.ErrnoException) => {
    assert.ok(err instanceof cls, `expected a ${cls.name}, got ${err?.constructor?.name}: ${err?.message}`);
    assert.equal(err.code, code, `code of: ${err.message}`);
    if (typeof mentions === "string") assert.ok(err.message.includes(mentions), `"${err.message}" names ${mentions}`);
    else if (mentions) assert.match(err.message, mentions);
    return true;
  };
}

describe("malformed endpoints", () => {
  const malformed: [string, string][] = [
    ["tcp://127.0.0.1", "missing port"],
    ["tcp://127.0.0.1:", "missing port"],
    ["tcp://127.0.0.1:99999", "port out of range"],
    ["tcp://127.0.0.1:http", "port not a number"],
    ["tcp://127.0.0.1:-1", "negative port"],
    ["tcp://:5555", "empty host"],
    ["tcp://[::1:5555", "unclosed IPv6 bracket"],
    ["tcp://bad host:5555", "space in host name"],
    ["inproc://", "empty inproc name"],
    ["ipc://", "empty ipc path"],
    ["127.0.0.1:5555", "no transport"],
    ["", "empty address"],
  ];

  for (const [address, why] of malformed) {
    it(`bind("${address}") rejects with EINVAL naming the address (${why})`, T, async () => {
      const s = track(new Pull());
      await assert.rejects(s.bind(address), matches(Error, "EINVAL", `"${address}"`));
      assert.equal(s.lastEndpoint, null);
    });

    it(`connect("${address}") throws EINVAL naming the address (${why})`, () => {
      const s = track(new Push());
      assert.throws(() => s.connect(address), matches(Error, "EINVAL", `"${address}"`));
      assert.equal(s.writable, false, "the failed connect left no pipe behind");
    });
  }

  // Fine for bind, meaningless for connect: they name no particular peer.
  for (const address of ["tcp://*:5555", "tcp://127.0.0.1:*", "tcp://127.0.0.1:0", "ipc://*"]) {
    it(`connect("${address}") throws EINVAL naming the address`, () => {
      const s = track(new Push());
      assert.throws(() => s.connect(address), matches(Error, "EINVAL", `"${address}"`));
    });
  }
});

describe("unsupported transports", () => {
  for (const address of ["udp://127.0.0.1:5555", "pgm://eth0;239.192.1.1:5555", "epgm://eth0;239.192.1.1:5555", "ws://127.0.0.1:5555", "vmci://1:5555"]) {
    it(`${address} fails with EPROTONOSUPPORT for bind and connect`, T, async () => {
      const s = track(new Pull());
      await assert.rejects(s.bind(address), matches(Error, "EPROTONOSUPPORT", address));
      assert.throws(() => s.connect(address), matches(Error, "EPROTONOSUPPORT", address));
    });
  }
});

describe("addresses in use", () => {
  it("a tcp port bound by another socket rejects with EADDRINUSE naming it", T, async () => {
    const s = track(new Pull());
    await assert.rejects(s.bind(goodAddress), matches(Error, "EADDRINUSE", goodAddress));
  });

  it("a tcp port held by a plain server of this process rejects with EADDRINUSE", T, async () => {
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    try {
      const address = `tcp://127.0.0.1:${(srv.address() as net.AddressInfo).port}`;
      const s = track(new Push());
      await assert.rejects(s.bind(address), matches(Error, "EADDRINUSE", address));
    } finally {
      await new Promise((r) => srv.close(r));
    }
  });

  it("an inproc name bound twice rejects with EADDRINUSE, and the first binder keeps it", T, async () => {
    const address = `inproc://errors-twice-${counter++}`;
    const first = track(new Pull());
    await first.bind(address);
    await assert.rejects(track(new Pull()).bind(address), matches(Error, "EADDRINUSE", address));
    // The same socket binding the same name again is refused too.
    await assert.rejects(first.bind(address), matches(Error, "EADDRINUSE", address));
    const p = track(new Push());
    p.connect(address);
    await p.send("still the first binder's");
    assert.deepEqual((await first.receive()).map(String), ["still the first binder's"]);
  });

  it("a live ipc path rejects with EADDRINUSE, and the socket there keeps working", T, async () => {
    const address = `ipc://${ipcPath()}`;
    const first = track(new Pull());
    await first.bind(address);
    await assert.rejects(track(new Pull()).bind(address), matches(Error, "EADDRINUSE", address));
    const p = track(new Push());
    p.connect(address);
    await p.send("still reachable");
    assert.deepEqual((await first.receive()).map(String), ["still reachable"]);
  });

  it("an ipc path where a plain server listens rejects with EADDRINUSE and leaves the file", T, async () => {
    const path = ipcPath();
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(path, r));
    try {
      await assert.rejects(track(new Pull()).bind(`ipc://${path}`), matches(Error, "EADDRINUSE", path));
      assert.ok(existsSync(path), "the other server's socket file was not removed");
    } finally {
      await new Promise((r) => srv.close(r));
    }
  });

  it("a stale ipc file left by a killed process is reused, not EADDRINUSE", T, async () => {
    const path = ipcPath();
    const child = spawn(process.execPath, [
      "-e",
      `require("net").createServer().listen(${JSON.stringify(path)}, () => console.log("listening"))`,
    ]);
    await new Promise<void>((resolve, reject) => {
      child.stdout.once("data", () => resolve());
      child.once("exit", (code) => reject(new Error(`listener child exited early (${code})`)));
    });
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGKILL");
    await exited;
    assert.ok(existsSync(path), "SIGKILL left the socket file behind");
    try {
      const q = track(new Pull());
      await q.bind(`ipc://${path}`);
      const p = track(new Push());
      p.connect(`ipc://${path}`);
      await p.send("over the reclaimed path");
      assert.deepEqual((await q.receive()).map(String), ["over the reclaimed path"]);
    } finally {
      rmSync(path, { force: true });
    }
  });

  it("an IP address that is not this machine's rejects with EADDRNOTAVAIL", T, async () => {
    // 192.0.2.0/24 is reserved for documentation: never a local address. Binding sends nothing.
    const address = "tcp://192.0.2.1:5555";
    await assert.rejects(track(new Pull()).bind(address), matches(Error, "EADDRNOTAVAIL", address));
  });
});

describe("unknown endpoints", () => {
  it("unbind of an address never bound rejects with ENOENT naming it", T, async () => {
    const s = track(new Pull());
    await assert.rejects(s.unbind("tcp://127.0.0.1:5555"), matches(Error, "ENOENT", "tcp://127.0.0.1:5555"));
  });

  it("disconnect of an address never connected throws ENOENT naming it", () => {
    const s = track(new Push());
    assert.throws(() => s.disconnect("inproc://never-connected"), matches(Error, "ENOENT", "inproc://never-connected"));
  });
});

describe("closed sockets", () => {
  it("a closed Push rejects bind, send, unbind and throws on connect, disconnect with EBADF", T, async () => {
    const p = track(new Push());
    await p.bind(`inproc://errors-closed-${counter++}`);
    await p.close();
    assert.equal(p.closed, true);
    await assert.rejects(p.bind("tcp://127.0.0.1:*"), matches(Error, "EBADF"));
    await assert.rejects(p.unbind("tcp://127.0.0.1:5555"), matches(Error, "EBADF"));
    await assert.rejects(p.send("x"), matches(Error, "EBADF"));
    assert.throws(() => p.connect("tcp://127.0.0.1:5555"), matches(Error, "EBADF"));
    assert.throws(() => p.disconnect("tcp://127.0.0.1:5555"), matches(Error, "EBADF"));
    assert.equal(p.lastEndpoint?.startsWith("inproc://"), true, "lastEndpoint still readable");
  });

  it("a closed Pull rejects receive and bind with EBADF", T, async () => {
    const q = track(new Pull());
    await q.close();
    await assert.rejects(q.receive(), matches(Error, "EBADF"));
    await assert.rejects(q.bind("tcp://127.0.0.1:*"), matches(Error, "EBADF"));
    assert.throws(() => q.connect(goodAddress), matches(Error, "EBADF"));
  });

  it("sends and receives pending when close() is called reject with EBADF", T, async () => {
    const p = track(new Push({ linger: 0 }));
    const q = track(new Pull());
    // No peers: both wait until the close.
    const send = p.send("never sent");
    const receive = q.receive();
    const closes = Promise.all([p.close(), q.close()]);
    await assert.rejects(send, matches(Error, "EBADF"));
    await assert.rejects(receive, matches(Error, "EBADF"));
    await closes;
  });

  it("a closed socket refuses option changes with EBADF and keeps the values it had", T, async () => {
    const p = track(new Push({ linger: 7 }));
    const q = track(new Pull());
    await Promise.all([p.close(), q.close()]);
    assert.throws(() => (p.linger = 0), matches(Error, "EBADF"));
    assert.throws(() => (p.sendHighWaterMark = 5), matches(Error, "EBADF"));
    assert.throws(() => (q.receiveTimeout = 5), matches(Error, "EBADF"));
    assert.equal(p.linger, 7, "reading is still fine");
  });

  it("close() twice returns the same settled close", T, async () => {
    const q = track(new Pull());
    const first = q.close();
    assert.equal(q.close(), first);
    await first;
  });
});

describe("non-string addresses", () => {
  const values: [string, unknown, RegExp][] = [
    ["a number", 5555, /a number/],
    ["null", null, /null/],
    ["undefined", undefined, /undefined/],
    ["an object", { host: "127.0.0.1", port: 5555 }, /a plain object/],
    ["a URL", new URL("tcp://127.0.0.1:5555"), /URL/],
  ];
  for (const [what, value, names] of values) {
    it(`${what} as address is a TypeError for bind, unbind, connect and disconnect`, T, async () => {
      const s = track(new Pull());
      const addr = value as string;
      await assert.rejects(s.bind(addr), matches(TypeError, undefined, names));
      await assert.rejects(s.unbind(addr), matches(TypeError, undefined, names));
      assert.throws(() => s.connect(addr), matches(TypeError, undefined, names));
      assert.throws(() => s.disconnect(addr), matches(TypeError, undefined, names));
    });
  }
});

describe("invalid options", () => {
  it("an unknown option name is a TypeError at construction, naming it", () => {
    assert.throws(() => new Push({ sendHighWatermark: 5 } as any), matches(TypeError, undefined, '"sendHighWatermark"'));
    assert.throws(() => new Pull({ recieveTimeout: 5 } as any), matches(TypeError, undefined, '"recieveTimeout"'));
    assert.throws(() => new Pull({ conflate: true } as any), matches(TypeError, undefined, '"conflate"'));
  });

  it("an option of the other socket type is a TypeError, not silently ignored", () => {
    assert.throws(() => new Pull({ sendTimeout: 5 } as any), matches(TypeError, undefined, "Push sockets, not Pull"));
    assert.throws(() => new Pull({ sendHighWaterMark: 5 } as any), matches(TypeError, undefined, '"sendHighWaterMark"'));
    assert.throws(() => new Push({ receiveHighWaterMark: 1 } as any), matches(TypeError, undefined, "Pull sockets, not Push"));
    assert.throws(() => new Push({ receiveTimeout: 1 } as any), matches(TypeError, undefined, '"receiveTimeout"'));
  });

  it("options that are not an object are a TypeError", () => {
    assert.throws(() => new Push(5 as any), matches(TypeError, undefined));
    assert.throws(() => new Pull("linger=0" as any), matches(TypeError, undefined));
  });

  const wrongType: [string, Record<string, unknown>][] = [
    ["a string for a number", { sendHighWaterMark: "10" }],
    ["a fraction for an integer", { linger: 1.5 }],
    ["NaN", { receiveTimeout: NaN }],
    ["Infinity", { reconnectInterval: Infinity }],
    ["a number for a boolean", { immediate: 1 }],
    ["null", { linger: null }],
  ];
  for (const [what, options] of wrongType) {
    it(`${what} (${Object.keys(options)[0]}) is a TypeError at construction, naming the option`, () => {
      const name = Object.keys(options)[0];
      const ctor = name.startsWith("receive") ? Pull : Push;
      assert.throws(() => new ctor(options as any), matches(TypeError, undefined, `"${name}"`));
    });
  }

  const outOfRange: Record<string, unknown>[] = [
    { sendHighWaterMark: -1 },
    { receiveHighWaterMark: -5 },
    { linger: -2 },
    { sendTimeout: -2 },
    { reconnectInterval: -2 },
    { handshakeInterval: -1 },
    { heartbeatTimeToLive: 6553501 },
    { maxMessageSize: -2 },
    { connectTimeout: 2 ** 31 },
  ];
  for (const options of outOfRange) {
    const [name, value] = Object.entries(options)[0];
    it(`${name}: ${value} is a RangeError at construction, naming the option`, () => {
      const ctor = name.startsWith("receive") ? Pull : Push;
      assert.throws(() => new ctor(options as any), matches(RangeError, undefined, `"${name}"`));
    });
  }

  it("setting an invalid option property throws and keeps the old value", T, async () => {
    const p = track(new Push({ sendHighWaterMark: 3 }));
    assert.throws(() => {
      p.linger = -2;
    }, matches(RangeError, undefined, '"linger"'));
    assert.equal(p.linger, 30000);
    assert.throws(() => {
      p.sendHighWaterMark = "9" as any;
    }, matches(TypeError, undefined, '"sendHighWaterMark"'));
    assert.equal(p.sendHighWaterMark, 3);
    assert.throws(() => {
      p.immediate = "yes" as any;
    }, matches(TypeError, undefined, '"immediate"'));
    assert.equal(p.immediate, false);
    const q = track(new Pull({ receiveTimeout: 0 }));
    assert.throws(() => {
      q.receiveTimeout = -7;
    }, matches(RangeError, undefined, '"receiveTimeout"'));
    assert.equal(q.receiveTimeout, 0);
    // The old value is still the one in force, not just the one reported.
    await assert.rejects(q.receive(), matches(Error, "EAGAIN"));
  });

  it("boundary values are accepted", () => {
    const p = track(
      new Push({ sendHighWaterMark: 0, linger: -1, sendTimeout: -1, reconnectInterval: -1, heartbeatTimeToLive: 6553500, maxMessageSize: -1 }),
    );
    assert.equal(p.sendHighWaterMark, 0);
    assert.equal(p.linger, -1);
    assert.equal(p.heartbeatTimeToLive, 6553500);
    p.linger = 0;
  });
});

describe("isolation", () => {
  it("none of the errors above disturbed the working pair", T, async () => {
    for (let i = 0; i < 5; i++) await goodPush.send(["after the errors", String(i)]);
    for (let i = 0; i < 5; i++) {
      assert.deepEqual((await goodPull.receive()).map(String), ["after the errors", String(i)]);
    }
  });
});

describe("the I/O thread count", () => {
  // The runtime is per process and starts with the first socket, so each case is a child.
  function firstSocketWith(ioThreads: string): Promise<string> {
    const script = `
      const { Push, Pull } = require(${JSON.stringify(path.resolve(__dirname, "..", "index.js"))});
      (async () => {
        try {
          const pull = new Pull(); const push = new Push({ linger: 0 });
          await pull.bind("inproc://io-threads"); push.connect("inproc://io-threads");
          await push.send("ok"); const [m] = await pull.receive();
          console.log(m.toString()); await push.close(); await pull.close();
        } catch (err) { console.log(err.constructor.name + " " + err.code + " " + err.message) }
      })()`;
    const child = spawn(process.execPath, ["-e", script], { env: { ...process.env, ZEROPIPE_IO_THREADS: ioThreads } });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    return new Promise((resolve, reject) => {
      child.once("error", reject);
      child.once("exit", () => resolve(out.trim()));
    });
  }

  it("ZEROPIPE_IO_THREADS sets it for the process", T, async () => {
    assert.equal(await firstSocketWith("3"), "ok");
  });

  for (const bad of ["0", "65", "two", "-1", ""]) {
    it(`ZEROPIPE_IO_THREADS=${JSON.stringify(bad)} makes socket creation fail with EINVAL`, T, async () => {
      const out = await firstSocketWith(bad);
      assert.match(out, /^Error EINVAL ZEROPIPE_IO_THREADS must be an integer from 1 to 64/);
    });
  }
});
