// CURVE against real libzmq peers: pyzmq (libzmq 4.3.5 with libsodium) and zeromq.js, as
// CURVE clients and servers, over tcp and ipc: what only CURVE has (keys on the handshake
// event, a wrong server key, NULL refused, denials both ways, a pyzmq ZAP handler). The
// whole interop suite over CURVE (messages, order, heartbeats, two clients, two servers,
// reconnects) is interop-curve-pyzmq.test.ts and interop-curve-zeromqjs.test.ts.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as path from "node:path";
import { createInterface } from "node:readline";
import { afterEach, describe, it } from "node:test";

import { curveKeyPair, Pull, Push, type EventType, type PullOptions, type PushOptions, type SocketEvent } from "zeropipe";

import { pythonPath, startPeer, uniqueIpc, type Peer, type PeerKind, type PeerMode, type PeerOptions, type PeerRole } from "./helpers/peer";
import { waitFor, within } from "./helpers/sockets";

const GUARD_MS = 15_000;
const T = { timeout: 60_000 };
const server = curveKeyPair();
const client = curveKeyPair();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const peers: Peer[] = [];
const sockets: (Push | Pull)[] = [];
const cleanups: (() => void)[] = [];

afterEach(async () => {
  for (const c of cleanups.splice(0)) c();
  await Promise.all(peers.splice(0).map((p) => p.kill()));
  await Promise.all(
    sockets.splice(0).map((s) => {
      if (!s.closed) s.linger = 0;
      return s.close();
    }),
  );
});

async function peer(kind: PeerKind, role: PeerRole, mode: PeerMode, address: string, options: PeerOptions): Promise<Peer> {
  const p = await startPeer(kind, role, mode, address, options);
  peers.push(p);
  return p;
}
const newPush = (o: PushOptions) => {
  const s = new Push({ sendTimeout: GUARD_MS, linger: 0, ...o });
  sockets.push(s);
  return s;
};
const newPull = (o: PullOptions) => {
  const s = new Pull({ receiveTimeout: GUARD_MS, ...o });
  sockets.push(s);
  return s;
};

/** Counts `type` events on `sock` from now on; `until(n)` waits for the n-th. */
function counter(sock: Push | Pull, type: EventType) {
  const seen: SocketEvent[] = [];
  let wake: (() => void) | null = null;
  sock.events.on(type, (ev) => {
    seen.push(ev);
    wake?.();
  });
  return {
    seen,
    async until(n: number): Promise<SocketEvent> {
      await within(
        (async () => {
          while (seen.length < n) await new Promise<void>((r) => (wake = r));
        })(),
        GUARD_MS,
        `${n} "${type}" event(s), got ${seen.length}`,
      );
      return seen[n - 1]!;
    },
  };
}

const serverOptions: PeerOptions = { curveServer: true, curveSecretKey: server.secretKey };
const clientOptions: PeerOptions = { curveServerKey: server.publicKey, curveSecretKey: client.secretKey, curvePublicKey: client.publicKey };

