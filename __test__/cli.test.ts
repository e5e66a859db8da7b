// The `zeropipe` command-line tool (bin/zeropipe.js → lib/cli.ts), run as users run it: a
// process of its own, fed on stdin, read on stdout, stderr and its exit status, against
// real libzmq peers (pyzmq) and against our own sockets.

import assert from "node:assert/strict";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, afterEach, describe, it } from "node:test";

import { startPeer, uniqueIpc, uniqueTcp, type Peer, type PeerMode, type PeerRole } from "./helpers/peer";
import { bindFresh, receiveN, trackSockets, within } from "./helpers/sockets";

const REPO = path.resolve(__dirname, "..");
const BIN = path.join(REPO, "bin", "zeropipe.js");
/** How long any one CLI process may live before the test kills it and fails. */
const KILL_AFTER_MS = 30_000;

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A running `zeropipe …`: its output so far, and its end. */
class Cli {
  readonly child: ChildProcess;
  readonly exited: Promise<Exit>;
  readonly started = Date.now();
  #stdout: Buffer[] = [];
  stderr = "";
  #stderrWaiters: { re: RegExp; resolve: () => void }[] = [];

  constructor(readonly args: string[]) {
    this.child = spawn(process.execPath, [BIN, ...args], { cwd: REPO, stdio: ["pipe", "pipe", "pipe"] });
    this.child.stdin!.on("error", () => {}); // EPIPE once the tool has exited
    this.child.stdout!.on("data", (d: Buffer) => this.#stdout.push(d));
    this.child.stderr!.setEncoding("utf8");
    this.child.stderr!.on("data", (d: string) => {
      this.stderr += d;
      this.#stderrWaiters = this.#stderrWaiters.filter((w) => (w.re.test(this.stderr) ? (w.resolve(), false) : true));
    });
    const killer = setTimeout(() => this.child.kill("SIGKILL"), KILL_AFTER_MS);
    this.exited = new Promise((resolve) => {
      this.child.on("close", (code, signal) => {
        clearTimeout(killer);
        resolve({ code, signal });
      });
    });
    running.add(this);
    void this.exited.then(() => running.delete(this));
  }

  get stdout(): Buffer {
    return Buffer.concat(this.#stdout);
  }

  /** Resolves once stderr matches `re`. */
  stderrMatches(re: RegExp, ms = 15_000): Promise<void> {
    if (re.test(this.stderr)) return Promise.resolve();
    const p = new Promise<void>((resolve) => this.#stderrWaiters.push({ re, resolve }));
    return within(p, ms, `zeropipe ${this.args.join(" ")} to print ${re} on stderr (stderr so far: ${JSON.stringify(this.stderr)})`);
  }

  /** The exit, which must come within `ms`. */
  end(ms = 20_000): Promise<Exit> {
    return within(this.exited, ms, `zeropipe ${this.args.join(" ")} to exit (stderr: ${JSON.stringify(this.stderr)})`);
  }

  /** Writes `input` to stdin and, unless `keepOpen`, ends it. */
  feed(input: string | Buffer, keepOpen = false): this {
    this.child.stdin!.write(input);
    if (!keepOpen) this.child.stdin!.end();
    return this;
  }
}

const running = new Set<Cli>();
const peers: Peer[] = [];
const tmp = mkdtempSync(path.join(os.tmpdir(), "zeropipe-cli-"));

afterEach(async () => {
  // A failed test must leave no process behind to hold ports or stall the runner.
  for (const cli of running) cli.child.kill("SIGKILL");
  await Promise.all([...running].map((c) => c.exited));
  await Promise.all(peers.splice(0).map((p) => p.kill()));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

function zeropipe(...args: string[]): Cli {
  return new Cli(args);
}

async function pyzmq(role: PeerRole, mode: PeerMode, address: string): Promise<Peer> {
  const peer = await startPeer("pyzmq", role, mode, address, { linger: 2000 });
  peers.push(peer);
  return peer;
}

const text = (messages: Buffer[][]) => messages.map((m) => m.map((f) => f.toString("latin1")));

describe("zeropipe push", () => {
  it("sends each line of stdin as a message, in order, to a pyzmq PULL", async () => {
    const sink = await pyzmq("pull", "bind", "tcp://127.0.0.1:0");
    const lines = Array.from({ length: 200 }, (_, i) => `line ${i + 1}`);
    const cli = zeropipe("push", "--connect", sink.endpoint).feed(lines.join("\n") + "\n");
    assert.deepEqual(text(await sink.messages(200, 15_000)), lines.map((l) => [l]));
    assert.deepEqual(await cli.end(), { code: 0, signal: null });
    assert.equal(cli.stderr, "");
  });

  it("splits lines into frames with --multipart, empty frames and bytes intact", async () => {
    const sink = await pyzmq("pull", "bind", "tcp://127.0.0.1:0");
    const input = Buffer.concat([Buffer.from("a\tb\tc\0\t\0x\t"), Buffer.from([0xff, 0x0a, 0x09, 0x01])]);
    const cli = zeropipe("push", "-c", sink.endpoint, "-m", "--delimiter", "\\0").feed(input);
    const got = await sink.messages(3, 15_000);
    assert.deepEqual(text(got.slice(0, 2)), [["a", "b", "c"], ["", ""]]);
    // The last message has no trailing delimiter; its newline is a byte like any other.
    assert.deepEqual(got[2], [Buffer.from("x"), Buffer.from([0xff, 0x0a]), Buffer.from([0x01])]);
    assert.deepEqual(await cli.end(), { code: 0, signal: null });
  });

  it("sends each --file as one message, or all of them as one multipart message with -m", async () => {
    const sink = await pyzmq("pull", "bind", "tcp://127.0.0.1:0");
    const a = path.join(tmp, "a.bin");
    const b = path.join(tmp, "b.bin");
    const bytes = Buffer.from(Array.from({ length: 70_000 }, (_, i) => i % 251));
    writeFileSync(a, bytes);
    writeFileSync(b, "second\n");
    assert.deepEqual(await zeropipe("push", "-c", sink.endpoint, "-f", a, "-f", b).end(), { code: 0, signal: null });
    assert.deepEqual(await sink.messages(2, 15_000), [[bytes], [Buffer.from("second\n")]]);
    assert.deepEqual(await zeropipe("push", "-c", sink.endpoint, "-m", "-f", a, "-f", b).end(), { code: 0, signal: null });
    assert.deepEqual(await sink.nextMessage(15_000), [bytes, Buffer.from("second\n")]);
  });

  it("repeats --data to reach --count, no faster than --rate", async () => {
    const sink = await pyzmq("pull", "bind", "tcp://127.0.0.1:0");
    const cli = zeropipe("push", "-c", sink.endpoint, "-d", "x", "-d", "y", "-n", "4", "-r", "10");
    const first = await sink.nextMessage(15_000);
    const firstAt = Date.now();
    const rest = await sink.messages(3, 15_000);
    // Four messages at 10/s: the last is due 300 ms after the first (the margin is for jitter).
    assert.ok(Date.now() - firstAt >= 200, `the last came ${Date.now() - firstAt} ms after the first`);
    assert.deepEqual(text([first, ...rest]), [["x"], ["y"], ["x"], ["y"]]);
    assert.deepEqual(await cli.end(), { code: 0, signal: null });
  });

  it("binds by default and, with --wait-peers, sends nothing until that many peers are connected", async () => {
    const endpoint = uniqueTcp();
    const cli = zeropipe("push", endpoint, "--wait-peers", "2", "-d", "job", "-n", "20", "-v");
    await cli.stderrMatches(/bound tcp:/);
    const first = await pyzmq("pull", "connect", endpoint);
    await cli.stderrMatches(/1 now/);
    // The slow joiner: one peer is not enough, nothing goes to it alone.
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(first.buffered, 0);
    const second = await pyzmq("pull", "connect", endpoint);
    const [a, b] = await Promise.all([first.messages(10, 15_000), second.messages(10, 15_000)]);
    assert.equal(a.length + b.length, 20);
    assert.deepEqual(await cli.end(), { code: 0, signal: null });
  });

  it("feeds our own Pull over ipc, connecting to an endpoint written >endpoint", async () => {
    const { pull } = trackSockets();
    const sink = pull();
    const endpoint = await bindFresh(sink, "ipc");
    const cli = zeropipe("push", `>${endpoint}`).feed("one\ntwo\n");
    assert.deepEqual(text(await receiveN(sink, 2)), [["one"], ["two"]]);
    assert.deepEqual(await cli.end(), { code: 0, signal: null });
  });

  it("gives up with status 3 when no peer connects within --timeout", async () => {
    const cli = zeropipe("push", uniqueTcp(), "-w", "1", "-t", "300", "-d", "x");
    assert.deepEqual(await cli.end(), { code: 3, signal: null });
    assert.match(cli.stderr, /0 of 1 peers connected within 300 ms/);
    const waiting = zeropipe("push", uniqueTcp(), "-t", "300", "-d", "x");
    assert.deepEqual(await waiting.end(), { code: 3, signal: null });
    assert.match(waiting.stderr, /no peer took a message within 300 ms/);
  });

  it("at the end of input with no peer, says so once, waits out --linger and exits 4", async () => {
    const endpoint = uniqueTcp();
    const cli = zeropipe("push", "-c", endpoint, "--linger", "500", "-d", "a", "-d", "b");
    assert.deepEqual(await cli.end(), { code: 4, signal: null });
    assert.equal(
      cli.stderr,
      `zeropipe push: no peer on ${endpoint}: 2 messages still queued; waiting up to 500 ms (--linger) for a peer to take them; Ctrl-C drops them\n`,
    );
    assert.ok(Date.now() - cli.started >= 500);
  });
});

describe("zeropipe pull", () => {
  // One message of each kind: text, multipart, bytes that are not UTF-8, an empty frame.
  const MESSAGES: Buffer[][] = [
    [Buffer.from("hello wörld")],
    [Buffer.from("a"), Buffer.from("b c")],
    [Buffer.from([0xff, 0x00, 0x41])],
    [Buffer.alloc(0)],
  ];
  const EXPECTED: Record<string, Buffer> = {
    text: Buffer.concat([Buffer.from("hello wörld\na\tb c\n"), Buffer.from([0xff, 0x00, 0x41]), Buffer.from("\n\n")]),
    json: Buffer.from('["hello wörld"]\n["a","b c"]\n[{"base64":"/wBB"}]\n[""]\n'),
    hex: Buffer.from("68656c6c6f2077c3b6726c64\n61\t622063\nff0041\n\n"),
    base64: Buffer.from("aGVsbG8gd8O2cmxk\nYQ==\tYiBj\n/wBB\n\n"),
  };

  for (const format of ["text", "json", "hex", "base64"]) {
    it(`prints a pyzmq PUSH's messages exactly, as ${format}`, async () => {
      const source = await pyzmq("push", "bind", "tcp://127.0.0.1:0");
      const cli = zeropipe("pull", source.endpoint, "--format", format, "-n", "4");
      for (const m of MESSAGES) await source.send(m);
      assert.deepEqual(await cli.end(), { code: 0, signal: null });
      assert.deepEqual(cli.stdout, EXPECTED[format]);
    });
  }

  it("exits 0 after --count messages, printing no more", async () => {
    const { push } = trackSockets();
    const endpoint = uniqueTcp();
    const cli = zeropipe("pull", "--bind", endpoint, "-n", "2", "-v");
    await cli.stderrMatches(/bound tcp:/);
    // A connecting Push queues all five at once: the pull has more than it prints.
    const source = push();
    source.connect(endpoint);
    for (let i = 1; i <= 5; i++) await source.send(`m${i}`);
    assert.deepEqual(await cli.end(), { code: 0, signal: null });
    assert.equal(cli.stdout.toString(), "m1\nm2\n");
  });

  it("exits 3 on --timeout when nothing, or fewer than --count, arrived; 0 when some arrived without --count", async () => {
    const nothing = zeropipe("pull", "--bind", uniqueTcp(), "-t", "300");
    assert.deepEqual(await nothing.end(), { code: 3, signal: null });
    assert.match(nothing.stderr, /0 messages received, then nothing for 300 ms/);

    // A bound pyzmq PUSH holds its sends until a peer connects: they go to the pull started first.
    const source = await pyzmq("push", "bind", "tcp://127.0.0.1:0");
    const short = zeropipe("pull", source.endpoint, "-n", "3", "-t", "1000");
    await source.send(["a"]);
    await source.send(["b"]);
    assert.deepEqual(await short.end(), { code: 3, signal: null });
    assert.equal(short.stdout.toString(), "a\nb\n");
    assert.match(short.stderr, /2 of 3 messages received/);

    const another = await pyzmq("push", "bind", "tcp://127.0.0.1:0");
    const quiet = zeropipe("pull", another.endpoint, "-t", "1000");
    await another.send(["c"]);
    assert.deepEqual(await quiet.end(), { code: 0, signal: null });
    assert.equal(quiet.stdout.toString(), "c\n");
  });

  it("receives from our own Push, and exits by SIGINT with what it printed intact", async () => {
    const { push } = trackSockets();
    const source = push();
    const endpoint = await bindFresh(source, "tcp");
    const cli = zeropipe("pull", endpoint, "--stats");
    for (let i = 1; i <= 3; i++) await source.send(`n${i}`);
    await within(
      (async () => {
        while (cli.stdout.toString() !== "n1\nn2\nn3\n") await new Promise((r) => setTimeout(r, 10));
      })(),
      15_000,
      "three lines on stdout",
    );
    cli.child.kill("SIGINT");
    assert.deepEqual(await cli.end(), { code: null, signal: "SIGINT" });
    assert.equal(cli.stderr, "zeropipe pull: received 3 messages\n");
  });
});

describe("zeropipe relay", () => {
  it("forwards multipart messages intact, in order, from a pyzmq PUSH to a pyzmq PULL", async () => {
    const [inward, outward] = [uniqueTcp(), uniqueIpc()];
    const cli = zeropipe("relay", inward, outward, "--stats", "-v");
    await cli.stderrMatches(/bound ipc:/);
    const sink = await pyzmq("pull", "connect", outward);
    const source = await pyzmq("push", "connect", inward);
    const sent = Array.from({ length: 50 }, (_, i) => [Buffer.from(`job ${i}`), Buffer.alloc(0), Buffer.from([i, 0, 255])]);
    for (const m of sent) await source.send(m);
    assert.deepEqual(await sink.messages(50, 15_000), sent);
    cli.child.kill("SIGINT");
    assert.deepEqual(await cli.end(), { code: null, signal: "SIGINT" });
    assert.match(cli.stderr, /zeropipe relay: forwarded 50 messages\n$/);
  });

  it("connects each side with --pull-connect and --push-connect, and stops after --count", async () => {
    const source = await pyzmq("push", "bind", "tcp://127.0.0.1:0");
    const sink = await pyzmq("pull", "bind", "tcp://127.0.0.1:0");
    const cli = zeropipe("relay", "--pull-connect", "--push-connect", source.endpoint, sink.endpoint, "-n", "3");
    for (const m of ["a", "b", "c"]) await source.send([m]);
    // The relay may be gone before it could take this one: pyzmq then holds it, never accepted.
    source.send(["d"]).catch(() => {});
    assert.deepEqual(text(await sink.messages(3, 15_000)), [["a"], ["b"], ["c"]]);
    assert.deepEqual(await cli.end(), { code: 0, signal: null });
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(sink.buffered, 0, "nothing past --count was forwarded");
  });
});

describe("zeropipe usage", () => {
  const CASES: [string, string[], RegExp][] = [
    ["no command", [], /Usage: zeropipe <command>/],
    ["an unknown command", ["frob"], /unknown command "frob"/],
    ["an unknown flag", ["push", "--frob"], /Unknown option '--frob'/],
    ["an endpoint without a port", ["push", "tcp://127.0.0.1"], /cannot bind tcp:\/\/127\.0\.0\.1: .*port/],
    ["a transport we do not speak", ["pull", "udp://127.0.0.1:5555"], /cannot connect udp:/],
    ["inproc, which no other process reaches", ["pull", "inproc://x"], /inproc:\/\/ only reaches sockets of the same process/],
    ["not an endpoint", ["pull", "localhost:5555"], /"localhost:5555" is not an endpoint/],
    ["a bad count", ["pull", "-n", "0"], /--count takes an integer of at least 1, got "0"/],
    ["a bad format", ["pull", "--format", "xml"], /--format takes text, json, hex, base64/],
    ["an unknown socket option", ["pull", "-o", "frob=1"], /Unknown option "frob"/],
    ["--bind with --connect", ["push", "-b", "-c"], /exclude each other/],
    ["--data with --file", ["push", "-d", "x", "-f", "y"], /not both/],
    ["a relay with one endpoint", ["relay", "tcp://127.0.0.1:5555"], /relay takes <pull-endpoint> <push-endpoint>, got 1 endpoint/],
  ];
  for (const [what, args, message] of CASES) {
    it(`exits 2 on ${what}, saying why`, async () => {
      const cli = zeropipe(...args);
      assert.deepEqual(await cli.end(), { code: 2, signal: null });
      assert.match(cli.stderr, message);
      assert.equal(cli.stdout.length, 0);
    });
  }

  it("exits 1 on an address in use", async () => {
    const sink = await pyzmq("pull", "bind", "tcp://127.0.0.1:0");
    const cli = zeropipe("push", "--bind", sink.endpoint, "-d", "x");
    assert.deepEqual(await cli.end(), { code: 1, signal: null });
    assert.match(cli.stderr, /cannot bind .*EADDRINUSE|in use/i);
  });

  it("is the package's bin: an executable script that package.json names and publishes", () => {
    const pkg = JSON.parse(readFileSync(path.join(REPO, "package.json"), "utf8")) as { bin: Record<string, string>; files: string[] };
    assert.deepEqual(pkg.bin, { zeropipe: "bin/zeropipe.js" });
    assert.ok(pkg.files.includes("bin/*.js"), "bin/*.js is in the published files");
    assert.ok(statSync(BIN).mode & 0o111, "bin/zeropipe.js is executable");
    // Run through its #! line, as npm's .bin link runs it.
    assert.match(execFileSync(BIN, ["--help"], { encoding: "utf8", timeout: 15_000 }), /^Usage: zeropipe <command>/);
  });

  it("prints each command's help on stdout with --help, exit 0", async () => {
    for (const command of ["push", "pull", "relay"]) {
      const cli = zeropipe(command, "--help");
      assert.deepEqual(await cli.end(), { code: 0, signal: null });
      assert.match(cli.stdout.toString(), new RegExp(`^Usage: zeropipe ${command} `));
      assert.match(cli.stdout.toString(), /--linger <ms>/);
      assert.match(cli.stdout.toString(), /Exit status: 0 done, 1 runtime error, 2 usage error, 3 timeout/);
    }
  });
});

describe("zeropipe and signals", () => {
  it("on SIGINT with messages queued for an absent peer, says so once and exits within linger", async () => {
    const endpoint = uniqueTcp();
    const cli = zeropipe("push", "-c", endpoint, "--linger", "1500", "-v");
    await cli.stderrMatches(/connecting to/);
    cli.feed("a\nb\nc\n", true);
    // The three lines are read and queued within a tick of arriving; give a loaded machine time.
    await new Promise((r) => setTimeout(r, 500));
    const interrupted = Date.now();
    cli.child.kill("SIGINT");
    await cli.stderrMatches(/still queued/);
    assert.deepEqual(await cli.end(), { code: null, signal: "SIGINT" });
    const took = Date.now() - interrupted;
    assert.ok(took >= 1400 && took < 10_000, `exited ${took} ms after SIGINT`);
    const warnings = cli.stderr.split("\n").filter((l) => l.includes("still queued"));
    assert.deepEqual(warnings, [
      `zeropipe push: no peer on ${endpoint}: 3 messages still queued; waiting up to 1500 ms (--linger) for a peer to take them; Ctrl-C again drops them`,
    ]);
  });

  it("a second SIGINT drops what is queued and exits at once", async () => {
    const cli = zeropipe("push", "-c", uniqueTcp(), "-v");
    await cli.stderrMatches(/connecting to/);
    cli.feed("a\n", true);
    await new Promise((r) => setTimeout(r, 500));
    cli.child.kill("SIGTERM");
    await cli.stderrMatches(/still queued; waiting up to 30000 ms/);
    const again = Date.now();
    cli.child.kill("SIGINT");
    assert.deepEqual(await cli.end(), { code: null, signal: "SIGINT" });
    assert.ok(Date.now() - again < 5_000);
  });

  it("on SIGINT with a peer, delivers every message it accepted before exiting", async () => {
    const sink = await pyzmq("pull", "bind", "tcp://127.0.0.1:0");
    const cli = zeropipe("push", "-c", sink.endpoint, "--stats", "--hwm", "10");
    const lines = Array.from({ length: 5000 }, (_, i) => `${i}`).join("\n") + "\n";
    cli.feed(lines, true);
    await sink.messages(100, 15_000);
    cli.child.kill("SIGINT");
    assert.deepEqual(await cli.end(), { code: null, signal: "SIGINT" });
    const sent = Number(/sent (\d+) messages/.exec(cli.stderr)?.[1]);
    assert.ok(sent >= 100, cli.stderr);
    assert.doesNotMatch(cli.stderr, /still queued/);
    const rest = await sink.messages(sent - 100, 15_000);
    // Nothing accepted was lost, nothing more was sent after the signal.
    assert.deepEqual(text(rest), Array.from({ length: sent - 100 }, (_, i) => [`${i + 100}`]));
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(sink.buffered, 0);
  });
});

describe("zeropipe with CURVE", () => {
  const Z85_LINE = /^ZEROPIPE_CURVE_(PUBLIC|SECRET)_KEY='([0-9a-zA-Z.\-:+=^!/*?&<>()[\]{}@%$#]{40})'$/;

  it("keygen prints a fresh pair as environment lines a shell can source", async () => {
    const cli = zeropipe("keygen");
    assert.deepEqual(await cli.end(), { code: 0, signal: null });
    const lines = cli.stdout.toString().trim().split("\n");
    assert.equal(lines.length, 2);
    assert.equal(Z85_LINE.exec(lines[0]!)?.[1], "PUBLIC");
    assert.equal(Z85_LINE.exec(lines[1]!)?.[1], "SECRET");
    const again = zeropipe("keygen");
    await again.end();
    assert.notEqual(again.stdout.toString(), cli.stdout.toString());
  });

  it("push --curve-server feeds a pyzmq CURVE client; pull takes the server key from the environment", async () => {
    const { curveKeyPair } = await import("zeropipe");
    const server = curveKeyPair();
    const client = curveKeyPair();
    const address = uniqueTcp();
    const cli = zeropipe("push", "--curve-server", "--curve-secret-key", server.secretKey, "-d", "sealed", address);
    const sink = await startPeer("pyzmq", "pull", "connect", address, {
      curveServerKey: server.publicKey,
      curveSecretKey: client.secretKey,
      curvePublicKey: client.publicKey,
    });
    peers.push(sink);
    assert.deepEqual(text([await sink.nextMessage(15_000)]), [["sealed"]]);
    assert.deepEqual(await cli.end(), { code: 0, signal: null });

    const source = await startPeer("pyzmq", "push", "bind", "tcp://127.0.0.1:0", { curveServer: true, curveSecretKey: server.secretKey });
    peers.push(source);
    process.env.ZEROPIPE_CURVE_SERVER_KEY = server.publicKey;
    let reader: Cli;
    try {
      reader = zeropipe("pull", "-n", "1", source.endpoint);
    } finally {
      delete process.env.ZEROPIPE_CURVE_SERVER_KEY;
    }
    await source.send(["from pyzmq"]);
    assert.deepEqual(await reader.end(), { code: 0, signal: null });
    assert.equal(reader.stdout.toString(), "from pyzmq\n");
  });

  it("refuses a bad key or a key without a role as a usage error", async () => {
    const bad = zeropipe("push", "--curve-server", "--curve-secret-key", "short", "-d", "x", "tcp://127.0.0.1:1");
    assert.equal((await bad.end()).code, 2);
    assert.match(bad.stderr, /40 Z85 characters/);
    const roleless = zeropipe("pull", "--curve-secret-key", "x".repeat(40), "tcp://127.0.0.1:1");
    assert.equal((await roleless.end()).code, 2);
    assert.match(roleless.stderr, /--curve-server/);
  });
});
