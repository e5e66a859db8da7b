// sendTimeout / receiveTimeout 0 mean "never wait" (index.d.ts), also for a call made while
// earlier calls are still waiting in the socket's queue (e.g. the option was lowered to 0
// after they started).

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { trackSockets, within } from "./helpers/sockets";

const T = { timeout: 30_000 };
const { push, pull } = trackSockets();

function isCoded(code: string) {
  return (err: unknown) => {
    assert.ok(err instanceof Error, `expected an Error, got ${String(err)}`);
    assert.equal((err as NodeJS.ErrnoException).code, code, err.message);
    return true;
  };
}

describe("a zero timeout never waits, even behind calls that do", () => {
  it("send rejects with EAGAIN at once when sendTimeout became 0 while an earlier send waits", T, async () => {
    // No peer at all, so every send has to wait.
    const p = push({ linger: 0 });
    const first = p.send("waits for a peer");
    p.sendTimeout = 0;
    await assert.rejects(within(p.send("must not wait"), 5_000, "send with sendTimeout 0"), isCoded("EAGAIN"));
    // The earlier send keeps its own (infinite) wait until the socket closes.
    const firstEnds = assert.rejects(first, isCoded("EBADF"));
    await p.close();
    await firstEnds;
  });

  it("receive rejects with EAGAIN at once when receiveTimeout became 0 while an earlier receive waits", T, async () => {
    const q = pull();
    await q.bind(`inproc://zero-timeout-${process.pid}`);
    const first = q.receive();
    q.receiveTimeout = 0;
    await assert.rejects(within(q.receive(), 5_000, "receive with receiveTimeout 0"), isCoded("EAGAIN"));
    const firstEnds = assert.rejects(first, isCoded("EBADF"));
    await q.close();
    await firstEnds;
  });
});
