#!/usr/bin/env node
// Soak test (not in CI): `npm run soak -- --minutes N` (default 10; fractions allowed).
//
// For N minutes it keeps several Push/Pull pairs busy over tcp, ipc and inproc with mixed
// message sizes (16 B … 1 MiB, multipart, empty frames), closing and recreating their
// sockets now and then (binders and connectors alike, so both sides reconnect), plus two
// child processes (forked from this script in worker mode) that are SIGKILLed and restarted:
// one pushes to a PULL in this process, the other pulls from a PUSH in this process, so a
// peer dying mid-message is part of the load. Every message carries a header (pair, stream,
// sequence number, per-frame length and CRC-32) and is checked on arrival.
//
// Every 10 s it prints this process's RSS, open fds and threads. It fails (exit 1) on a
// corrupt, misrouted or duplicated message, on a pair that delivers nothing for 30 s, and,
// in runs of 8 minutes or more, on a growth trend of those samples over the second half
// of the run (see TOLERANCE below). A hard timeout ends it (exit 2) if it ever hangs.
//
// `--inject-leak fd|rss|threads` (or several, comma-separated) leaks on purpose, one unit
// per sample, to show that the trend check fails on a leak.

import { fork } from 'node:child_process'
import { createHash, randomFillSync } from 'node:crypto'
import { existsSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import v8 from 'node:v8'
import vm from 'node:vm'
import zlib from 'node:zlib'
import { Pull, Push } from 'zeropipe'

const SCRIPT = fileURLToPath(import.meta.url)

// A full GC before each sample, without asking for `node --expose-gc`: garbage V8 has not
// collected yet is not a leak.
v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('typeof gc === "function" ? gc : undefined')

// ---- settings ---------------------------------------------------------------------------

const MIB = 1024 * 1024

// Trend tolerances: least-squares slopes over the second half of the samples, per minute.
// Measured here (2 shared cores, Node 20) over healthy 10- and 20-minute runs:
// - fds: a sample varies by the connections open at that instant (38-44, from recycling
//   and restarts); second-half slopes were -0.08…+0.34/min, the latter with 1000
//   recycles a minute. A leak of one fd per recycle or child restart (the likely kind) is
//   about 85/min at this load; 1/min still catches one fd leaked a minute.
// - threads: constant (14) in every run, so any steady growth is a leak; 0.5/min leaves
//   room only for a helper thread that happens to be alive at the last samples.
// - RSS (read at rest, see quietSample): it rises for about 5 minutes while glibc's heap,
//   mimalloc and V8 settle on their working sizes with this mix of 16 B…1 MiB messages,
//   then stays within ±8 MiB. The second half of a 10-minute run still sees the end of
//   that rise: slopes of +1.5 and +1.7 MiB/min; of a 20-minute run, +0.46 MiB/min. 4 MiB/min
//   clears that with room for noise (about ±0.5 MiB/min over 30 samples) and still fails a
//   leak of one 64 KiB read buffer per connection (about 5 MiB/min at this recycle rate) or
//   of 30 bytes per message (about 2700 messages a second).
const TOLERANCE = { fds: 1, threads: 0.5, rssMiB: 4 }
// Shorter runs are not judged: their second half lies in the warm-up of RSS, and holds too
// few samples to tell a trend in fds from a few connections in flight.
const MIN_TREND_MINUTES = 8
const SAMPLE_MS = 10_000
const STALL_MS = 30_000
// A sample pauses the senders this long, the last PURGE_WAIT_MS of it after the GC.
const QUIET_MS = 1_500
const PURGE_WAIT_MS = 1_100
// Beyond the run itself: shutdown (closing sockets, reaping children) must fit in this.
const HARD_TIMEOUT_GRACE_MS = 90_000

// Per sending stream: at most this many messages and bytes per second, so the machine (two
// cores, shared) is loaded but not saturated and a slow receiver cannot be mistaken for a stall.
const RATE = { msgs: 1500, bytes: 4 * MIB }
const PUSH_OPTIONS = { sendHighWaterMark: 200, reconnectInterval: 100 }
const PULL_OPTIONS = { receiveHighWaterMark: 200, reconnectInterval: 100 }
// How often a pair closes and recreates one of its sockets, and how long a closed binder
// stays away (so connectors go through connect:retry).
const RECYCLE_MS = [1_500, 6_000]
const AWAY_MS = [0, 600]
// How often one of the two children is killed, and how long it stays dead.
const KILL_MS = [3_000, 12_000]
const DEAD_MS = [0, 800]

// ---- arguments --------------------------------------------------------------------------

/** A mistake on the command line: reported as one line, without a stack. */
function usage(message) {
  return Object.assign(new Error(`${message} (usage: npm run soak -- [--minutes N])`), { usage: true })
}

function parseArgs(argv) {
  const out = {}
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (!a.startsWith('--')) throw usage(`unexpected argument "${a}"`)
    const eq = a.indexOf('=')
    if (eq > 0) out[a.slice(2, eq)] = a.slice(eq + 1)
    else if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) out[a.slice(2)] = argv[++i]
    else throw usage(`${a} needs a value`)
  }
  return out
}

