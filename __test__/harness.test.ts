// Proves the interop harness against itself: only real libzmq peers (pyzmq and
// zeromq.js) talk to each other here, so when an engine test fails later the
// harness is not the suspect.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as path from "node:path";
import { afterEach, describe, test } from "node:test";

import { pythonPath, startPeer, uniqueIpc, uniqueTcp, type Peer, type PeerKind } from "./helpers/peer";

type Transport = "tcp" | "ipc";

const started: Peer[] = [];

async function peer(...args: Parameters<typeof startPeer>): Promise<Peer> {
  const p = await startPeer(...args);
  started.push(p);
  return p;
}

// A failed assertion must not leave peers behind for the next test to trip over.
afterEach(async () => {
  await Promise.all(started.splice(0).map((p) => p.kill()));
});

/** Address a binder can use: an ephemeral TCP port, or a fresh IPC path. */
function bindAddress(transport: Transport): string {
  return transport === "tcp" ? "tcp://127.0.0.1:0" : uniqueIpc();
}

/** A fixed address that survives a peer restart. */
function stableAddress(transport: Transport): string {
  return transport === "tcp" ? uniqueTcp() : uniqueIpc();
}

const everyByte = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
const MULTIPART = [Buffer.from("head"), Buffer.alloc(0), everyByte, Buffer.from("tail")];

const other = (kind: PeerKind): PeerKind => (kind === "pyzmq" ? "zeromqjs" : "pyzmq");

for (const transport of ["tcp", "ipc"] as const) {
  describe(`over ${transport}`, () => {
    for (const pushKind of ["pyzmq", "zeromqjs"] as const) {
      const pullKind = other(pushKind);
      for (const binder of ["push", "pull"] as const) {
        const pushMode = binder === "push" ? "bind" : "connect";
        const pullMode = binder === "pull" ? "bind" : "connect";
        test(`${pushKind} PUSH (${pushMode}) delivers a multipart message with an empty frame intact to ${pullKind} PULL (${pullMode})`, async () => {
          const bound = await peer(binder === "push" ? pushKind : pullKind, binder, "bind", bindAddress(transport));
          if (transport === "tcp") assert.match(bound.endpoint, /^tcp:\/\/127\.0\.0\.1:[1-9]\d*$/);
          const connecting = await peer(
            binder === "push" ? pullKind : pushKind,
            binder === "push" ? "pull" : "push",
            "connect",
            bound.endpoint,
          );
          const [push, pull] = binder === "push" ? [bound, connecting] : [connecting, bound];

          await push.send(MULTIPART);
          await push.send(["second"]);
          const [first, second] = await pull.messages(2);
          assert.deepEqual(first, MULTIPART);
          assert.deepEqual(second, [Buffer.from("second")]);

          await push.close();
          await pull.close();
          assert.equal(pull.buffered, 0, "no stray messages");
        });
      }
    }

    for (const crashKind of ["pyzmq", "zeromqjs"] as const) {
      const survivorKind = other(crashKind);

      test(`${survivorKind} PUSH (connect) reaches a ${crashKind} PULL that was SIGKILLed and restarted on the same address`, async () => {
        const address = stableAddress(transport);
        const pullBefore = await peer(crashKind, "pull", "bind", address);
        const push = await peer(survivorKind, "push", "connect", pullBefore.endpoint, { reconnectInterval: 50 });
        await push.send(["before crash"]);
        assert.deepEqual(await pullBefore.nextMessage(), [Buffer.from("before crash")]);

        await pullBefore.kill();
        const pullAfter = await peer(crashKind, "pull", "bind", address);
        assert.equal(pullAfter.endpoint, pullBefore.endpoint);
        await push.send(["after restart"]);
        assert.deepEqual(await pullAfter.nextMessage(), [Buffer.from("after restart")]);

        await push.close();
        await pullAfter.close();
      });

      test(`${survivorKind} PULL (connect) receives from a ${crashKind} PUSH that was SIGKILLed and restarted on the same address`, async () => {
        const address = stableAddress(transport);
        const pushBefore = await peer(crashKind, "push", "bind", address);
        const pull = await peer(survivorKind, "pull", "connect", pushBefore.endpoint, { reconnectInterval: 50 });
        await pushBefore.send(["before crash"]);
        assert.deepEqual(await pull.nextMessage(), [Buffer.from("before crash")]);

        await pushBefore.kill();
        const pushAfter = await peer(crashKind, "push", "bind", address);
        // A bound PUSH holds the message until the PULL has reconnected, so
        // this resolving already shows the reconnect happened.
        await pushAfter.send(["after restart"]);
        assert.deepEqual(await pull.nextMessage(), [Buffer.from("after restart")]);

        await pushAfter.close();
        await pull.close();
      });
    }
  });
}

