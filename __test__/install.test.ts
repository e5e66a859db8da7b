// zeropipe installed as a user installs it: `npm install` of the release tarballs (the main
// package and this platform's package, made by scripts/release.mjs pack) into a fresh
// project whose PATH holds node alone, no Rust toolchain; then the ten-job demo and a
// Push→Pull round trip from there, and the error a user gets when the platform package is
// missing or broken.

import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";

import ts from "typescript";

import { RUST_FOR_SOURCE_BUILD } from "../lib/native";
import { assertArticleOutput } from "./fixtures/module-scripts";
import { HOST, MANIFEST, node, packRelease, REPO } from "./fixtures/release-tarballs";
import { freePort } from "./helpers/sockets";

let work: string;
let mainTarball: string;
let platformTarball: string;

before(async () => {
  work = mkdtempSync(path.join(os.tmpdir(), "zeropipe-install-"));
  ({ mainTarball, platformTarball } = await packRelease(work));
});

after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
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