// ---- small helpers ----------------------------------------------------------------------

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const between = ([lo, hi]) => lo + Math.random() * (hi - lo)
const now = () => performance.now()
const fmtMiB = (bytes) => `${(bytes / MIB).toFixed(1)} MiB`
const fmtCount = (n) => n.toLocaleString('en-US')

/** Pending receive and send loops wait on a slot for the socket of the moment. */
class Slot {
  constructor() {
    this.value = null
    this.ended = false
    this.waiters = []
  }
  set(value) {
    this.value = value
    for (const w of this.waiters.splice(0)) w(value)
  }
  take() {
    const v = this.value
    this.value = null
    return v
  }
  /** The current socket, or the next one; null once the run ends. */
  get() {
    if (this.ended) return Promise.resolve(null)
    if (this.value && !this.value.closed) return Promise.resolve(this.value)
    return new Promise((resolve) => this.waiters.push(resolve))
  }
  end() {
    this.ended = true
    for (const w of this.waiters.splice(0)) w(null)
  }
}

/**
 * Keeps a stream at RATE. Credit older than 100 ms is dropped, so a stream that was blocked
 * (no peer, high-water mark) resumes at its rate instead of bursting to catch up.
 */
class Pacer {
  constructor() {
    this.t = now()
  }
  async after(bytes) {
    const t = now()
    this.t = Math.max(this.t, t - 100) + Math.max(bytes / RATE.bytes, 1 / RATE.msgs) * 1000
    // Sleeping also yields to the event loop, which receives and resolves sends.
    if (this.t > t + 2) await sleep(this.t - t)
  }
}

// ---- messages ---------------------------------------------------------------------------
//
// Frame 0 is a header: magic, pair id, stream id, sequence number, body frame count, then
// each body frame's length and CRC-32. Body frames are random bytes.

const MAGIC = 0x4b53505a
const HEAD = 20
// Frames of 64 KiB and more are handed to the addon without a copy; smaller ones are copied
// by send(), so their buffer may be reused at once. Both sides of that line are sent.
const ZERO_COPY = 64 * 1024
// Weighted sizes; SMALL_SIZES is the table for most messages.
const SIZES = [
  [16, 30], [100, 20], [1024, 20], [8192, 12],
  [ZERO_COPY - 1, 3], [ZERO_COPY, 4], [256 * 1024, 2], [MIB, 1],
]
const SMALL_SIZES = SIZES.filter(([size]) => size <= 1024)
const crc32 = zlib.crc32 ?? ((buf) => createHash('sha1').update(buf).digest().readUInt32LE(0))

function pick(table) {
  let total = 0
  for (const [, w] of table) total += w
  let r = Math.random() * total
  for (const [size, w] of table) if ((r -= w) < 0) return size
  return table[table.length - 1][0]
}

/**
 * Builds one message. Small frames are written into `scratch` (reused for every message,
 * and scribbled over right after send(): the copy-on-send promise is part of what is
 * checked); large frames get their own buffer, as they are handed over.
 */
function buildMessage(pairId, streamId, seq, scratch) {
  // Mostly small messages, so that the per-message paths get volume within RATE.bytes
  // (the large ones dominate the bytes whatever their share).
  const table = Math.random() < 0.15 ? SIZES : SMALL_SIZES
  const r = Math.random()
  const parts = r < 0.5 ? 1 : r < 0.75 ? 2 : r < 0.9 ? 3 : 4
  const header = Buffer.allocUnsafe(HEAD + 8 * parts)
  header.writeUInt32LE(MAGIC, 0)
  header.writeUInt32LE(pairId, 4)
  header.writeUInt32LE(streamId, 8)
  header.writeUInt32LE(seq, 12)
  header.writeUInt32LE(parts, 16)
  const frames = [header]
  let bytes = header.length
  for (let i = 0; i < parts; i++) {
    const len = Math.random() < 0.05 ? 0 : pick(table)
    let frame = null
    if (len > 0) {
      frame = len < ZERO_COPY ? scratch[i].subarray(0, len) : Buffer.allocUnsafe(len)
      randomFillSync(frame)
    }
    header.writeUInt32LE(len, HEAD + 8 * i)
    header.writeUInt32LE(len ? crc32(frame) : 0, HEAD + 8 * i + 4)
    frames.push(frame)
    bytes += len
  }
  return { frames, bytes }
}

