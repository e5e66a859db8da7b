// zeropipe as users get it: `require` and `import` both work and are one and the same API,
// from inside the repository (package self-reference) and from a project that installed
// the packed tarball; and the public types accept right and refuse wrong usages.

import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";

const REPO = path.resolve(__dirname, "..");
const run = promisify(execFile);

/** The values index.d.ts declares (types-check.ts pins the same list on the type side). */
const EXPORTS = ["Channel", "DEFAULT_ENDPOINT", "JobStream", "Pool", "Pull", "Push", "Worker", "channel", "close", "configure", "curveKeyPair", "pull", "push", "serve", "z85"];

interface NodeResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node <args>` in `cwd` and waits for it to exit by itself (a hang fails the test). */
function node(args: string[], cwd: string, timeoutMs = 20_000): Promise<NodeResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`node ${args.join(" ")} did not exit within ${timeoutMs} ms\nstdout:${stdout}\nstderr:${stderr}`));
    }, timeoutMs);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

// Both scripts: a Push→Pull round trip on the sockets, then one job through the module API,
// both over inproc; the process must exit by itself once everything is closed.
const CJS_ROUND_TRIP = `
const z = require("zeropipe");
(async () => {
  const sender = new z.Push();
  const receiver = new z.Pull();
  await sender.bind("inproc://packaging-cjs");
  receiver.connect("inproc://packaging-cjs");
  await sender.send(["from require", Buffer.from([0, 1, 255])]);
  const message = await receiver.receive();
  await Promise.all([sender.close(), receiver.close()]);

  z.configure({ endpoint: "inproc://packaging-cjs-module" });
  const queued = z.push("module job");
  const step = await z.pull()[Symbol.asyncIterator]().next();
  await queued;
  await z.close();
  console.log(JSON.stringify({ message: message.map((b) => b.toString("hex")), job: step.value.map(String) }));
})().catch((err) => { console.error(err); process.exitCode = 1; });
`;

const ESM_ROUND_TRIP = `
import { push, pull, Push, Pull, configure, close } from "zeropipe";
const sender = new Push();
const receiver = new Pull();
await sender.bind("inproc://packaging-esm");
receiver.connect("inproc://packaging-esm");
await sender.send(["from import", Buffer.from([0, 1, 255])]);
const message = await receiver.receive();
await Promise.all([sender.close(), receiver.close()]);

