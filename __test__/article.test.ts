// The article, run as written: examples/article/zero.ts is its module with only the import
// line changed to "zeropipe", and examples/article/usage.ts its usage script. The article
// promises: "push 1..10" almost at once, then a "Received Job" line every 2 seconds (its
// handler sleeps 2000 ms per job).
//
// Both tests here need port 7777 (the article hard-codes tcp://*:7777, and it is the module
// API's default endpoint), so they live in one file and run one after the other; no other
// test file uses that port.

import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";

import { assertArticleOutput, delay, portIsFree, runTs, type ScriptRun } from "./fixtures/module-scripts";

const ARTICLE_PORT = 7777;

const runs: ScriptRun[] = [];

afterEach(async () => {
  await Promise.all(runs.splice(0).map((r) => r.kill()));
});

/**
 * Both scripts need the port for themselves. Another run of this suite may hold it for a
 * moment, so wait a little; a port that stays taken fails the test (it cannot run as the
 * article wrote it) rather than skipping it.
 */
async function requirePortFree(): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await portIsFree(ARTICLE_PORT))) {
    if (Date.now() > deadline) {
      assert.fail(`port ${ARTICLE_PORT} stayed in use by another program; the article's scripts need to bind it`);
    }
    await delay(250);
  }
}

describe("the article's zero.ts and usage script on zeropipe", { concurrency: 1 }, () => {
  it(
    "prints push 1..10 almost at once, then Received Job ok 1..10 in order about 2 s apart, and keeps running",
    { timeout: 60_000 },
    async () => {
      await requirePortFree();
      // The article's script takes no endpoint from the environment; make sure of it anyway.
      const run = runTs("examples/article/usage.ts", { ZEROPIPE_ENDPOINT: undefined });
      runs.push(run);
      const lines = await run.waitForLines(20, 45_000);
      assertArticleOutput(lines);

      const pushes = lines.slice(0, 10);
      const jobs = lines.slice(10);
      assert.ok(
        pushes[9].at - pushes[0].at <= 1500,
        `push 1..10 within 1.5 s (took ${pushes[9].at - pushes[0].at} ms)`,
      );
      // The handler sleeps 2000 ms before logging each job, one job at a time.
      assert.ok(jobs[0].at - pushes[0].at >= 1500, `first job logged ${jobs[0].at - pushes[0].at} ms after push 1`);
      for (let i = 1; i < jobs.length; i++) {
        const gap = jobs[i].at - jobs[i - 1].at;
        assert.ok(gap >= 1500, `job ${i + 1} came ${gap} ms after job ${i}; the handler sleeps 2000 ms`);
        // Jobs are already queued at the worker: nothing but the sleep should separate them.
        assert.ok(gap <= 6000, `job ${i + 1} came ${gap} ms after job ${i}`);
      }

      // zero.ts's pull() loops forever over its socket, so the script stays up, like a server.
      await delay(500);
      assert.equal(run.running(), true, "the script is still running after the 10th job");
      assert.equal(run.lines.length, 20, "nothing printed after the 10th job");
      assert.equal(run.stderr(), "");
      const exit = await run.kill();
      assert.equal(exit.signal, "SIGTERM");
    },
  );

  it("runs examples/usage.ts on the default endpoint tcp://127.0.0.1:7777 when ZEROPIPE_ENDPOINT is unset", async () => {
    await requirePortFree();
    const run = runTs("examples/usage.ts", { ZEROPIPE_ENDPOINT: undefined });
    runs.push(run);
    const lines = await run.waitForLines(20, 20_000);
    assertArticleOutput(lines);
    // Proof that it is the default port the script bound, not some other endpoint.
    assert.equal(await portIsFree(ARTICLE_PORT), false, `the script listens on port ${ARTICLE_PORT}`);
    await delay(500);
    assert.equal(run.running(), true, "a waiting pull() keeps the script alive");
    assert.equal(run.lines.length, 20);
    assert.equal(run.stderr(), "");
    await run.kill();
    assert.equal(await portIsFree(ARTICLE_PORT), true, "the port is released once the script is gone");
  });
});