for (const kind of ["pyzmq", "zeromqjs"] as const) {
  for (const transport of ["tcp", "ipc"] as const) {
    const bindAddress = (): string => (transport === "tcp" ? "tcp://127.0.0.1:0" : uniqueIpc());

    describe(`CURVE with ${kind} over ${transport}`, () => {
      it(`our client PUSH and a ${kind} server PULL learn each other's key, with Z85 keys`, T, async () => {
        const pull = await peer(kind, "pull", "bind", bindAddress(), serverOptions);
        const push = newPush({ curveServerKey: server.publicKey, curveSecretKey: client.secretKey, curvePublicKey: client.publicKey });
        const hs = counter(push, "handshake");
        push.connect(pull.endpoint);
        await push.send(["hello", "", "CURVE"]);
        assert.deepEqual((await pull.nextMessage(GUARD_MS)).map(String), ["hello", "", "CURVE"]);
        assert.equal((await hs.until(1)).publicKey, server.publicKey);
      });

      it(`our server PULL learns a ${kind} client's key`, T, async () => {
        const pull = newPull({ curveServer: true, curveSecretKey: server.secretKey });
        const hs = counter(pull, "handshake");
        await pull.bind(bindAddress());
        const push = await peer(kind, "push", "connect", pull.lastEndpoint!, clientOptions);
        await push.send(["from", kind]);
        assert.deepEqual((await pull.receive()).map(String), ["from", kind]);
        const ev = await hs.until(1);
        assert.equal(ev.publicKey, client.publicKey);
        assert.equal(ev.userId, "");
      });

      it(`our client with the wrong server key is closed silently by a ${kind} server and keeps retrying`, T, async () => {
        const pull = await peer(kind, "pull", "bind", bindAddress(), serverOptions);
        const push = newPush({ curveServerKey: curveKeyPair().publicKey, curveSecretKey: client.secretKey, reconnectInterval: 50 });
        const hs = counter(push, "handshake");
        const failed = counter(push, "handshake:error");
        const auth = counter(push, "handshake:error:auth");
        push.connect(pull.endpoint);
        await failed.until(2);
        assert.equal(hs.seen.length, 0);
        assert.equal(auth.seen.length, 0, "a crypto failure is not an authentication verdict");
      });

      it(`a ${kind} client with the wrong server key never gets a handshake from our server`, T, async () => {
        const pull = newPull({ curveServer: true, curveSecretKey: server.secretKey });
        const hs = counter(pull, "handshake");
        const failed = counter(pull, "handshake:error");
        await pull.bind(bindAddress());
        await peer(kind, "push", "connect", pull.lastEndpoint!, {
          ...clientOptions,
          curveServerKey: curveKeyPair().publicKey,
          reconnectInterval: 50,
        });
        await failed.until(2);
        assert.equal(hs.seen.length, 0);
      });

      it(`a ${kind} client our allowlist denies gets ERROR 400 and stops reconnecting`, T, async () => {
        const pull = newPull({ curveServer: true, curveSecretKey: server.secretKey, curveAllow: [curveKeyPair().publicKey] });
        const denied = counter(pull, "handshake:error:auth");
        const accepts = counter(pull, "accept");
        await pull.bind(bindAddress());
        await peer(kind, "push", "connect", pull.lastEndpoint!, { ...clientOptions, reconnectInterval: 50 });
        assert.equal((await denied.until(1)).status, 400);
        await sleep(1000);
        assert.equal(accepts.seen.length, 1, `libzmq reconnected after the 400 (${accepts.seen.length} connections)`);
      });

      it(`our authenticate callback lets a ${kind} client in with a user id`, T, async () => {
        const pull = newPull({
          curveServer: true,
          curveSecretKey: server.secretKey,
          authenticate: async ({ publicKey }) => (publicKey === client.publicKey ? { status: 200, userId: kind } : false),
        });
        const hs = counter(pull, "handshake");
        await pull.bind(bindAddress());
        const push = await peer(kind, "push", "connect", pull.lastEndpoint!, clientOptions);
        await push.send(["in"]);
        assert.deepEqual((await pull.receive()).map(String), ["in"]);
        assert.equal((await hs.until(1)).userId, kind);
      });

      it(`a NULL ${kind} client is refused by our CURVE server, and our CURVE client by a NULL ${kind} server`, T, async () => {
        const pull = newPull({ curveServer: true, curveSecretKey: server.secretKey });
        const failed = counter(pull, "handshake:error");
        await pull.bind(bindAddress());
        await peer(kind, "push", "connect", pull.lastEndpoint!, { reconnectInterval: 50 });
        await failed.until(1);
        const nullPull = await peer(kind, "pull", "bind", bindAddress(), {});
        const push = newPush({ curveServerKey: server.publicKey, curveSecretKey: client.secretKey, reconnectInterval: 50 });
        const refused = counter(push, "handshake:error");
        push.connect(nullPull.endpoint);
        await refused.until(1);
        assert.equal(push.peers, 0);
      });
    });
  }
}

/** The ZAP server script: a pyzmq CURVE server whose ZAP handler answers every client with `status`. */
async function zapServer(status: string): Promise<{ endpoint: string; zapped: string[]; stop(): void }> {
  const script = path.join(__dirname, "peers", "pyzmq_zap_server.py");
  const child = spawn(pythonPath(), [script, "tcp://127.0.0.1:0", server.secretKey, status], { stdio: ["pipe", "pipe", "inherit"] });
  const killer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  const stop = () => {
    clearTimeout(killer);
    child.kill("SIGKILL");
  };
  cleanups.push(stop);
  const zapped: string[] = [];
  const endpoint = await within(
    new Promise<string>((resolve, reject) => {
      child.once("exit", (code) => reject(new Error(`ZAP server exited with ${code}`)));
      createInterface({ input: child.stdout! }).on("line", (line) => {
        const [word, arg] = line.split(" ");
        if (word === "ready") resolve(arg!);
        if (word === "zap") zapped.push(arg!);
      });
    }),
    GUARD_MS,
    "the pyzmq ZAP server",
  );
  return { endpoint, zapped, stop };
}

describe("CURVE with a pyzmq ZAP handler", () => {
  it("denying our client: we emit handshake:error:auth with 400", T, async () => {
    const zap = await zapServer("400");
    const push = newPush({ curveServerKey: server.publicKey, curveSecretKey: client.secretKey, reconnectInterval: 50 });
    const denied = counter(push, "handshake:error:auth");
    push.connect(zap.endpoint);
    assert.equal((await denied.until(1)).status, 400);
    // The handler reports on its stdout after it answers: our event can come first.
    await waitFor(() => zap.zapped.length >= 1, GUARD_MS, "the ZAP handler's report");
    assert.deepEqual(zap.zapped.slice(0, 1), [client.publicKey]);
  });

  it("answering 200: our client is in", T, async () => {
    const zap = await zapServer("200");
    const push = newPush({ curveServerKey: server.publicKey, curveSecretKey: client.secretKey });
    push.connect(zap.endpoint);
    await push.waitForPeers(1, { timeout: GUARD_MS });
    await waitFor(() => zap.zapped.length >= 1, GUARD_MS, "the ZAP handler's report");
    assert.equal(zap.zapped[0], client.publicKey);
  });
});