configure({ endpoint: "inproc://packaging-esm-module" });
const queued = push("module job");
let job;
for await (const frames of pull()) {
  job = frames.map(String);
  break;
}
await queued;
await close();
console.log(JSON.stringify({ message: message.map((b) => b.toString("hex")), job }));
`;

// Compares the two entries object by object, and shows they share the module sockets: a
// push() through import makes configure() through require refuse.
const SAME_API = `
import * as esm from "zeropipe";
import esmDefault from "zeropipe";
import { createRequire } from "node:module";
const cjs = createRequire(import.meta.url)("zeropipe");
const names = Object.keys(esm).filter((k) => k !== "default").sort();
esm.configure({ endpoint: "inproc://packaging-same-api" });
const pending = esm.push("waits for a worker").catch((err) => err.code);
let configureCode = null;
try {
  cjs.configure({ endpoint: "inproc://elsewhere" });
} catch (err) {
  configureCode = err.code;
}
await cjs.close();
console.log(JSON.stringify({
  esmNames: names,
  cjsNames: Object.keys(cjs).sort(),
  different: names.filter((k) => esm[k] !== cjs[k]),
  defaultIsCjs: esmDefault === cjs,
  kinds: Object.fromEntries(names.map((k) => [k, typeof esm[k]])),
  configureCode,
  pendingPush: await pending,
}));
`;

const EXPECTED_ROUND_TRIP = (word: string) => ({ message: [Buffer.from(word).toString("hex"), "0001ff"], job: ["module job"] });

let installed: string;

// A consumer project with the packed tarball unpacked into node_modules, as `npm install`
// would leave it: only the files package.json publishes, no self-reference to the repo.
before(async () => {
  installed = mkdtempSync(path.join(os.tmpdir(), "zeropipe-packaging-"));
  const { stdout } = await run("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", installed], {
    cwd: REPO,
    maxBuffer: 16 * 1024 * 1024,
  });
  const [{ filename }] = JSON.parse(stdout) as Array<{ filename: string }>;
  const target = path.join(installed, "node_modules", "zeropipe");
  mkdirSync(target, { recursive: true });
  await run("tar", ["-xzf", path.join(installed, filename), "-C", target, "--strip-components=1"]);
  writeFileSync(path.join(installed, "package.json"), JSON.stringify({ name: "consumer", private: true }));
});

after(() => {
  if (installed) rmSync(installed, { recursive: true, force: true });
});

describe("packaging", () => {
  it("publishes the entry files that package.json points at, and the native addon", () => {
    const files = readdirSync(path.join(installed, "node_modules", "zeropipe")).sort();
    for (const f of ["index.js", "index.mjs", "index.d.ts", "binding.js", "package.json"]) {
      assert.ok(files.includes(f), `${f} is in the tarball (got ${files.join(", ")})`);
    }
    assert.ok(
      files.some((f) => /^zeropipe\..+\.node$/.test(f)),
      `a zeropipe.<platform>.node addon is in the tarball (got ${files.join(", ")})`,
    );
  });

  for (const [where, cwd] of [
    ["inside the repository", () => REPO],
    ["from an installed tarball", () => installed],
  ] as const) {
    describe(where, () => {
      it("does a Push→Pull round trip and a module push()/pull() through require()", async () => {
        const r = await node(["-e", CJS_ROUND_TRIP], cwd());
        assert.equal(r.stderr, "");
        assert.equal(r.code, 0);
        assert.deepEqual(JSON.parse(r.stdout), EXPECTED_ROUND_TRIP("from require"));
      });

      it("does a Push→Pull round trip and a module push()/pull() through import", async () => {
        const r = await node(["--input-type=module", "-e", ESM_ROUND_TRIP], cwd());
        assert.equal(r.stderr, "");
        assert.equal(r.code, 0);
        assert.deepEqual(JSON.parse(r.stdout), EXPECTED_ROUND_TRIP("from import"));
      });

      it("gives import and require the very same functions and module state", async () => {
        const r = await node(["--input-type=module", "-e", SAME_API], cwd());
        assert.equal(r.stderr, "");
        assert.equal(r.code, 0);
        assert.deepEqual(JSON.parse(r.stdout), {
          esmNames: EXPORTS,
          cjsNames: EXPORTS,
          different: [],
          defaultIsCjs: true,
          kinds: {
            Channel: "function",
            DEFAULT_ENDPOINT: "string",
            JobStream: "function",
            Pool: "function",
            Pull: "function",
            Push: "function",
            Worker: "function",
            channel: "function",
            close: "function",
            configure: "function",
            curveKeyPair: "function",
            pull: "function",
            push: "function",
            serve: "function",
            z85: "object",
          },
          configureCode: "EINVAL",
          pendingPush: "EBADF",
        });
      });

      it("exposes package.json but refuses deep imports outside the exports map", async () => {
        const r = await node(
          [
            "-e",
            `console.log(require("zeropipe/package.json").name);
             try { require("zeropipe/binding.js"); console.log("deep import allowed"); }
             catch (err) { console.log(err.code); }`,
          ],
          cwd(),
        );
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(r.stdout.trim().split("\n"), ["zeropipe", "ERR_PACKAGE_PATH_NOT_EXPORTED"]);
      });
    });
  }
});

describe("TypeScript types", () => {
  const tsc = (args: string[]) =>
    run("npx", ["--no-install", "tsc", ...args], { cwd: REPO, maxBuffer: 16 * 1024 * 1024 }).then(
      ({ stdout }) => ({ ok: true, out: stdout }),
      (err: { stdout?: string; stderr?: string }) => ({ ok: false, out: `${err.stdout ?? ""}${err.stderr ?? ""}` }),
    );

  it("checks the types fixture as part of the project (tsc -p tsconfig.json)", async () => {
    const checked = await tsc(["-p", "tsconfig.json", "--noEmit", "--listFiles"]);
    assert.ok(checked.ok, checked.out);
    assert.match(checked.out, /\/__test__\/fixtures\/types-check\.ts$/m, "the fixture is part of the project");
  });

  it("accepts the public API and refuses each wrong usage, as CommonJS and as an ES module", async () => {
    // Every `@ts-expect-error` in the fixtures must meet an error, or tsc fails (TS2578).
    const checked = await tsc(["-p", "__test__/fixtures/types-tsconfig.json", "--noEmit", "--listFiles"]);
    assert.ok(checked.ok, checked.out);
    assert.match(checked.out, /\/types-check\.ts$/m);
    assert.match(checked.out, /\/types-esm\.mts$/m);
    assert.ok(checked.out.split("\n").includes(path.join(REPO, "index.d.ts")), "zeropipe resolves to the package's own index.d.ts");
  });
});
