// Process lifetime: what keeps Node alive (a pending receive or send) and what must not (idle
// or observed sockets, sockets left open, a finished worker thread), and surviving a peer
// process that is SIGKILLed mid-stream. Each case runs in a child process (fixtures/).

import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import * as path from "node:path";
import { createInterface } from "node:readline";
import { after, describe, it } from "node:test";

import { Pull, Push } from "zeropipe";
import { freePort } from "./helpers/sockets";

const T = { timeout: 60_000 };
const FIXTURES = path.join(__dirname, "fixtures");
const REPO = path.join(__dirname, "..");
// Failure guard only: starting node + tsx can take seconds on a busy 2-core machine.
const EXIT_GUARD_MS = 20_000;

interface Fixture {
  child: ChildProcess;
  lines: string[];
  stderr(): string;
  /** Resolves with the first stdout line (already seen or future) matching `pred`. */
  line(pred: (l: string) => boolean, what: string, ms?: number): Promise<string>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const children: ChildProcess[] = [];
// A failed test must not leave children running (they would keep the runner alive).
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
});

function run(script: string, ...args: string[]): Fixture {
  const child = spawn(process.execPath, ["--import", "tsx", path.join(FIXTURES, script), ...args], {
    cwd: REPO,
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  const lines: string[] = [];
  const watchers: { pred: (l: string) => boolean; resolve: (l: string) => void }[] = [];
  let err = "";
  child.stderr!.on("data", (d) => (err += d));
  createInterface({ input: child.stdout! }).on("line", (l) => {
    lines.push(l);
    for (const w of watchers.splice(0)) {
      if (w.pred(l)) w.resolve(l);
      else watchers.push(w);
    }
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    lines,
    stderr: () => err,
    exited,
    line(pred, what, ms = EXIT_GUARD_MS) {
      const seen = lines.find(pred);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no "${what}" line from ${script} in ${ms} ms; stderr: ${err}`)), ms);
        watchers.push({
          pred,
          resolve: (l) => {
            clearTimeout(timer);
            resolve(l);
          },
        });
        void exited.then(({ code, signal }) => {
          clearTimeout(timer);
          reject(new Error(`${script} exited (${code ?? signal}) before "${what}"; stderr: ${err}`));
        });
      });
    },
  };
}

/** The fixture's exit, or a failure if it is still running after the guard. */
async function exitsByItself(f: Fixture, what: string) {
  let timer: NodeJS.Timeout;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      f.child.kill("SIGKILL");
      reject(new Error(`${what}: still running after ${EXIT_GUARD_MS} ms; stdout: ${f.lines.join(" | ")}`));
    }, EXIT_GUARD_MS);
  });
  try {
    return await Promise.race([f.exited, guard]);
  } finally {
    clearTimeout(timer!);
  }
}

async function kill(f: Fixture, signal: NodeJS.Signals = "SIGKILL") {
  f.child.kill(signal);
  return f.exited;
}

describe("what keeps the process alive", () => {
  for (const [script, what] of [
    ["pending-receive.ts", "a pending receive()"],
    ["pending-send.ts", "a pending send() with no peer"],
  ] as const) {
    it(`${what} keeps the process alive`, T, async () => {
      const f = run(script);
      await f.line((l) => l === "waiting", "waiting");
      // The one fixed wait in this file: "still alive after a while" has no event to await.
      await new Promise((r) => setTimeout(r, 1000));
      assert.equal(f.child.exitCode, null, `exited: ${f.stderr()}`);
      assert.equal(f.child.signalCode, null);
      const { signal } = await kill(f);
      assert.equal(signal, "SIGKILL", "it was our kill that ended it");
      assert.ok(!f.lines.some((l) => l.startsWith("unexpectedly")), f.lines.join(" | "));
    });
  }
});

describe("waiting for a peer keeps the process alive until the peer comes", () => {
  for (const mode of ["listener", "waitForPeers"]) {
    it(`${mode === "listener" ? "an events listener (as in zeromq.js)" : "waitForPeers()"} keeps it alive, then it exits by itself`, T, async () => {
      const f = run("await-peer.ts", mode);
      const endpoint = (await f.line((l) => l.startsWith("waiting "), "waiting")).slice("waiting ".length);
      // "Still alive after a while" has no event to await.
      await new Promise((r) => setTimeout(r, 1000));
      assert.equal(f.child.exitCode, null, `exited while waiting: ${f.stderr()}`);
      const pull = new Pull();
      pull.connect(endpoint);
      try {
        assert.deepEqual((await pull.receive()).map(String), ["hello"]);
        const { code, signal } = await exitsByItself(f, `await-peer ${mode}`);
        assert.equal(signal, null);
        assert.equal(code, 0, f.stderr());
        assert.deepEqual(f.lines, [`waiting ${endpoint}`, "ready 1"]);
      } finally {
        await pull.close();
      }
    });
  }
});

describe("what lets the process exit", () => {
  for (const proto of ["tcp", "ipc", "inproc"]) {
    it(`Push and Pull that exchanged a message over ${proto} and were closed: exits with code 0`, T, async () => {
      const f = run("exchange-and-close.ts", proto);
      const { code, signal } = await exitsByItself(f, "exchange-and-close");
      assert.equal(signal, null);
      assert.equal(code, 0, f.stderr());
      assert.deepEqual(f.lines, [`hello from ${proto}`]);
    });
  }

  for (const mode of ["idle", "connected", "observed"]) {
    it(`sockets never closed (${mode}) do not hold the event loop: exits with code 0`, T, async () => {
      const f = run("never-closed.ts", mode);
      const { code, signal } = await exitsByItself(f, `never-closed ${mode}`);
      assert.equal(signal, null);
      assert.equal(code, 0, f.stderr());
      assert.equal(f.lines.at(-1), `${mode}: done`);
    });
  }

  it("a worker thread that used Push/Pull and ended lets the process exit, its listener gone", T, async () => {
    const f = run("worker-main.ts", "end");
    const { code } = await exitsByItself(f, "worker-main end");
    assert.equal(code, 0, f.stderr());
    assert.deepEqual(f.lines, ["worker said: from the worker", "worker exited 0", "rebound the worker's address"]);
  });

  it("a worker thread terminated while waiting in receive() lets the process exit", T, async () => {
    const f = run("worker-main.ts", "terminate");
    const { code } = await exitsByItself(f, "worker-main terminate");
    assert.equal(code, 0, f.stderr());
    assert.equal(f.lines[0], "worker said: from the worker");
    assert.match(f.lines[1], /^worker exited \d+$/);
    assert.equal(f.lines[2], "rebound the worker's address");
  });
});

describe("a peer process killed with SIGKILL mid-stream", () => {
  it("does not break a Pull: it keeps receiving, in order, from the other Push process", T, async () => {
    const pull = new Pull();
    try {
      await pull.bind("tcp://127.0.0.1:*");
      const address = pull.lastEndpoint!;
      const a = run("pusher.ts", address, "A");
      const b = run("pusher.ts", address, "B");
      const counts = { A: 0, B: 0 };
      let nextB = 0;
      const take = async () => {
        const [tag, n] = (await pull.receive()).map(String) as ["A" | "B", string];
        counts[tag]++;
        if (tag === "B") {
          // A live connection loses nothing and reorders nothing.
          assert.equal(Number(n), nextB, "B's messages arrive in order, none missing");
          nextB++;
        }
        return tag;
      };
      while (counts.A < 20 || counts.B < 20) await take();

      const { signal } = await kill(a);
      assert.equal(signal, "SIGKILL");
      const bAtKill = counts.B;
      // Whatever A had in flight may still be drained; then only B.
      while (counts.B < bAtKill + 100) await take();
      const aAfter = counts.A;
      for (let i = 0; i < 50; i++) assert.equal(await take(), "B", "nothing more from the killed process");
      assert.equal(counts.A, aAfter);
      await kill(b);
    } finally {
      await pull.close();
    }
  });

  it("does not break a Push: it reconnects to the Pull process restarted on the same address", T, async () => {
    const address = `tcp://127.0.0.1:${await freePort()}`;
    const push = new Push({ reconnectInterval: 20, linger: 0 });
    try {
      const first = run("puller.ts", address);
      await first.line((l) => l === "bound", "bound");
      push.connect(address);
      for (let i = 0; i < 10; i++) await push.send(["before", String(i)]);
      await first.line((l) => l === "before 9", "before 9");
      assert.deepEqual(first.lines.slice(1), Array.from({ length: 10 }, (_, i) => `before ${i}`));

      assert.equal((await kill(first)).signal, "SIGKILL");
      const second = run("puller.ts", address);
      await second.line((l) => l === "bound", "bound");
      // Messages written to the dead connection are gone with it (as in libzmq); keep
      // sending until the new process hears us, then one more that must arrive.
      let n = 0;
      const heard = second.line((l) => l.startsWith("after "), "any message after the restart");
      let done = false;
      void heard.then(() => (done = true), () => (done = true));
      while (!done) {
        await push.send(["after", String(n++)]);
        await new Promise((r) => setTimeout(r, 20));
      }
      await heard;
      await push.send("final");
      await second.line((l) => l === "final", "final");
      const afterNs = second.lines.filter((l) => l.startsWith("after ")).map((l) => Number(l.split(" ")[1]));
      assert.deepEqual(afterNs, [...afterNs].sort((x, y) => x - y), "in order after the reconnect");
      await kill(second);
    } finally {
      await push.close();
    }
  });
});