/** Checks a received message; returns its stream, sequence and size, or an error text. */
function checkMessage(frames, pairId) {
  const h = frames[0]
  if (!h || h.length < HEAD || h.readUInt32LE(0) !== MAGIC) return { error: `bad header (${frames.length} frames)` }
  const parts = h.readUInt32LE(16)
  if (h.length !== HEAD + 8 * parts || frames.length !== parts + 1) {
    return { error: `frame count: header says ${parts} body frames, got ${frames.length - 1}` }
  }
  const seq = h.readUInt32LE(12)
  let bytes = h.length
  for (let i = 0; i < parts; i++) {
    const f = frames[i + 1]
    const len = h.readUInt32LE(HEAD + 8 * i)
    if (f.length !== len) return { error: `seq ${seq} frame ${i + 1}: ${f.length} bytes, header says ${len}` }
    if (len && crc32(f) !== h.readUInt32LE(HEAD + 8 * i + 4)) return { error: `seq ${seq} frame ${i + 1} (${len} B): checksum mismatch` }
    bytes += len
  }
  const pair = h.readUInt32LE(4)
  if (pair !== pairId) return { error: `misrouted: a message of pair ${pair} arrived at pair ${pairId}` }
  return { stream: h.readUInt32LE(8), seq, bytes }
}

/**
 * Per-stream sequence bookkeeping in constant memory: the highest sequence seen and a
 * bitmap of the last WINDOW. Gaps are expected (messages queued in a socket that is closed
 * are dropped, as in libzmq); a sequence seen twice is a duplicate, which is a bug. A late
 * arrival within the window fills its gap (a message re-routed from a departed peer can be
 * overtaken by newer ones).
 */
const WINDOW = 1 << 16
class Sequences {
  constructor() {
    this.streams = new Map()
    this.lost = 0
    this.late = 0
  }
  /** Returns an error text for a duplicate, otherwise null. */
  record(stream, seq) {
    let s = this.streams.get(stream)
    if (!s) {
      // Streams of dead children are never heard of again; keep only recent ones so this
      // bookkeeping does not itself grow.
      if (this.streams.size >= 16) this.streams.delete(this.streams.keys().next().value)
      // A receiver may join a stream midway (a restarted child): gaps count from there.
      s = { high: seq - 1, bits: new Uint8Array(WINDOW / 8) }
      this.streams.set(stream, s)
    }
    const byte = (n) => (n % WINDOW) >> 3
    const mask = (n) => 1 << (n & 7)
    if (seq > s.high) {
      if (seq - s.high > WINDOW) s.bits.fill(0)
      else for (let n = s.high + 1; n < seq; n++) s.bits[byte(n)] &= ~mask(n)
      this.lost += seq - s.high - 1
      s.high = seq
    } else if (s.high - seq >= WINDOW) {
      // Too old to tell a late arrival from a duplicate: counted as late.
      this.late++
      this.lost--
      return null
    } else {
      if (s.bits[byte(seq)] & mask(seq)) return `duplicate: stream ${stream} seq ${seq} arrived twice`
      this.late++
      this.lost--
    }
    s.bits[byte(seq)] |= mask(seq)
    return null
  }
}

// ---- worker mode (the child processes) --------------------------------------------------

async function runWorker(args) {
  // A child outlives neither its parent nor the run.
  process.on('disconnect', () => process.exit(0))
  setTimeout(() => process.exit(3), Number(args.deadline) - Date.now()).unref()
  const pairId = Number(args.pair)
  if (args.worker === 'push') {
    const push = new Push({ ...PUSH_OPTIONS, linger: 0 })
    push.connect(args.endpoint)
    const stream = (Math.random() * 2 ** 32) >>> 0
    const scratch = Array.from({ length: 4 }, () => Buffer.allocUnsafe(ZERO_COPY - 1))
    const pacer = new Pacer()
    let pausedUntil = 0
    process.on('message', (m) => { if (m.pause) pausedUntil = Date.now() + m.pause })
    for (let seq = 0; ; seq++) {
      if (Date.now() < pausedUntil) await sleep(pausedUntil - Date.now())
      const { frames, bytes } = buildMessage(pairId, stream, seq, scratch)
      const sent = push.send(frames)
      for (const s of scratch) s.fill(0xa5)
      await sent
      await pacer.after(bytes)
    }
  }
  if (args.worker === 'pull') {
    const pull = new Pull(PULL_OPTIONS)
    pull.connect(args.endpoint)
    const seqs = new Sequences()
    let received = 0
    let bytes = 0
    const report = () => process.send?.({ received, bytes, lost: seqs.lost, late: seqs.late })
    setInterval(report, 250).unref()
    for await (const frames of pull) {
      const m = checkMessage(frames, pairId)
      const error = m.error ?? seqs.record(m.stream, m.seq)
      if (error) {
        process.send?.({ error })
        continue
      }
      received++
      bytes += m.bytes
    }
    throw new Error('the PULL socket ended although nothing closed it')
  }
  throw new Error(`unknown worker mode ${args.worker}`)
}

