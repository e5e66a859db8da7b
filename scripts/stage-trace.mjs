// Where the time of a received message goes, stage by stage, for scenario (e) (one-way
// latency, two processes, tcp). Needs an addon built with the `stage-trace` feature:
//
//   CARGO_TARGET_DIR=target-trace npx napi build --platform --release --features stage-trace \
//     --js binding.js --dts binding.d.ts
//   ZEROPIPE_TRACE_FILE=/tmp/zp-trace/run node benchmark/run.mjs --only e --rounds 1
//   node scripts/stage-trace.mjs /tmp/zp-trace/run
//
// Each process writes `<base>.<pid>`: the consumer the addon's receive batches, the producer
// its write syscalls; the consumer's worker also writes `<base>.js.<pid>`: each message's send
// stamp and the time its `for await` got it. A batch covers the next n messages in arrival
// order; only one-message batches are measured, where the addon's "latest" stamps are that
// message's. All stamps are CLOCK_MONOTONIC (process.hrtime), so they compare across the two
// processes. Run one round per base (a second round would mix two pairs' files).
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'

const base = process.argv[2]
if (!base) throw new Error('usage: node scripts/stage-trace.mjs <ZEROPIPE_TRACE_FILE base>')
const dir = path.dirname(base)
const prefix = `${path.basename(base)}.`
const files = readdirSync(dir).filter((f) => f.startsWith(prefix))
const jsFiles = files.filter((f) => f.startsWith(`${prefix}js.`))
if (jsFiles.length !== 1) throw new Error(`expected one consumer file ${prefix}js.<pid>, found ${jsFiles.length}`)
const consumerPid = jsFiles[0].slice(`${prefix}js.`.length)
const lines = (f) => readFileSync(path.join(dir, f), 'utf8').split('\n').filter(Boolean).map((l) => l.split(' '))

const msgs = lines(jsFiles[0]).map(([, sent, got, warm]) => ({ sent: BigInt(sent), got: BigInt(got), warm: warm === 'warm' }))
const batches = []
const writes = []
for (const f of files.filter((f) => /^\d+$/.test(f.slice(prefix.length)))) {
  const pid = f.slice(prefix.length)
  for (const [kind, ...v] of lines(f)) {
    if (kind === 'batch' && pid === consumerPid) batches.push(v.map(BigInt))
    else if (kind === 'write' && pid !== consumerPid) writes.push(BigInt(v[0]))
  }
}
writes.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))

/** The first write at or after `t`. */
function writeAfter(t) {
  let lo = 0
  let hi = writes.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (writes[mid] < t) lo = mid + 1
    else hi = mid
  }
  return writes[lo]
}

const STAGES = [
  ['send → write', 'producer: send() to its write syscall'],
  ['write → read', 'kernel loopback and the consumer I/O thread waking to read'],
  ['read → pipe', 'decoding, into the socket pipe'],
  ['pipe → waker', 'readiness, the waker called'],
  ['waker → tryReceive', 'JS thread woken, waker dispatched, JS up to tryReceive'],
  ['tryReceive', 'the native call taking the batch'],
  ['tryReceive → user', 'JS: batch read out, promise chain to the for await body'],
  ['read → user', 'the whole receive side'],
  ['send → user', 'end to end'],
]
const samples = new Map(STAGES.map(([k]) => [k, []]))
const add = (k, ns) => samples.get(k).push(Number(ns) / 1e3)
let at = 0
let multi = 0
let noWake = 0
for (const [n, read, push, wake, entered, returned] of batches) {
  const group = msgs.slice(at, at + Number(n))
  at += Number(n)
  if (group.length < n) break
  if (n !== 1n) {
    multi++
    continue
  }
  const m = group[0]
  // A read older than the send belongs to another message: the stamps are not this one's.
  if (m.warm || read < m.sent) continue
  const w = writeAfter(m.sent)
  if (w !== undefined && w <= read) {
    add('send → write', w - m.sent)
    add('write → read', read - w)
  }
  add('read → pipe', push - read)
  if (wake >= push) {
    add('pipe → waker', wake - push)
    add('waker → tryReceive', entered - wake)
  } else noWake++
  add('tryReceive', returned - entered)
  add('tryReceive → user', m.got - returned)
  add('read → user', m.got - read)
  add('send → user', m.got - m.sent)
}

const pct = (sorted, p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] : NaN)
console.log(`${msgs.length} messages, ${batches.length} batches (${multi} of several messages, not measured), ${noWake} single batches found without a wake`)
console.log('stage                 samples     p50 µs     p90 µs     p99 µs')
for (const [k, what] of STAGES) {
  const s = Float64Array.from(samples.get(k)).sort()
  const f = (x) => x.toFixed(1).padStart(10)
  console.log(`${k.padEnd(20)} ${String(s.length).padStart(8)} ${f(pct(s, 50))} ${f(pct(s, 90))} ${f(pct(s, 99))}   ${what}`)
}