describe("harness helpers", () => {
  test("uniqueTcp and uniqueIpc never hand out the same address twice", () => {
    const tcp = Array.from({ length: 20 }, uniqueTcp);
    const ipc = Array.from({ length: 20 }, uniqueIpc);
    assert.equal(new Set(tcp).size, tcp.length);
    assert.equal(new Set(ipc).size, ipc.length);
    for (const a of tcp) assert.match(a, /^tcp:\/\/127\.0\.0\.1:\d+$/);
    for (const a of ipc) assert.match(a, new RegExp(`^ipc:///tmp/zeropipe-test-${process.pid}-\\d+\\.sock$`));
  });

  for (const kind of ["pyzmq", "zeromqjs"] as const) {
    test(`a ${kind} PUSH send stays pending while no PULL is connected and completes once one connects`, async () => {
      const push = await peer(kind, "push", "bind", uniqueIpc());
      let accepted = false;
      const sending = push.send(["waited"]).then(() => {
        accepted = true;
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(accepted, false, "a bound PUSH with no peers has nowhere to queue the message");

      const pull = await peer(other(kind), "pull", "connect", push.endpoint);
      await sending;
      assert.deepEqual(await pull.nextMessage(), [Buffer.from("waited")]);
      await push.close();
      await pull.close();
    });

    test(`a ${kind} peer accepts libzmq's ":*" spelling for an ephemeral port`, async () => {
      const pull = await peer(kind, "pull", "bind", "tcp://127.0.0.1:*");
      assert.match(pull.endpoint, /^tcp:\/\/127\.0\.0\.1:[1-9]\d*$/);
      await pull.close();
    });

    test(`a ${kind} peer that rejects its options fails startPeer with the peer's stderr in the error`, async () => {
      await assert.rejects(
        startPeer(kind, "push", "bind", "tcp://127.0.0.1:0", { receiveHighWaterMark: 1 }),
        (err: Error) => /exited unexpectedly before it was ready/.test(err.message) && /receiveHighWaterMark/.test(err.message),
      );
    });

    test(`waiting in vain on a ${kind} PULL times out with a descriptive error`, async () => {
      const pull = await peer(kind, "pull", "bind", uniqueIpc());
      await assert.rejects(pull.nextMessage(200), (err: Error) => {
        assert.match(err.message, new RegExp(`${kind} pull peer \\(pid ${pull.pid}, bind ipc://`));
        assert.match(err.message, /0 of 1 expected message\(s\) arrived within 200 ms/);
        assert.match(err.message, /stderr:/);
        return true;
      });
      await pull.close();
    });

    test(`a ${kind} peer exits on its own when its stdin closes, even with a send blocked`, async () => {
      // Spawned by hand: the helper deliberately never closes stdin early.
      const script = kind === "pyzmq" ? "pyzmq_peer.py" : "zeromqjs_peer.mjs";
      const command = kind === "pyzmq" ? pythonPath() : process.execPath;
      const child = spawn(command, [path.join(__dirname, "peers", script), "push", "bind", "tcp://127.0.0.1:0"], {
        stdio: ["pipe", "pipe", "inherit"],
      });
      const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
      const ready = new Promise<void>((resolve) => child.stdout.once("data", () => resolve()));
      await ready;
      // No PULL ever connects, so this send can never complete.
      child.stdin.write(`send ${JSON.stringify([Buffer.from("stuck").toString("base64")])}\n`);
      child.stdin.end();
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      const code = await exited;
      clearTimeout(timer);
      assert.equal(code, 0, "exited by itself rather than being killed after 5 s");
    });
  }
});