// ---- the run ----------------------------------------------------------------------------

const failures = []
let stopping = false
let stopRun = () => {}
const runEnded = new Promise((resolve) => { stopRun = resolve })

function fail(message) {
  if (failures.length < 20) failures.push(message)
  console.error(`soak: FAIL ${message}`)
  stopRun()
}

/**
 * Sleeps, but no longer than the run: a stopping run must not wait out a long pause. (Not
 * Promise.race with runEnded: every race would leave a reaction on that pending promise, a
 * leak of this script's own, found by its first runs.)
 */
const napping = new Set()
function nap(ms) {
  return new Promise((resolve) => {
    const wake = () => {
      clearTimeout(timer)
      napping.delete(wake)
      resolve()
    }
    const timer = setTimeout(wake, ms)
    napping.add(wake)
  })
}
const wakeAll = () => { for (const wake of [...napping]) wake() }

/**
 * While a sample is taken the senders here (and the pushing child) hold still, so the
 * sample sees what is retained rather than what happens to be in flight.
 */
let quiet = null

const counts = { connect: 0, reconnect: 0, accept: 0, disconnect: 0, retry: 0, handshakeErrors: 0, recycled: { binder: 0, connector: 0 }, childRestarts: 0, rebindNewPort: 0 }

function watch(socket) {
  let connects = 0
  socket.events.on('connect', () => {
    counts.connect++
    // A socket's second and later connections are reconnects in the libzmq sense.
    if (connects++) counts.reconnect++
  })
  socket.events.on('accept', () => counts.accept++)
  socket.events.on('disconnect', () => counts.disconnect++)
  socket.events.on('connect:retry', () => counts.retry++)
  socket.events.on('handshake:error', () => counts.handshakeErrors++)
  return socket
}

let ipcSeq = 0
const ipcFiles = new Set()
function ipcAddress() {
  const file = path.join(os.tmpdir(), `zp-soak-${process.pid}-${ipcSeq++}.sock`)
  ipcFiles.add(file)
  return `ipc://${file}`
}

/** Something that receives one stream and must keep making progress. */
class Receiver {
  constructor(name) {
    this.name = name
    this.received = 0
    this.bytes = 0
    this.lastProgress = now()
    this.seqs = new Sequences()
  }
  take(frames, pairId) {
    const m = checkMessage(frames, pairId)
    const error = m.error ?? this.seqs.record(m.stream, m.seq)
    if (error) return fail(`${this.name}: ${error}`)
    this.received++
    this.bytes += m.bytes
    this.lastProgress = now()
  }
  get lost() { return this.seqs.lost }
  get late() { return this.seqs.late }
}

/** The sending half of a stream in this process: one sequence across all its sockets. */
async function sendLoop(name, pairId, slot) {
  const stream = (Math.random() * 2 ** 32) >>> 0
  const scratch = Array.from({ length: 4 }, () => Buffer.allocUnsafe(ZERO_COPY - 1))
  const pacer = new Pacer()
  const stats = { sent: 0, aborted: 0 }
  for (let seq = 0; ; seq++) {
    if (quiet) await quiet
    const push = await slot.get()
    if (!push) return stats
    const { frames, bytes } = buildMessage(pairId, stream, seq, scratch)
    try {
      const sent = push.send(frames)
      for (const s of scratch) s.fill(0xa5)
      await sent
      stats.sent++
    } catch (err) {
      // The socket was closed under a waiting send (a recycle): its message is dropped.
      if (err.code === 'EBADF' || push.closed) { stats.aborted++; continue }
      fail(`${name}: send failed: ${err.stack ?? err}`)
      return stats
    }
    await pacer.after(bytes)
  }
}

async function receiveLoop(name, slot, receiver, pairId) {
  for (;;) {
    const pull = await slot.get()
    if (!pull) return
    try {
      // Ends by itself when the socket is closed (a recycle or the end of the run).
      for await (const frames of pull) receiver.take(frames, pairId)
    } catch (err) {
      if (err.code === 'EBADF' || pull.closed) continue
      fail(`${name}: receive failed: ${err.stack ?? err}`)
      return
    }
  }
}

