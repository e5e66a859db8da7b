// zeropipe as users get it: `require` and `import` both work and are one and the same API,
// from inside the repository (package self-reference) and from a project that installed
// the release tarballs; and the public types accept right and refuse wrong usages.
//
// The tarballs are what the release workflow publishes, made the same way (scripts/
// release.mjs pack): the main package, which carries no binary, and this platform's
// package, which carries only the binary. They are installed twice: unpacked into
// node_modules (the API checks), and by `npm install` in a project whose PATH holds node and
// npm and no Rust toolchain (the ten-job demo, a round trip, and the error a user gets when
// the platform package is missing or broken).

import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";

import { parseTriple } from "@napi-rs/cli";
import ts from "typescript";

import { hostPlatform, PREBUILT_PLATFORMS, RUST_FOR_SOURCE_BUILD } from "../lib/native";
import { assertArticleOutput } from "./fixtures/module-scripts";
import { freePort } from "./helpers/sockets";

const REPO = path.resolve(__dirname, "..");
const run = promisify(execFile);

/** The values index.d.ts declares (types-check.ts pins the same list on the type side). */
const EXPORTS = ["DEFAULT_ENDPOINT", "JobStream", "Pull", "Push", "close", "configure", "pull", "push"];

interface NodeResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `node <args>` (or another command) in `cwd` and waits for it to exit by itself; one
 * that has not within `timeoutMs` is killed and fails the test.
 */
function node(args: string[], cwd: string, timeoutMs = 20_000, env?: NodeJS.ProcessEnv, command = process.execPath): Promise<NodeResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env: env ?? process.env, stdio: ["ignore", "pipe", "pipe"] });
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

let work: string;
/** The two release tarballs: the main package and this platform's package. */
let mainTarball: string;
let platformTarball: string;
/** A project with both tarballs unpacked into node_modules. */
let installed: string;

const HOST = hostPlatform().name;
const MANIFEST = JSON.parse(readFileSync(path.join(REPO, "package.json"), "utf8")) as {
  version: string;
  files: string[];
  napi: { targets: string[] };
};

