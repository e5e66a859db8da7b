// CURVE as a Node user sees it: the key options (formats, EINVAL, the write-only secret),
// the key helpers, zeropipe to zeropipe over tcp and ipc (inproc stays unencrypted), and
// the two ways to authenticate clients: the allowlist and the `authenticate` callback.

import assert from "node:assert/strict";
import { inspect } from "node:util";
import { describe, it } from "node:test";

import { close, configure, curveKeyPair, Pool, serve, pull as modulePull, push as modulePush, Pull, Push, z85, type AuthRequest, type PullOptions, type PushOptions, type SocketEvent } from "zeropipe";
import { bindFresh, fixedEndpoints, trackSockets, within } from "./helpers/sockets";

const T = { timeout: 30_000 };
const tracked = trackSockets();
const push = (o?: PushOptions): Push => tracked.push({ linger: 0, ...o });
const pull = (o?: PullOptions): Pull => tracked.pull(o);

const server = curveKeyPair();
const client = curveKeyPair();

/** `fn` throws (or rejects) an error with `code`. */
async function assertCode(fn: () => unknown, code: string): Promise<void> {
  await assert.rejects(async () => fn(), (err: { code?: string }) => {
    assert.equal(err.code, code, String(err));
    return true;
  });
}

/** The first `type` event on `sock` (listening starts now). */
function nextEvent(sock: Push | Pull, type: Parameters<Pull["events"]["on"]>[0], ms = 10_000): Promise<SocketEvent> {
  return within(
    new Promise<SocketEvent>((resolve) => {
      const fn = (ev: SocketEvent) => {
        sock.events.off(type, fn);
        resolve(ev);
      };
      sock.events.on(type, fn);
    }),
    ms,
    `a "${type}" event`,
  );
}