/** Binds, retrying while a just-closed socket's address is still being released. */
async function bindRetrying(sock, address) {
  const until = now() + 3_000
  for (;;) {
    try {
      await sock.bind(address)
      return true
    } catch (err) {
      if (err.code !== 'EADDRINUSE' || now() > until) throw err
      await sleep(100)
    }
  }
}

/** A Push/Pull pair in this process whose sockets are closed and recreated at random. */
class LocalPair {
  constructor(id, transport, binder) {
    this.id = id
    this.transport = transport
    this.binder = binder // 'push' or 'pull': which side binds
    this.name = `pair ${id} (${transport}, ${binder} binds)`
    this.slots = { push: new Slot(), pull: new Slot() }
    this.receiver = new Receiver(this.name)
    this.address = transport === 'tcp' ? 'tcp://127.0.0.1:0' : transport === 'ipc' ? ipcAddress() : `inproc://zp-soak-${id}`
  }

  make(side) {
    const linger = Math.random() < 0.5 ? 0 : 200
    return watch(side === 'push' ? new Push({ ...PUSH_OPTIONS, linger }) : new Pull(PULL_OPTIONS))
  }

  async open(side) {
    const sock = this.make(side)
    if (side === this.binder) {
      try {
        await bindRetrying(sock, this.address)
      } catch (err) {
        // Another process took the port while our binder was away: move to a fresh one.
        if (this.transport !== 'tcp' || err.code !== 'EADDRINUSE') throw err
        await sock.bind('tcp://127.0.0.1:0')
        counts.rebindNewPort++
        const conn = this.slots[this.connector].value
        if (conn) { conn.disconnect(this.address); conn.connect(sock.lastEndpoint) }
      }
      if (this.transport === 'tcp') this.address = sock.lastEndpoint
      // An inproc connector is not re-attached to a new binder of the same name (as in
      // libzmq): it connects again.
      const conn = this.slots[this.connector].value
      if (this.transport === 'inproc' && conn) { conn.disconnect(this.address); conn.connect(this.address) }
    } else {
      sock.connect(this.address)
    }
    this.slots[side].set(sock)
  }

  get connector() { return this.binder === 'push' ? 'pull' : 'push' }

  async start() {
    await this.open(this.binder)
    await this.open(this.connector)
    this.sending = sendLoop(this.name, this.id, this.slots.push)
    this.receiving = receiveLoop(this.name, this.slots.pull, this.receiver, this.id)
    this.chaos = this.recycleLoop()
  }

  async recycleLoop() {
    while (!stopping) {
      await nap(between(RECYCLE_MS))
      if (stopping) return
      const role = Math.random() < 0.5 ? 'binder' : 'connector'
      const side = this[role]
      const sock = this.slots[side].take()
      await sock.close()
      counts.recycled[role]++
      if (role === 'binder') await nap(between(AWAY_MS))
      if (stopping) return
      await this.open(side)
    }
  }

  async stop() {
    for (const slot of Object.values(this.slots)) slot.end()
    await this.chaos
    const socks = Object.values(this.slots).map((s) => s.take()).filter(Boolean)
    for (const s of socks) if (s instanceof Push) s.linger = 0
    await Promise.all(socks.map((s) => s.close()))
    this.sendStats = await this.sending
    await this.receiving
  }
}

/**
 * The child-process pair: a child PUSH connected to a PULL here (tcp) and a child PULL
 * connected to a PUSH here (ipc). One of them is SIGKILLed every few seconds and forked
 * again, so this process sees peers vanish mid-message, mid-handshake, mid-anything.
 */
class ChildPair {
  constructor(id, deadline) {
    this.id = id
    this.deadline = deadline
    this.name = `children (pair ${id})`
    this.children = { push: null, pull: null }
    this.receiver = new Receiver(`${this.name}: child push → tcp pull here`)
    // What the pulling child reports; its counters restart with each child.
    this.remote = { received: 0, bytes: 0, lost: 0, late: 0, lastProgress: now(), name: `${this.name}: push here → ipc pull in child` }
    this.current = { received: 0, bytes: 0, lost: 0, late: 0 }
    this.pushSlot = new Slot()
    this.pullSlot = new Slot()
  }

