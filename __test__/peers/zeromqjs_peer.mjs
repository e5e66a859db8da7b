#!/usr/bin/env node
// Foreign PUSH/PULL peer backed by zeromq.js (libzmq), driven over stdio.
//
// Usage: zeromqjs_peer.mjs <push|pull> <bind|connect> <address> [options-json]
//
// Speaks exactly the same line protocol as pyzmq_peer.py (see its docstring),
// so a test can swap one foreign implementation for the other.
//
// It runs in its own process rather than inside the test so that a peer can be
// SIGKILLed to simulate a crash, and so that libzmq's threads never share an
// address space with the engine under test.

import { createInterface } from "node:readline";
import { Pull, Push } from "zeromq";

// See pyzmq_peer.py: bounded, so `close` flushes but cannot hang forever when
// nobody ever connects (libzmq's -1 would block process exit indefinitely).
const DEFAULT_LINGER_MS = 5000;

function emit(line) {
  // Writes to a pipe are synchronous on Linux, so every line is flushed here.
  process.stdout.write(line + "\n");
}

function die(message, code = 2) {
  process.stderr.write(`zeromqjs_peer: ${message}\n`);
  process.exit(code);
}

function libzmqAddress(address) {
  // Same spelling fix as the Python peer: accept Node's ":0" for "any port".
  return address.startsWith("tcp://") && address.endsWith(":0")
    ? address.slice(0, -2) + ":*"
    : address;
}

function encode(frames) {
  return JSON.stringify(frames.map((f) => Buffer.from(f).toString("base64")));
}

function decode(payload) {
  let frames;
  try {
    frames = JSON.parse(payload);
  } catch (err) {
    die(`bad frames ${JSON.stringify(payload)}: ${err.message}`);
  }
  if (!Array.isArray(frames) || frames.length === 0 || !frames.every((f) => typeof f === "string")) {
    die(`bad frames ${JSON.stringify(payload)}: expected a non-empty array of base64 strings`);
  }
  return frames.map((f) => Buffer.from(f, "base64"));
}

const [role, mode, address, optionsJson] = process.argv.slice(2);
if (!["push", "pull"].includes(role) || !["bind", "connect"].includes(mode) || !address) {
  die("usage: zeromqjs_peer.mjs <push|pull> <bind|connect> <address> [options-json]");
}
let options = {};
if (optionsJson !== undefined) {
  try {
    options = JSON.parse(optionsJson);
  } catch (err) {
    die(`bad options json: ${err.message}`);
  }
  if (options === null || typeof options !== "object" || Array.isArray(options)) {
    die("options must be a JSON object");
  }
}

// Options are assigned one by one after construction: passing an unknown key
// to the zeromq.js constructor throws half-way through and the half-built
// socket crashes the process at exit.
const sock = role === "push" ? new Push() : new Pull();
sock.linger = DEFAULT_LINGER_MS;
/** Whether `name` is a method of `obj` (read from the prototypes' descriptors: reading a
 * getter can throw, as zeromq.js's curvePublicKey does while no key is set). */
function isMethod(obj, name) {
  for (let o = obj; o; o = Object.getPrototypeOf(o)) {
    const d = Object.getOwnPropertyDescriptor(o, name);
    if (d) return typeof d.value === "function";
  }
  return false;
}

for (const [name, value] of Object.entries(options)) {
  if (!(name in sock) || isMethod(sock, name)) {
    sock.close();
    die(`unsupported option ${JSON.stringify(name)} for a ${role} socket`);
  }
  try {
    sock[name] = value;
  } catch (err) {
    sock.close();
    die(`cannot set ${name}=${JSON.stringify(value)}: ${err.message}`);
  }
}

try {
  if (mode === "bind") {
    await sock.bind(libzmqAddress(address));
  } else {
    sock.connect(address);
  }
} catch (err) {
  sock.close();
  die(`${mode} ${address} failed: ${err.message}`, 3);
}
emit(`ready ${mode === "bind" ? sock.lastEndpoint : address}`);

let exiting = false;

function abort() {
  // The test is gone: drop whatever is queued and leave right away.
  if (exiting) return;
  exiting = true;
  sock.linger = 0;
  sock.close();
  process.exit(0);
}

function closeGracefully() {
  if (exiting) return;
  exiting = true;
  sock.close();
  // process.exit() would skip zeromq.js's context termination and silently
  // drop queued messages; letting the event loop run dry instead makes the
  // exit wait up to `linger` for them to be delivered.
  lines.close();
  process.stdin.destroy();
}

if (role === "pull") {
  (async () => {
    try {
      for await (const frames of sock) emit(`recv ${encode(frames)}`);
    } catch (err) {
      if (!exiting) die(`receive failed: ${err.message}`, 4);
    }
  })();
}

// Commands are handled strictly one at a time (the readline iterator only
// pulls the next line after the previous await), which keeps `close` behind
// any `send` still waiting on the high-water mark.
const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
let sent = 0;
// Stdin EOF must win even while a send is blocked, so it is watched
// separately from the sequential command loop.
process.stdin.on("end", abort);
process.stdin.on("error", abort);

for await (const raw of lines) {
  const line = raw.trim();
  if (line === "") continue;
  const space = line.indexOf(" ");
  const verb = space === -1 ? line : line.slice(0, space);
  const rest = space === -1 ? "" : line.slice(space + 1);
  if (verb === "send") {
    if (role !== "push") die("send on a pull peer");
    const frames = decode(rest);
    try {
      await sock.send(frames);
    } catch (err) {
      die(`send failed: ${err.message}`, 4);
    }
    sent += 1;
    emit(`sent ${sent}`);
  } else if (verb === "close") {
    closeGracefully();
    break;
  } else {
    die(`unknown command ${JSON.stringify(line)}`);
  }
}
if (!exiting) abort();