/** Counts the events of `type` on `sock` from now on. */
function count(sock: Push | Pull, type: Parameters<Pull["events"]["on"]>[0]): { n: number } {
  const c = { n: 0 };
  sock.events.on(type, () => c.n++);
  return c;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("key helpers", () => {
  it("curveKeyPair makes distinct 40-character Z85 pairs", () => {
    const a = curveKeyPair();
    const b = curveKeyPair();
    for (const k of [a.publicKey, a.secretKey, b.publicKey]) assert.match(k, /^[0-9a-zA-Z.\-:+=^!/*?&<>()[\]{}@%$#]{40}$/);
    assert.notEqual(a.secretKey, b.secretKey);
    assert.deepEqual(Object.keys(a).sort(), ["publicKey", "secretKey"]);
  });

  it("z85 encodes and decodes rfc 32's example", () => {
    const bytes = Buffer.from([0x86, 0x4f, 0xd2, 0x6f, 0xb5, 0x59, 0xf7, 0x5b]);
    assert.equal(z85.encode(bytes), "HelloWorld");
    assert.deepEqual(z85.decode("HelloWorld"), bytes);
    assert.ok(Buffer.isBuffer(z85.decode("")));
    const key = z85.decode(server.publicKey);
    assert.equal(key.length, 32);
    assert.equal(z85.encode(key), server.publicKey);
  });

  it("z85 refuses bad lengths and characters with EINVAL, other types with TypeError", async () => {
    await assertCode(() => z85.encode(Buffer.alloc(3)), "EINVAL");
    await assertCode(() => z85.decode("Hell"), "EINVAL");
    await assertCode(() => z85.decode("Hello\"orld"), "EINVAL");
    await assertCode(() => z85.decode("%%%%%"), "EINVAL");
    assert.throws(() => z85.encode("text" as never), TypeError);
    assert.throws(() => z85.decode(Buffer.alloc(5) as never), TypeError);
  });
});

describe("CURVE options", () => {
  it("take Z85 strings and 32-byte Buffers, and read public keys back as Z85", () => {
    const q = pull({ curveServer: true, curveSecretKey: z85.decode(server.secretKey) });
    assert.equal(q.curveServer, true);
    assert.equal(q.curvePublicKey, server.publicKey, "derived from the secret key");
    const p = push({ curveServerKey: z85.decode(server.publicKey), curveSecretKey: client.secretKey, curvePublicKey: client.publicKey });
    assert.equal(p.curveServerKey, server.publicKey);
    assert.equal(p.curvePublicKey, client.publicKey);
    assert.equal(p.curveServer, false);
    assert.equal(p.zapDomain, "");
    assert.equal(p.curveAllow, null);
    assert.equal(p.authenticate, null);
    assert.equal(p.authTimeout, 5000);
  });

  it("never read the secret key back", () => {
    const q = pull({ curveServer: true, curveSecretKey: server.secretKey });
    assert.equal(q.curveSecretKey, null);
    q.curveSecretKey = z85.decode(server.secretKey);
    assert.equal(q.curveSecretKey, null);
    assert.ok(!inspect(q, { showHidden: true, depth: 5 }).includes(server.secretKey));
    assert.ok(!JSON.stringify(q).includes(server.secretKey));
  });

  it("refuse a wrong length or bad Z85 with EINVAL at construction", async () => {
    const bad = [
      server.secretKey.slice(1),
      server.secretKey + "0",
      '"' + server.secretKey.slice(1),
      "%%%%%" + server.secretKey.slice(5),
      Buffer.alloc(31),
      Buffer.alloc(33),
      Buffer.from(server.secretKey),
    ];
    for (const key of bad) {
      await assertCode(() => new Pull({ curveServer: true, curveSecretKey: key }), "EINVAL");
      await assertCode(() => new Push({ curveServerKey: key, curveSecretKey: client.secretKey }), "EINVAL");
      await assertCode(() => new Pull({ curveServer: true, curveSecretKey: server.secretKey, curveAllow: [client.publicKey, key] }), "EINVAL");
    }
    assert.throws(() => new Pull({ curveServer: true, curveSecretKey: 42 as never }), TypeError);
    assert.throws(() => new Pull({ curveServer: "yes" as never }), TypeError);
    assert.throws(() => new Pull({ authenticate: "allow" as never }), TypeError);
    assert.throws(() => new Pull({ curveAllow: client.publicKey as never }), TypeError);
    assert.throws(() => new Pull({ authTimeout: 0 }), RangeError);
  });

  it("refuse a wrong length or bad Z85 with EINVAL at assignment, keeping the old value", async () => {
    const q = pull({ curveServer: true, curveSecretKey: server.secretKey });
    const p = push({ curveServerKey: server.publicKey, curveSecretKey: client.secretKey });
    await assertCode(() => {
      p.curveServerKey = "short";
    }, "EINVAL");
    await assertCode(() => {
      p.curveServerKey = Buffer.alloc(16);
    }, "EINVAL");
    await assertCode(() => {
      q.curveSecretKey = "~".repeat(40);
    }, "EINVAL");
    assert.equal(p.curveServerKey, server.publicKey);
    assert.equal(q.curvePublicKey, server.publicKey);
  });

  it("refuse incomplete or contradictory setups at construction", async () => {
    await assertCode(() => new Pull({ curveServer: true }), "EINVAL");
    await assertCode(() => new Push({ curveServerKey: server.publicKey }), "EINVAL");
    await assertCode(() => new Push({ curveSecretKey: client.secretKey }), "EINVAL");
    await assertCode(() => new Pull({ curveServer: true, curveSecretKey: server.secretKey, curvePublicKey: client.publicKey }), "EINVAL");
    await assertCode(
      () => new Push({ curveServerKey: server.publicKey, curveSecretKey: client.secretKey, curveAllow: [client.publicKey] }),
      "EINVAL",
    );
    await assertCode(() => new Pull({ authenticate: () => true }), "EINVAL");
  });

  it("assigned one at a time, are checked when the socket binds or connects", async () => {
    const q = pull();
    q.curveServer = true;
    await assertCode(() => q.bind("tcp://127.0.0.1:*"), "EINVAL");
    q.curveSecretKey = server.secretKey;
    await q.bind("tcp://127.0.0.1:*");
    const p = push();
    p.curveServerKey = server.publicKey;
    await assertCode(() => p.connect(q.lastEndpoint!), "EINVAL");
    p.curvePublicKey = server.publicKey;
    p.curveSecretKey = client.secretKey;
    await assertCode(() => p.connect(q.lastEndpoint!), "EINVAL");
    p.curvePublicKey = client.publicKey;
    p.connect(q.lastEndpoint!);
  });

  it("set back to null turn CURVE off", async () => {
    const q = pull({ curveServer: true, curveSecretKey: server.secretKey });
    q.curveServer = false;
    q.curveSecretKey = null;
    const ep = await bindFresh(q, "tcp");
    const p = push();
    p.connect(ep);
    await p.send("plain");
    assert.deepEqual((await within(q.receive(), 10_000, "a NULL message")).map(String), ["plain"]);
  });

  it("throw EBADF once closed", async () => {
    const q = pull();
    await q.close();
    await assertCode(() => {
      q.curveServer = true;
    }, "EBADF");
  });
});

/** A CURVE server PULL bound on `proto`, and a CURVE client PUSH connected to it. */
async function curvePair(
  proto: "tcp" | "ipc" | "inproc",
  serverOpts: PullOptions = {},
  clientOpts: PushOptions = {},
): Promise<[Push, Pull, string]> {
  const q = pull({ curveServer: true, curveSecretKey: server.secretKey, ...serverOpts });
  const ep = await bindFresh(q, proto);
  const p = push({ curveServerKey: server.publicKey, curveSecretKey: client.secretKey, curvePublicKey: client.publicKey, ...clientOpts });
  p.connect(ep);
  return [p, q, ep];
}

for (const proto of ["tcp", "ipc"] as const) {
  describe(`zeropipe to zeropipe over CURVE, ${proto}`, () => {
    it("delivers single, multipart, empty and 1 MiB messages in order", T, async () => {
      const [p, q] = await curvePair(proto);
      const big = Buffer.alloc(1 << 20, 7);
      await p.send("one");
      await p.send(["a", Buffer.from([1, 2, 3]), ""]);
      await p.send("");
      await p.send(big);
      for (let i = 0; i < 1000; i++) await p.send(String(i));
      assert.deepEqual((await within(q.receive(), 10_000, "one")).map(String), ["one"]);
      assert.deepEqual((await q.receive()).map((f) => [...f]), [[97], [1, 2, 3], []]);
      assert.deepEqual((await q.receive()).map(String), [""]);
      assert.ok((await q.receive())[0]!.equals(big));
      for (let i = 0; i < 1000; i++) assert.equal(String((await q.receive())[0]), String(i));
    });

    it("reports the peer's public key on handshake, both sides", T, async () => {
      const q = pull({ curveServer: true, curveSecretKey: server.secretKey });
      const ep = await bindFresh(q, proto);
      const serverSide = nextEvent(q, "handshake");
      const p = push({ curveServerKey: server.publicKey, curveSecretKey: client.secretKey });
      const clientSide = nextEvent(p, "handshake");
      p.connect(ep);
      const [s, c] = await Promise.all([serverSide, clientSide]);
      assert.equal(s.publicKey, client.publicKey);
      assert.equal(s.userId, "");
      assert.equal(c.publicKey, server.publicKey);
    });

    it("a client with the wrong server key never completes a handshake and keeps retrying", T, async () => {
      const q = pull({ curveServer: true, curveSecretKey: server.secretKey });
      const ep = await bindFresh(q, proto);
      const p = push({ curveServerKey: curveKeyPair().publicKey, curveSecretKey: client.secretKey, reconnectInterval: 50 });
      const handshakes = count(q, "handshake");
      const accepts = count(q, "accept");
      p.connect(ep);
      await sleep(1000);
      assert.equal(handshakes.n, 0);
      assert.ok(accepts.n >= 2, `the client retried (${accepts.n} connections)`);
    });

    it("a CURVE server refuses a NULL client, and a CURVE client a NULL server", T, async () => {
      const q = pull({ curveServer: true, curveSecretKey: server.secretKey });
      const ep = await bindFresh(q, proto);
      const plain = push({ reconnectInterval: 50 });
      const refused = nextEvent(q, "handshake:error");
      plain.connect(ep);
      await refused;
      const nq = pull();
      const nep = await bindFresh(nq, proto);
      const p = push({ curveServerKey: server.publicKey, curveSecretKey: client.secretKey, reconnectInterval: 50 });
      const clientRefused = nextEvent(p, "handshake:error");
      p.connect(nep);
      await clientRefused;
      assert.equal(nq.peers, 0);
    });

    it("two clients reach one server with their own keys", T, async () => {
      const other = curveKeyPair();
      const [p1, q, ep] = await curvePair(proto);
      const p2 = push({ curveServerKey: server.publicKey, curveSecretKey: other.secretKey });
      const keys = new Set<string>();
      q.events.on("handshake", (ev) => keys.add(ev.publicKey!));
      p2.connect(ep);
      await q.waitForPeers(2, { timeout: 10_000 });
      await p1.send("1");
      await p2.send("2");
      const got = [String((await q.receive())[0]), String((await q.receive())[0])].sort();
      assert.deepEqual(got, ["1", "2"]);
    });

    it("an allowlisted client gets in, another is denied with 400", T, async () => {
      const stranger = curveKeyPair();
      const q = pull({ curveServer: true, curveSecretKey: server.secretKey, curveAllow: [client.publicKey] });
      const ep = await bindFresh(q, proto);
      const denied = nextEvent(q, "handshake:error:auth");
      const bad = push({ curveServerKey: server.publicKey, curveSecretKey: stranger.secretKey, reconnectInterval: 50 });
      const told = nextEvent(bad, "handshake:error:auth");
      bad.connect(ep);
      assert.equal((await denied).status, 400);
      assert.equal((await told).status, 400);
      const good = push({ curveServerKey: server.publicKey, curveSecretKey: Buffer.from(z85.decode(client.secretKey)) });
      good.connect(ep);
      await good.send("in");
      assert.deepEqual((await within(q.receive(), 10_000, "the allowed client's message")).map(String), ["in"]);
    });

    it("authenticate sees the client and its verdict decides, with the user id on handshake", T, async () => {
      const seen: AuthRequest[] = [];
      const q = pull({
        curveServer: true,
        curveSecretKey: server.secretKey,
        zapDomain: "jobs",
        authenticate: async (req) => {
          seen.push(req);
          await sleep(10);
          return req.publicKey === client.publicKey ? { status: 200, userId: "alice" } : false;
        },
      });
      const ep = await bindFresh(q, proto);
      const hs = nextEvent(q, "handshake");
      const [p] = [push({ curveServerKey: server.publicKey, curveSecretKey: client.secretKey })];
      p.connect(ep);
      const ev = await hs;
      assert.equal(ev.publicKey, client.publicKey);
      assert.equal(ev.userId, "alice");
      assert.equal(seen.length, 1);
      assert.equal(seen[0]!.publicKey, client.publicKey);
      assert.equal(seen[0]!.domain, "jobs");
      assert.equal(seen[0]!.address, proto === "tcp" ? "127.0.0.1" : ep);
      await p.send("ok");
      assert.deepEqual((await q.receive()).map(String), ["ok"]);

      const stranger = push({ curveServerKey: server.publicKey, curveSecretKey: curveKeyPair().secretKey });
      const told = nextEvent(stranger, "handshake:error:auth");
      const denied = nextEvent(q, "handshake:error:auth");
      stranger.connect(ep);
      assert.equal((await told).status, 400);
      assert.equal((await denied).status, 400);
    });

    it("authenticate's 300 and 500 turn the client away; 300 lets it retry", T, async () => {
      let calls = 0;
      let verdict: unknown = { status: 300 };
      const q = pull({ curveServer: true, curveSecretKey: server.secretKey, authenticate: () => (calls++, verdict as never) });
      const ep = await bindFresh(q, proto);
      const p = push({ curveServerKey: server.publicKey, curveSecretKey: client.secretKey, reconnectInterval: 50 });
      p.connect(ep);
      await within(
        (async () => {
          while (calls < 2) await sleep(10);
        })(),
        10_000,
        "a retry after 300",
      );
      assert.equal(q.peers, 0);
      verdict = true;
      await q.waitForPeers(1, { timeout: 10_000 });

      const q5 = pull({ curveServer: true, curveSecretKey: server.secretKey, authenticate: () => ({ status: 500 }) });
      const ep5 = await bindFresh(q5, proto);
      const p5 = push({ curveServerKey: server.publicKey, curveSecretKey: client.secretKey });
      const told = nextEvent(p5, "handshake:error:auth");
      p5.connect(ep5);
      assert.equal((await told).status, 500);
    });

    it("an authenticate that throws counts as 500, with a warning", T, async () => {
      const warnings: Error[] = [];
      const onWarning = (w: Error) => warnings.push(w);
      process.on("warning", onWarning);
      try {
        const q = pull({
          curveServer: true,
          curveSecretKey: server.secretKey,
          authenticate: () => {
            throw new Error("database down");
          },
        });
        const ep = await bindFresh(q, proto);
        const p = push({ curveServerKey: server.publicKey, curveSecretKey: client.secretKey });
        const told = nextEvent(p, "handshake:error:auth");
        p.connect(ep);
        assert.equal((await told).status, 500);
        await sleep(10);
        assert.ok(warnings.some((w) => /database down/.test(w.message)));
      } finally {
        process.off("warning", onWarning);
      }
    });

    it("an authenticate slower than authTimeout turns the client away as 300", T, async () => {
      let calls = 0;
      const q = pull({
        curveServer: true,
        curveSecretKey: server.secretKey,
        authTimeout: 100,
        authenticate: () => {
          calls++;
          return new Promise<boolean>((r) => setTimeout(() => r(true), 400));
        },
      });
      const ep = await bindFresh(q, proto);
      const p = push({ curveServerKey: server.publicKey, curveSecretKey: client.secretKey, reconnectInterval: 50 });
      p.connect(ep);
      await sleep(700);
      assert.equal(q.peers, 0);
      assert.ok(calls >= 2, `the client retried after the timeout (${calls} calls)`);
    });
  });
}

describe("a denied client", () => {
  // libzmq's client ends its session on ERROR "400" and does not reconnect; ours neither.
  it("stops reconnecting, as libzmq's does", T, async () => {
    const q = pull({ curveServer: true, curveSecretKey: server.secretKey, curveAllow: [] });
    const ep = await bindFresh(q, "tcp");
    const bad = push({ curveServerKey: server.publicKey, curveSecretKey: client.secretKey, reconnectInterval: 50 });
    const told = nextEvent(bad, "handshake:error:auth");
    const accepts = count(q, "accept");
    bad.connect(ep);
    await told;
    await sleep(500);
    assert.equal(accepts.n, 1, "a denied client does not reconnect");
  });
});

describe("CURVE over inproc", () => {
  it("stays unencrypted, as in libzmq: a CURVE pair still talks", T, async () => {
    const [p, q] = await curvePair("inproc");
    await p.send("inproc");
    assert.deepEqual((await within(q.receive(), 10_000, "an inproc message")).map(String), ["inproc"]);
  });
});

describe("an authenticator on an idle server", () => {
  it("does not keep the process alive", T, async () => {
    const { spawnSync } = await import("node:child_process");
    const script = `
      const { Pull, curveKeyPair } = require("zeropipe");
      const q = new Pull({ curveServer: true, curveSecretKey: curveKeyPair().secretKey, authenticate: () => true });
      q.bind("tcp://127.0.0.1:*").then(() => console.log("bound"));
    `;
    const r = spawnSync(process.execPath, ["-e", script], { timeout: 10_000, encoding: "utf8" });
    assert.equal(r.signal, null, "exited by itself");
    assert.equal(r.stdout.trim(), "bound");
  });
});

describe("the module API with CURVE", () => {
  const endpoints = fixedEndpoints("curve-module");

  it("refuses curveServer (the binding side is the server) and bad keys", async () => {
    assert.throws(() => configure({ curveServer: true } as never), TypeError);
    await assertCode(() => configure({ curveSecretKey: "bad" }), "EINVAL");
    await close();
  });

  it("makes the binding PUSH the CURVE server and the connecting PULL its client", T, async () => {
    configure({ endpoint: await endpoints("tcp"), curveSecretKey: server.secretKey, curveServerKey: server.publicKey });
    try {
      const sent = modulePush("secret job");
      for await (const [job] of modulePull()) {
        assert.equal(String(job), "secret job");
        break;
      }
      await sent;
    } finally {
      await close();
    }
  });

  it("refuses a NULL worker once the producer has keys", T, async () => {
    const ep = await endpoints("tcp");
    configure({ endpoint: ep, curveSecretKey: server.secretKey });
    try {
      const sent = modulePush("job");
      const plain = pull();
      const refused = nextEvent(plain, "handshake:error");
      plain.connect(ep);
      await refused;
      const worker = pull({ curveServerKey: server.publicKey, curveSecretKey: client.secretKey });
      worker.connect(ep);
      assert.deepEqual((await within(worker.receive(), 10_000, "the job")).map(String), ["job"]);
      await sent;
    } finally {
      await close();
    }
  });

  it("a connecting side without the server key is EINVAL", async () => {
    configure({ endpoint: await endpoints("tcp"), curveSecretKey: server.secretKey });
    try {
      await assertCode(() => modulePull(), "EINVAL");
    } finally {
      await close();
    }
  });

  it("takes a worker's keys from ZEROPIPE_CURVE_* variables", T, async () => {
    const { spawn } = await import("node:child_process");
    const ep = await endpoints("tcp");
    configure({ endpoint: ep, curveSecretKey: server.secretKey, curveAllow: [client.publicKey] });
    const script = `
      const { pull } = require("zeropipe");
      (async () => { for await (const [job] of pull()) { console.log(String(job)); process.exit(0); } })();
    `;
    const child = spawn(process.execPath, ["-e", script], {
      env: {
        ...process.env,
        ZEROPIPE_ENDPOINT: ep,
        ZEROPIPE_CURVE_SERVER_KEY: server.publicKey,
        ZEROPIPE_CURVE_SECRET_KEY: client.secretKey,
        ZEROPIPE_CURVE_PUBLIC_KEY: client.publicKey,
      },
      stdio: ["ignore", "pipe", "inherit"],
    });
    const killer = setTimeout(() => child.kill("SIGKILL"), 15_000);
    try {
      let out = "";
      child.stdout.on("data", (d) => (out += d));
      const exited = new Promise<number | null>((r) => child.on("exit", r));
      await modulePush("from env");
      assert.equal(await exited, 0);
      assert.equal(out.trim(), "from env");
    } finally {
      clearTimeout(killer);
      child.kill("SIGKILL");
      await close();
    }
  });
});

describe("Pool and serve() with CURVE", () => {
  const endpoints = fixedEndpoints("curve-pool");

  it("run jobs over CURVE, the pool the server with an allowlist, the worker its client", T, async () => {
    const jobs = await endpoints("tcp");
    const results = await endpoints("tcp");
    const pool = new Pool({ jobs, results, curve: { curveServer: true, curveSecretKey: server.secretKey, curveAllow: [client.publicKey] } });
    const worker = serve((frames) => `done ${frames[0]}`, {
      jobs,
      results,
      curve: { curveServerKey: server.publicKey, curveSecretKey: client.secretKey },
    });
    try {
      await pool.waitForWorkers(1, { timeout: 10_000 });
      assert.deepEqual((await pool.run("job")).map(String), ["done job"]);
    } finally {
      await worker.close();
      await pool.close();
    }
  });

  it("refuse a curve option that is not a CURVE option", () => {
    assert.throws(() => new Pool({ jobs: "tcp://127.0.0.1:1", results: "tcp://127.0.0.1:2", curve: { linger: 0 } as never }), TypeError);
    assert.throws(() => serve(() => 1, { jobs: "tcp://127.0.0.1:1", results: "tcp://127.0.0.1:2", curve: "on" as never }), TypeError);
  });
});