  async start() {
    this.pull = watch(new Pull(PULL_OPTIONS))
    await this.pull.bind('tcp://127.0.0.1:0')
    this.pullSlot.set(this.pull)
    this.push = watch(new Push({ ...PUSH_OPTIONS, linger: 0 }))
    this.pushAddress = ipcAddress()
    await this.push.bind(this.pushAddress)
    this.pushSlot.set(this.push)
    this.spawn('push')
    this.spawn('pull')
    this.sending = sendLoop(this.remote.name, this.id, this.pushSlot)
    this.receiving = receiveLoop(this.receiver.name, this.pullSlot, this.receiver, this.id)
    this.chaos = this.killLoop()
  }

  spawn(mode) {
    const endpoint = mode === 'push' ? this.pull.lastEndpoint : this.pushAddress
    const child = fork(SCRIPT, ['--worker', mode, '--endpoint', endpoint, '--pair', String(this.id), '--deadline', String(this.deadline)])
    this.children[mode] = child
    child.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
    child.exited.then(({ code, signal }) => {
      if (!child.killedByUs && !stopping) fail(`${this.name}: ${mode} child exited by itself (${signal ?? `code ${code}`})`)
    })
    if (mode === 'pull') {
      this.current = { received: 0, bytes: 0, lost: 0, late: 0 }
      child.on('message', (m) => {
        if (m.error) return fail(`${this.remote.name}: ${m.error}`)
        if (child !== this.children.pull) return
        const c = this.current
        if (m.received > c.received) this.remote.lastProgress = now()
        this.remote.received += m.received - c.received
        this.remote.bytes += m.bytes - c.bytes
        this.remote.lost += m.lost - c.lost
        this.remote.late += m.late - c.late
        this.current = m
      })
    }
  }

  async kill(mode) {
    const child = this.children[mode]
    child.killedByUs = true
    child.kill('SIGKILL')
    await child.exited
  }

  async killLoop() {
    while (!stopping) {
      await nap(between(KILL_MS))
      if (stopping) return
      const r = Math.random()
      const modes = r < 0.4 ? ['push'] : r < 0.8 ? ['pull'] : ['push', 'pull']
      await Promise.all(modes.map((m) => this.kill(m)))
      await nap(between(DEAD_MS))
      if (stopping) return
      for (const m of modes) { this.spawn(m); counts.childRestarts++ }
    }
  }

  async stop() {
    this.pushSlot.end()
    this.pullSlot.end()
    await this.chaos
    await Promise.all(['push', 'pull'].map((m) => this.kill(m)))
    this.push.linger = 0
    await Promise.all([this.push.close(), this.pull.close()])
    this.sendStats = await this.sending
    await this.receiving
  }

  pauseChild(ms) {
    const child = this.children.push
    if (child && child.connected) child.send({ pause: ms }, () => {})
  }

  killNow() {
    for (const c of Object.values(this.children)) if (c && c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  }
}

// ---- sampling and the trend -------------------------------------------------------------

function readProc() {
  const status = readFileSync('/proc/self/status', 'utf8')
  const field = (name) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)[1])
  // readdirSync holds one fd of its own on the directory while listing it.
  return { rss: field('VmRSS') * 1024, threads: field('Threads'), fds: readdirSync('/proc/self/fd').length - 1 }
}

/**
 * One sample, taken at rest: the senders pause, the receivers drain what is in flight, a
 * full GC frees the dropped Buffers, and mimalloc gets past its purge delay (1 s, set in
 * src/lib.rs) before RSS is read. Read while traffic flows, RSS moves by ±10 MiB with the
 * large messages that happen to be queued, which would hide a slow leak.
 */
async function quietSample(childPairs) {
  const liveRss = readProc().rss
  let release
  quiet = new Promise((resolve) => { release = resolve })
  for (const p of childPairs) p.pauseChild(QUIET_MS)
  await sleep(QUIET_MS - PURGE_WAIT_MS)
  gc?.()
  await sleep(PURGE_WAIT_MS)
  const at = readProc()
  const mem = process.memoryUsage()
  quiet = null
  release()
  return { ...at, liveRss, heap: mem.heapUsed, external: mem.external }
}

/** Least-squares slope of ys over xs. */
function slope(xs, ys) {
  const n = xs.length
  const mx = xs.reduce((a, b) => a + b, 0) / n
  const my = ys.reduce((a, b) => a + b, 0) / n
  let num = 0
  let den = 0
  for (let i = 0; i < n; i++) {
    num += (xs[i] - mx) * (ys[i] - my)
    den += (xs[i] - mx) ** 2
  }
  return den ? num / den : 0
}

