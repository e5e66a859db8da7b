// The article's usage script (examples/usage.ts, unchanged but for importing "zeropipe")
// and the `npm run demo` script, run as a user runs them. Each child gets its own endpoint
// through ZEROPIPE_ENDPOINT so test files running in parallel never meet on port 7777; the
// default endpoint itself is exercised in article.test.ts, which owns that port.

import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";

import {
  assertArticleOutput,
  delay,
  runScript,
  runTs,
  type ScriptRun,
} from "./fixtures/module-scripts";
import { fixedEndpoints } from "./helpers/sockets";



const uniqueEndpoint = fixedEndpoints("demo");

const runs: ScriptRun[] = [];

// A failed assertion must not leave a script (which never exits by itself) running.
afterEach(async () => {
  await Promise.all(runs.splice(0).map((r) => r.kill()));
});

describe("examples/usage.ts (the article's usage on the module API)", () => {
  for (const proto of ["tcp", "ipc", "inproc"] as const) {
    it(`prints push 1..10, then Received Job ok 1..10 in order, and keeps waiting for jobs over ${proto}`, async () => {
      const run = runTs("examples/usage.ts", { ZEROPIPE_ENDPOINT: await uniqueEndpoint(proto) });
      runs.push(run);
      const lines = await run.waitForLines(20, 20_000);
      assertArticleOutput(lines);
      // Like a server, a pull() waiting for jobs keeps the process alive.
      await delay(500);
      assert.equal(run.running(), true, "the script is still running after the 10th job");
      assert.equal(run.lines.length, 20, "nothing printed after the 10th job");
      assert.equal(run.stderr(), "");
      const exit = await run.kill();
      assert.equal(exit.signal, "SIGTERM", "ended by our kill, not by itself");
    });
  }
});

describe("examples/demo.ts (npm run demo)", () => {
  it("prints the same output through `npm run demo` and exits by itself with code 0", async () => {
    const run = runScript("npm", ["run", "--silent", "demo"], {
      ZEROPIPE_ENDPOINT: await uniqueEndpoint("tcp"),
    });
    runs.push(run);
    await run.waitForLines(20, 30_000);
    const exit = await run.exitWithin(20_000);
    assert.deepEqual(exit, { code: 0, signal: null }, `stderr:\n${run.stderr()}`);
    assertArticleOutput(run.lines);
    // npm may warn about the user's npmrc; anything else on stderr is the script's.
    const stderr = run
      .stderr()
      .split("\n")
      .filter((l) => l !== "" && !l.startsWith("npm warn"));
    assert.deepEqual(stderr, []);
  });

  for (const proto of ["ipc", "inproc"] as const) {
    it(`prints the same output and exits by itself with code 0 over ${proto}`, async () => {
      const run = runTs("examples/demo.ts", { ZEROPIPE_ENDPOINT: await uniqueEndpoint(proto) });
      runs.push(run);
      const exit = await run.exitWithin(20_000);
      assert.deepEqual(exit, { code: 0, signal: null }, `stderr:\n${run.stderr()}`);
      assertArticleOutput(run.lines);
      assert.equal(run.stderr(), "");
    });
  }
});
