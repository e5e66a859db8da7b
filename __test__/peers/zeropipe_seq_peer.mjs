// Sequence-numbered PUSH/PULL peer backed by zeropipe: the same command line and line
// protocol as pyzmq_seq_peer.py (see there), so the fault tests run both implementations
// the same way, each in a process of its own.
//
// Usage: node zeropipe_seq_peer.mjs <push|pull> <bind|connect> <address> [options-json [size [first]]]
//
// A message counts as accepted when send() resolves. A send waiting on the high-water mark
// gives up after 100 ms (sendTimeout) and is tried again, so `stop` never waits on a send
// that cannot complete; a send that timed out was not accepted.
//
// `pause`/`resume` (pull) stop and restart calling receive(), as a busy application would;
// every `disconnect` event of the socket is reported as `d <t_us> <code> <message>`;
// `state` is answered with `s <json>`, what the socket and this script see now (for a
// failing test's diagnostics).

import { Pull, Push } from "zeropipe";

const [role, mode, address, optionsJson = "{}", sizeArg = "64", firstArg = "0"] = process.argv.slice(2);

function die(message, code = 2) {
  process.stderr.write(`zeropipe_seq_peer: ${message}\n`);
  process.exit(code);
}

if (!["push", "pull"].includes(role) || !["bind", "connect"].includes(mode) || !address) {
  die("usage: zeropipe_seq_peer.mjs <push|pull> <bind|connect> <address> [options-json [size [first]]]");
}
const size = Number(sizeArg);
const first = Number(firstArg);
if (!(size >= 8)) die("size must be at least 8");

const nowUs = () => process.hrtime.bigint() / 1000n;
const emit = (line) => process.stdout.write(line + "\n");
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const options = { ...JSON.parse(optionsJson), linger: 0 };
const socket = role === "push" ? new Push({ ...options, sendTimeout: 100 }) : new Pull(options);
try {
  if (mode === "bind") await socket.bind(address);
  else socket.connect(address);
} catch (err) {
  die(`${mode} ${address} failed: ${err.message}`, 3);
}
socket.events.on("disconnect", (event) => {
  emit(`d ${nowUs()} ${event.error?.code ?? "-"} ${event.error?.message ?? "end of stream"}`.replace(/\n/g, " "));
});
emit(`ready ${mode === "bind" ? socket.lastEndpoint : address}`);

let sending = false;
let running = null;
let count = 0;

async function send(rate, burst) {
  const msg = Buffer.alloc(size);
  let tokens = 1;
  let last = performance.now();
  while (sending) {
    const t = performance.now();
    tokens = Math.min(burst, tokens + ((t - last) / 1000) * rate);
    last = t;
    if (tokens < 1) {
      await sleep(((1 - tokens) / rate) * 1000);
      continue;
    }
    msg.writeBigUInt64BE(BigInt(first + count), 0);
    try {
      await socket.send(msg);
    } catch (err) {
      if (err.code === "EAGAIN") continue;
      if (socket.closed) return;
      throw err;
    }
    count += 1;
    tokens -= 1;
    emit(`a ${count} ${nowUs()}`);
  }
}

/** While the application "is busy": resolved by `resume`. */
let paused = null;
/** For `state`: messages received, and whether a receive() is waiting now. */
let received = 0;
let waiting = false;

// Messages that arrive together (one receive batch) are reported on one line, stamped with
// the time the first of them reached JS.
let pending = [];
let stamp = 0n;
function flush() {
  if (pending.length === 0) return;
  emit(`r ${stamp} ${pending.join(",")}`);
  pending = [];
}

async function receive() {
  for (;;) {
    if (paused) await paused.promise;
    let frames;
    waiting = true;
    try {
      frames = await socket.receive();
    } catch (err) {
      if (socket.closed) return;
      throw err;
    } finally {
      waiting = false;
    }
    received += 1;
    if (frames[0].length !== size) die(`message of ${frames[0].length} bytes, expected ${size}`);
    if (pending.length === 0) {
      stamp = nowUs();
      setImmediate(flush);
    }
    pending.push(frames[0].readBigUInt64BE(0));
  }
}

async function closeAndExit() {
  sending = false;
  await socket.close();
  process.exit(0);
}

if (role === "pull") receive().catch((err) => die(`receive failed: ${err.stack}`));

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => {
  input += chunk;
  let nl;
  while ((nl = input.indexOf("\n")) !== -1) {
    const line = input.slice(0, nl).trim();
    input = input.slice(nl + 1);
    if (!line) continue;
    const [verb, a, b] = line.split(" ");
    if (verb === "start" && role === "push") {
      sending = true;
      running = send(Number(a), Number(b)).catch((err) => die(`send failed: ${err.stack}`));
    } else if (verb === "stop" && role === "push") {
      sending = false;
      Promise.resolve(running).then(() => emit(`stopped ${count}`));
    } else if (verb === "pause" && role === "pull") {
      if (!paused) {
        let resolve;
        const promise = new Promise((r) => (resolve = r));
        paused = { promise, resolve };
      }
      emit(`paused ${nowUs()}`);
    } else if (verb === "resume" && role === "pull") {
      const was = paused;
      paused = null;
      was?.resolve();
      emit(`resumed ${nowUs()}`);
    } else if (verb === "state") {
      // Everything received so far is reported before the answer, so the test has read it
      // when it reads the answer.
      flush();
      const state = { count, received, waiting, paused: paused !== null, peers: socket.peers };
      if (role === "pull") state.readable = socket.readable;
      else state.writable = socket.writable;
      emit(`s ${JSON.stringify(state)}`);
    } else if (verb === "close") {
      void closeAndExit();
    } else {
      die(`unknown command ${JSON.stringify(line)}`);
    }
  }
});
// The test process is gone: nobody is listening any more.
process.stdin.on("end", () => void closeAndExit());