const leaked = []
const LEAKS = ['fd', 'rss', 'threads']
function injectLeak(kind) {
  if (kind === 'fd') leaked.push(openSync('/dev/null', 'r'))
  // Buffer.alloc writes zeros, so the pages are resident.
  else if (kind === 'rss') leaked.push(Buffer.alloc(MIB))
  else if (kind === 'threads') {
    const w = new Worker('Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0)', { eval: true })
    w.unref()
    leaked.push(w)
  }
}

// ---- main -------------------------------------------------------------------------------

async function main(args) {
  for (const k of Object.keys(args)) {
    if (k !== 'minutes' && k !== 'inject-leak') throw usage(`unknown option --${k}`)
  }
  const minutes = args.minutes === undefined ? 10 : Number(args.minutes)
  if (!(minutes > 0)) throw usage(`--minutes must be a positive number, got "${args.minutes}"`)
  const leaks = args['inject-leak'] === undefined ? [] : args['inject-leak'].split(',')
  for (const l of leaks) if (!LEAKS.includes(l)) throw usage(`--inject-leak takes ${LEAKS.join(', ')} (comma-separated), got "${l}"`)
  if (!existsSync('/proc/self/status')) throw new Error('the soak samples /proc/self: it needs Linux')

  const runMs = minutes * 60_000
  const deadline = Date.now() + runMs + HARD_TIMEOUT_GRACE_MS
  const pairs = [
    new LocalPair(1, 'tcp', 'pull'),
    new LocalPair(2, 'tcp', 'push'),
    new LocalPair(3, 'ipc', 'pull'),
    new LocalPair(4, 'ipc', 'push'),
    new LocalPair(5, 'inproc', 'pull'),
    new ChildPair(6, deadline),
  ]
  const killChildren = () => { for (const p of pairs) if (p instanceof ChildPair) p.killNow() }
  const cleanup = () => { killChildren(); for (const f of ipcFiles) rmSync(f, { force: true }) }

  const hard = setTimeout(() => {
    console.error(`soak: FAIL hard timeout: still running ${HARD_TIMEOUT_GRACE_MS / 1000} s after the planned end (a hang)`)
    cleanup()
    process.exit(2)
  }, deadline - Date.now())
  process.on('exit', killChildren)
  process.on('SIGINT', () => { console.error('soak: interrupted'); cleanup(); process.exit(130) })
  process.on('SIGTERM', () => { console.error('soak: terminated'); cleanup(); process.exit(143) })

  console.log(`soak: ${minutes} min, ${pairs.length - 1} local pairs (tcp, ipc, inproc) + a child-process pair, sampling every ${SAMPLE_MS / 1000} s${leaks.length ? `, INJECTING a leak of ${leaks.join(', ')}` : ''}`)
  const started = now()
  for (const p of pairs) await p.start()

  const receivers = pairs.flatMap((p) => (p instanceof ChildPair ? [p.receiver, p.remote] : [p.receiver]))
  const totals = () => receivers.reduce((t, r) => ({ msgs: t.msgs + r.received, bytes: t.bytes + r.bytes }), { msgs: 0, bytes: 0 })

  const samples = []
  const childPairs = pairs.filter((p) => p instanceof ChildPair)
  let prevMsgs = 0
  const takeSample = async () => {
    if (samples.length) for (const l of leaks) injectLeak(l)
    const s = { t: (now() - started) / 1000, ...(await quietSample(childPairs)) }
    samples.push(s)
    const { msgs, bytes } = totals()
    console.log(
      `[${s.t.toFixed(0).padStart(5)} s] rss ${fmtMiB(s.rss).padStart(10)} (live ${fmtMiB(s.liveRss)}, JS heap ${fmtMiB(s.heap)}, buffers ${fmtMiB(s.external)})  ` +
        `fds ${String(s.fds).padStart(3)}  threads ${String(s.threads).padStart(3)}  ` +
        `msgs ${fmtCount(msgs)} (+${fmtCount(msgs - prevMsgs)})  ${(bytes / 1e9).toFixed(2)} GB  recycles ${counts.recycled.binder + counts.recycled.connector}  child restarts ${counts.childRestarts}`,
    )
    prevMsgs = msgs
  }
  await takeSample()
  // Samples are due at fixed times, whatever each took.
  const sampling = (async () => {
    for (let due = started + SAMPLE_MS; ; due += SAMPLE_MS) {
      await nap(due - now())
      if (stopping) return
      await takeSample()
    }
  })()
  const watchdog = setInterval(() => {
    for (const r of receivers) {
      const idle = now() - r.lastProgress
      if (idle > STALL_MS) fail(`${r.name}: no message for ${(idle / 1000).toFixed(0)} s`)
    }
  }, 1_000)
  const planned = setTimeout(stopRun, runMs)

  await runEnded
  stopping = true
  wakeAll()
  clearTimeout(planned)
  clearInterval(watchdog)
  await sampling
  if (!failures.length) await takeSample()
  const elapsed = (now() - started) / 1000

  // Everything must close by itself; the hard timeout catches a close that hangs.
  await Promise.all(pairs.map((p) => p.stop()))
  cleanup()
  clearTimeout(hard)

  // ---- summary ----
  const { msgs, bytes } = totals()
  const sent = pairs.reduce((n, p) => n + (p.sendStats?.sent ?? 0), 0)
  const aborted = pairs.reduce((n, p) => n + (p.sendStats?.aborted ?? 0), 0)
  const lost = receivers.reduce((n, r) => n + r.lost, 0)
  const late = receivers.reduce((n, r) => n + r.late, 0)
  console.log(`\nsoak: summary after ${(elapsed / 60).toFixed(2)} min`)
  for (const r of receivers) console.log(`  ${r.name}: ${fmtCount(r.received)} msgs, ${(r.bytes / 1e6).toFixed(0)} MB`)
  console.log(`  received ${fmtCount(msgs)} messages intact (${(bytes / 1e9).toFixed(2)} GB); sent from this process ${fmtCount(sent)}`)
  console.log(`  dropped with closed/killed peers: ${fmtCount(lost)} (sends aborted by a close: ${fmtCount(aborted)}); arrived out of order: ${fmtCount(late)}`)
  console.log(`  sockets recycled: ${counts.recycled.binder} binders, ${counts.recycled.connector} connectors; child restarts ${counts.childRestarts}; moved to a new port ${counts.rebindNewPort}`)
  console.log(`  events here: ${counts.connect} connects (${counts.reconnect} of them reconnects of a live socket), ${counts.accept} accepts, ${counts.disconnect} disconnects, ${counts.retry} connect retries, ${counts.handshakeErrors} handshake errors`)

  const range = (key, f) => { const v = samples.map((s) => s[key]); return `${f(Math.min(...v))} … ${f(Math.max(...v))}` }
  console.log(`  samples: ${samples.length}; rss ${range('rss', fmtMiB)} (live ${range('liveRss', fmtMiB)}), fds ${range('fds', String)}, threads ${range('threads', String)}`)

  const half = samples.filter((s) => s.t >= elapsed / 2)
  // A run cut short by a failure has no meaningful second half.
  if (!failures.length && half.length >= 3) {
    const judged = minutes >= MIN_TREND_MINUTES
    const xs = half.map((s) => s.t / 60)
    const slopes = {
      rssMiB: slope(xs, half.map((s) => s.rss / MIB)),
      fds: slope(xs, half.map((s) => s.fds)),
      threads: slope(xs, half.map((s) => s.threads)),
    }
    const unit = { rssMiB: 'MiB/min', fds: 'fds/min', threads: 'threads/min' }
    console.log(
      `  trend over the second half (${half.length} samples from ${half[0].t.toFixed(0)} s), least-squares slopes` +
        (judged ? ':' : ` (not judged: only runs of ${MIN_TREND_MINUTES} minutes or more are):`),
    )
    const growing = judged ? Object.keys(slopes).filter((k) => slopes[k] > TOLERANCE[k]) : []
    for (const k of Object.keys(slopes)) {
      console.log(`    ${k.padEnd(8)} ${slopes[k] >= 0 ? '+' : ''}${slopes[k].toFixed(3)} ${unit[k]} (tolerance +${TOLERANCE[k]})${growing.includes(k) ? '  <-- GROWING' : ''}`)
    }
    for (const k of growing) fail(`${k === 'rssMiB' ? 'RSS' : k} grows by ${slopes[k].toFixed(2)} ${unit[k]} over the second half (tolerance ${TOLERANCE[k]}): a leak`)
  }

  if (failures.length) {
    console.log(`\nsoak: FAILED (${failures.length}):`)
    for (const f of failures) console.log(`  - ${f}`)
    return 1
  }
  console.log('\nsoak: PASSED')
  return 0
}

const argv = process.argv.slice(2)
if (argv[0] === '--worker') {
  const args = parseArgs(argv)
  runWorker(args).catch((err) => {
    console.error(`soak worker ${args.worker}: ${err.stack ?? err}`)
    process.exit(1)
  })
} else {
  Promise.resolve()
    .then(() => main(parseArgs(argv)))
    .then(
      (code) => process.exit(code),
      (err) => {
        console.error(err.usage ? `soak: ${err.message}` : `soak: FAIL ${err.stack ?? err}`)
        process.exit(err.usage ? 2 : 1)
      },
    )
}
