// zeropipe as users get it: `require` and `import` both work and are one and the same API,
// from inside the repository (package self-reference) and from a project with the release
// tarballs unpacked into node_modules; and the release packages are laid out as the loader
// expects. (install.test.ts installs the same tarballs with npm, with no Rust on PATH;
// types.test.ts checks the public types.)
//
// The tarballs are what the release workflow publishes, made the same way (scripts/
// release.mjs pack): the main package, which carries no binary, and this platform's
// package, which carries only the binary.

import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";

import { parseTriple } from "@napi-rs/cli";

import { PREBUILT_PLATFORMS } from "../lib/native";
import { HOST, MANIFEST, node, packRelease, REPO, tarballFiles, unpack } from "./fixtures/release-tarballs";

/** The values index.d.ts declares (types-check.ts pins the same list on the type side). */
const EXPORTS = ["Channel", "DEFAULT_ENDPOINT", "JobStream", "Pool", "Pull", "Push", "Worker", "channel", "close", "configure", "curveKeyPair", "pull", "push", "serve", "z85"];

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

let work: string;
/** The two release tarballs: the main package and this platform's package. */
let mainTarball: string;
let platformTarball: string;
/** A project with both tarballs unpacked into node_modules. */
let installed: string;

before(async () => {
  work = mkdtempSync(path.join(os.tmpdir(), "zeropipe-packaging-"));
  ({ mainTarball, platformTarball } = await packRelease(work));
  installed = path.join(work, "unpacked");
  await unpack(mainTarball, path.join(installed, "node_modules", "zeropipe"));
  await unpack(platformTarball, path.join(installed, "node_modules", `zeropipe-${HOST}`));
  writeFileSync(path.join(installed, "package.json"), JSON.stringify({ name: "consumer", private: true }));
});

after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("the release packages", () => {
  it("has a prebuilt package for each napi target, named as the loader and the error name them", () => {
    const fromTargets = MANIFEST.napi.targets.map((t) => parseTriple(t).platformArchABI);
    assert.deepEqual([...PREBUILT_PLATFORMS].sort(), [...fromTargets].sort());
    assert.deepEqual(readdirSync(path.join(REPO, "npm")).sort(), [...fromTargets].sort());
    const loader = readFileSync(path.join(REPO, "binding.js"), "utf8");
    for (const p of fromTargets) {
      const pkg = JSON.parse(readFileSync(path.join(REPO, "npm", p, "package.json"), "utf8"));
      assert.equal(pkg.name, `zeropipe-${p}`);
      assert.equal(pkg.version, MANIFEST.version, `${pkg.name} is at zeropipe's version`);
      assert.deepEqual(pkg.files, [`zeropipe.${p}.node`]);
      assert.equal(pkg.main, `zeropipe.${p}.node`);
      assert.ok(loader.includes(`require('zeropipe-${p}')`), `binding.js loads zeropipe-${p}`);
    }
  });

  it("the main package carries no binary and lists every platform package at its own version", async () => {
    const files = await tarballFiles(mainTarball);
    for (const f of ["index.js", "index.mjs", "index.d.ts", "binding.js", "binding.d.ts", "lib/native.js", "package.json", "README.md"]) {
      assert.ok(files.includes(f), `${f} is in the main tarball (got ${files.join(", ")})`);
    }
    assert.deepEqual(files.filter((f) => f.endsWith(".node")), [], "no binary in the main tarball");
    const pkg = JSON.parse(readFileSync(path.join(installed, "node_modules", "zeropipe", "package.json"), "utf8"));
    assert.deepEqual(
      pkg.optionalDependencies,
      Object.fromEntries(PREBUILT_PLATFORMS.map((p) => [`zeropipe-${p}`, MANIFEST.version])),
    );
    assert.equal(pkg.scripts.prepublishOnly, undefined, "the guard against publishing the checkout is not published");
  });

  it(`the ${HOST} package carries only its binary`, async () => {
    assert.deepEqual(await tarballFiles(platformTarball), ["README.md", `zeropipe.${HOST}.node`, "package.json"].sort());
  });
});

describe("packaging", () => {
  for (const [where, cwd] of [
    ["inside the repository", () => REPO],
    ["from the unpacked release tarballs", () => installed],
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