/** The file names inside a tarball, without the leading `package/`. */
async function tarballFiles(tarball: string): Promise<string[]> {
  const { stdout } = await run("tar", ["-tzf", tarball]);
  return stdout.trim().split("\n").map((f) => f.replace(/^package\//, "")).sort();
}

async function unpack(tarball: string, into: string): Promise<void> {
  mkdirSync(into, { recursive: true });
  await run("tar", ["-xzf", tarball, "-C", into, "--strip-components=1"]);
}

before(async () => {
  work = mkdtempSync(path.join(os.tmpdir(), "zeropipe-packaging-"));
  // This checkout's build is the one binary there is here, as a CI build job's artifact.
  const artifacts = path.join(work, "artifacts", `bindings-${HOST}`);
  mkdirSync(artifacts, { recursive: true });
  copyFileSync(path.join(REPO, `zeropipe.${HOST}.node`), path.join(artifacts, `zeropipe.${HOST}.node`));
  const { stdout } = await run(
    process.execPath,
    ["scripts/release.mjs", "pack", "--artifacts", path.dirname(artifacts), "--out", path.join(work, "tarballs"), "--only", HOST],
    { cwd: REPO, maxBuffer: 16 * 1024 * 1024, timeout: 120_000 },
  );
  [mainTarball, platformTarball] = JSON.parse(stdout.trim().split("\n").at(-1)!) as string[];

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
            DEFAULT_ENDPOINT: "string",
            JobStream: "function",
            Pull: "function",
            Push: "function",
            close: "function",
            configure: "function",
            pull: "function",
            push: "function",
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

/**
 * npm's CLI script, run with this node: next to node in a Node.js install, else the one
 * that runs the tests (npm sets npm_execpath), else the `npm` on PATH (the Node versions of
 * scripts/node-matrix.sh come without npm).
 */
function findNpmCli(): string {
  const candidates = [
    path.join(path.dirname(realpathSync(process.execPath)), "..", "lib", "node_modules", "npm", "bin", "npm-cli.js"),
    process.env.npm_execpath ?? "",
    ...(process.env.PATH ?? "").split(path.delimiter).map((dir) => path.join(dir, "npm")),
  ];
  for (const c of candidates) {
    if (c && existsSync(c)) {
      const real = realpathSync(c);
      if (real.endsWith(".js")) return real;
    }
  }
  throw new Error(`npm's CLI not found among ${candidates.join(", ")}`);
}

describe("installed by npm from the release tarballs, with no Rust on PATH", () => {
  /** A project that ran `npm install <main tarball> <platform tarball>`. */
  let project: string;
  /** A project that installed the main tarball alone (optional dependencies left out). */
  let bare: string;
  /** The consumers' environment: a PATH with node alone, a fresh HOME and npm cache. */
  let env: NodeJS.ProcessEnv;
  const npmCli = findNpmCli();

  /** `npm install` of local tarballs only: --offline, so the platform packages of other
   * platforms (optional, and not on any registry from here) are skipped, never fetched. */
  const npmInstall = async (cwd: string, tarballs: string[]) => {
    mkdirSync(cwd, { recursive: true });
    writeFileSync(path.join(cwd, "package.json"), JSON.stringify({ name: "consumer", private: true }));
    const r = await node([npmCli, "install", "--offline", "--no-audit", "--no-fund", ...tarballs], cwd, 120_000, env);
    assert.equal(r.code, 0, `npm install failed:\n${r.stdout}\n${r.stderr}`);
  };

  before(async () => {
    const bin = path.join(work, "bin");
    mkdirSync(bin);
    symlinkSync(process.execPath, path.join(bin, "node"));
    env = {
      PATH: bin,
      HOME: path.join(work, "home"),
      npm_config_cache: path.join(work, "npm-cache"),
      npm_config_update_notifier: "false",
    };
    project = path.join(work, "project");
    bare = path.join(work, "bare");
    await npmInstall(project, [mainTarball, platformTarball]);
    await npmInstall(bare, [mainTarball]);
  });

  it("has no cargo, rustc or rustup to run", async () => {
    for (const dir of env.PATH!.split(path.delimiter)) {
      for (const tool of ["cargo", "rustc", "rustup"]) assert.ok(!existsSync(path.join(dir, tool)), `${tool} in ${dir}`);
    }
    const r = await node(
      ["-e", `try { require("child_process").execFileSync("cargo", ["--version"]); console.log("found") } catch (e) { console.log(e.code) }`],
      project,
      20_000,
      env,
    );
    assert.equal(r.stdout.trim(), "ENOENT");
  });

  it("installed the binary from the platform package, none in zeropipe itself", () => {
    const modules = path.join(project, "node_modules");
    assert.deepEqual(readdirSync(path.join(modules, "zeropipe")).filter((f) => f.endsWith(".node")), []);
    assert.ok(existsSync(path.join(modules, `zeropipe-${HOST}`, `zeropipe.${HOST}.node`)));
    assert.deepEqual(readdirSync(modules).filter((f) => f.startsWith("zeropipe")).sort(), ["zeropipe", `zeropipe-${HOST}`]);
  });

  it("runs the ten-job demo (examples/demo.ts), which exits by itself", async () => {
    const source = readFileSync(path.join(REPO, "examples", "demo.ts"), "utf8");
    const js = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
    writeFileSync(path.join(project, "demo.mjs"), js);
    const r = await node(["demo.mjs"], project, 30_000, { ...env, ZEROPIPE_ENDPOINT: `tcp://127.0.0.1:${await freePort()}` });
    assert.equal(r.stderr, "");
    assert.equal(r.code, 0);
    assertArticleOutput(r.stdout.trimEnd().split("\n").map((text) => ({ text, at: 0 })));
  });

  it("does a Push→Pull round trip of 10 000 two-frame messages over tcp", async () => {
    const script = `
      const { Push, Pull } = require("zeropipe");
      (async () => {
        const sender = new Push();
        const receiver = new Pull();
        await receiver.bind("tcp://127.0.0.1:*");
        sender.connect(receiver.lastEndpoint);
        const n = 10000;
        const sending = (async () => { for (let i = 0; i < n; i++) await sender.send(["job", String(i)]); })();
        let count = 0, inOrder = true;
        for (let i = 0; i < n; i++) {
          const [a, b] = await receiver.receive();
          if (String(a) !== "job" || String(b) !== String(i)) inOrder = false;
          count++;
        }
        await sending;
        await Promise.all([sender.close(), receiver.close()]);
        console.log(JSON.stringify({ count, inOrder }));
      })().catch((err) => { console.error(err); process.exitCode = 1; });
    `;
    const r = await node(["-e", script], project, 30_000, env);
    assert.equal(r.stderr, "");
    assert.equal(r.code, 0);
    assert.deepEqual(JSON.parse(r.stdout), { count: 10000, inOrder: true });
  });

  const missing = `zeropipe-${HOST}`;
  const expectFixes = (message: string) => {
    assert.match(message, new RegExp(`${process.platform} ${process.arch}`), "names the platform");
    assert.ok(message.includes(`npm install ${missing}@${MANIFEST.version}`), "fix 1: install the platform package");
    assert.ok(message.includes(`Rust ${RUST_FOR_SOURCE_BUILD} or newer`), "fix 2: build from source with Rust");
    assert.ok(!message.includes("package-lock.json"), "no advice to delete the lock file");
  };
  /** Loads zeropipe as a user's script does, uncaught: what the user sees is stderr. */
  const load = async (cwd: string, how: "require" | "import") => {
    const r =
      how === "require"
        ? await node(["-e", `require("zeropipe")`], cwd, 20_000, env)
        : await node(["--input-type=module", "-e", `import "zeropipe"`], cwd, 20_000, env);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /code: 'ERR_ZEROPIPE_NATIVE_ADDON'/);
    // The message: from "Error: " to the stack.
    return r.stderr.slice(r.stderr.indexOf("Error: zeropipe"), r.stderr.indexOf("\n    at "));
  };

  for (const how of ["require", "import"] as const) {
    it(`without the platform package, ${how} fails naming the platform, the package and the two fixes`, async () => {
      assert.ok(!existsSync(path.join(bare, "node_modules", missing)));
      const message = await load(bare, how);
      assert.ok(message.includes(`it comes in the package ${missing}`), message);
      expectFixes(message);
    });
  }

  it("with a platform package whose binary does not load, says so and gives the same fixes", async () => {
    const broken = path.join(work, "broken");
    await npmInstall(broken, [mainTarball]);
    const dir = path.join(broken, "node_modules", missing);
    mkdirSync(dir);
    writeFileSync(path.join(dir, "package.json"), JSON.stringify({ name: missing, version: MANIFEST.version, main: `zeropipe.${HOST}.node` }));
    writeFileSync(path.join(dir, `zeropipe.${HOST}.node`), "not a shared library");
    const message = await load(broken, "require");
    assert.ok(message.includes(`is installed (${missing}) but failed to load`), message);
    expectFixes(message);
  });
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
