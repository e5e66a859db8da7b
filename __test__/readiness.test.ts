// Knowing when peers are there: `peers` counts completed handshakes, `waitForPeers()` waits
// for them, and a ventilator that waits spreads its jobs over every worker instead of giving
// them all to the first one to connect (the slow joiner). Also: a close that lingers says so.

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { PROTOS, bindFresh, freePort, receiveN, trackSockets, within } from "./helpers/sockets";

const T = { timeout: 30_000 };
const tracked = trackSockets();

describe("peers and waitForPeers()", () => {
  for (const proto of PROTOS) {
    it(`counts a peer only once its handshake completed, and not after it left (${proto})`, T, async () => {
      const push = tracked.push();
      const ep = await bindFresh(push, proto);
      assert.equal(push.peers, 0);
      const pull = tracked.pull();
      pull.connect(ep);
      await within(push.waitForPeers(1), 10_000, "the first peer");
      assert.equal(push.peers, 1);
      assert.equal(pull.peers, 1);
      await pull.close();
      const deadline = Date.now() + 10_000;
      while (push.peers !== 0) {
        assert.ok(Date.now() < deadline, "the departed peer is still counted");
        await new Promise((r) => setTimeout(r, 5));
      }
    });

    it(`a ventilator that waits for 4 workers gives each a quarter of 100 jobs (${proto})`, T, async () => {
      const push = tracked.push();
      const ep = await bindFresh(push, proto);
      const workers = [0, 1, 2, 3].map(() => tracked.pull());
      // Workers arrive one by one, as processes do; the first is long connected before the last.
      for (const w of workers) {
        w.connect(ep);
        await new Promise((r) => setTimeout(r, 20));
      }
      await within(push.waitForPeers(4), 10_000, "4 workers");
      for (let i = 0; i < 100; i++) await push.send(`job ${i}`);
      const counts = await Promise.all(workers.map(async (w) => (await receiveN(w, 25)).length));
      assert.deepEqual(counts, [25, 25, 25, 25]);
      for (const w of workers) assert.equal(w.readable, false, "a worker got more than its share");
    });
  }

  it("resolves at once when the peers are already there, and for a count of 0", T, async () => {
    const push = tracked.push();
    const pull = tracked.pull();
    pull.connect(await bindFresh(push, "inproc"));
    await within(push.waitForPeers(1), 5_000, "the peer");
    await within(push.waitForPeers(1), 100, "a peer already there");
    await within(tracked.push().waitForPeers(0), 100, "zero peers");
  });

  it("rejects with ETIMEDOUT after its timeout, naming how many peers came", T, async () => {
    const push = tracked.push();
    push.connect(`tcp://127.0.0.1:${await freePort()}`);
    await assert.rejects(push.waitForPeers(2, { timeout: 50 }), (e: NodeJS.ErrnoException) => {
      assert.equal(e.code, "ETIMEDOUT");
      assert.match(e.message, /0 of 2 peers after 50 ms/);
      return true;
    });
  });

  it("rejects with the signal's reason when aborted, and with EBADF when the socket closes", T, async () => {
    const push = tracked.push();
    const ac = new AbortController();
    const aborted = push.waitForPeers(1, { signal: ac.signal });
    ac.abort(new Error("no longer needed"));
    await assert.rejects(aborted, /no longer needed/);
    const closing = push.waitForPeers(1);
    void push.close();
    await assert.rejects(closing, { code: "EBADF" });
    await assert.rejects(push.waitForPeers(1), { code: "EBADF" });
  });

  it("refuses a count or timeout that is not a number of peers or ms with a TypeError", T, async () => {
    const push = tracked.push();
    for (const bad of [-1, 1.5, NaN, "2" as unknown as number]) {
      await assert.rejects(push.waitForPeers(bad), TypeError);
    }
    await assert.rejects(push.waitForPeers(1, { timeout: -5 }), TypeError);
  });
});

describe("a close that lingers is not silent", () => {
  /** The ZEROPIPE_LINGER warnings emitted while `fn` runs. */
  async function warningsDuring(fn: () => Promise<void>): Promise<Error[]> {
    const seen: Error[] = [];
    const listener = (w: Error & { code?: string }) => {
      if (w.code === "ZEROPIPE_LINGER") seen.push(w);
    };
    process.on("warning", listener);
    try {
      await fn();
      // 'warning' is emitted on the next tick after emitWarning.
      await new Promise((r) => setImmediate(r));
    } finally {
      process.off("warning", listener);
    }
    return seen;
  }

  it("warns once, naming the endpoint, the count and the linger, when no peer can take what is queued", T, async () => {
    const push = tracked.push({ linger: 100 });
    const ep = `tcp://127.0.0.1:${await freePort()}`;
    push.connect(ep);
    for (let i = 0; i < 3; i++) await push.send(`for nobody ${i}`);
    const warnings = await warningsDuring(() => push.close());
    assert.equal(warnings.length, 1, warnings.map(String).join("\n"));
    assert.ok(warnings[0]!.message.includes(ep), warnings[0]!.message);
    assert.match(warnings[0]!.message, /up to 100 ms \(linger\) for 3 queued message\(s\) that no peer can take now/);
  });

  it("says nothing when there is nothing to flush, or linger is 0", T, async () => {
    const [a, b] = [tracked.push({ linger: 100 }), tracked.push({ linger: 0 })];
    b.connect(`tcp://127.0.0.1:${await freePort()}`);
    await b.send("dropped at close");
    const warnings = await warningsDuring(async () => {
      await a.close();
      await b.close();
    });
    assert.deepEqual(warnings, []);
  });
});
