// A quick side-by-side throughput check (the full benchmark is the next issue's work):
// zeropipe and zeromq.js in the same process and run, alternating rounds, one process,
// `await push.send()` per message and `for await` on the pull, over tcp loopback.
// Prints msg/s per library and the ratio zeropipe / zeromq.js (medians of the rounds).
import * as zp from 'zeropipe'
import * as zmq from 'zeromq'

const ROUNDS = Number(process.env.ROUNDS || 3)
const SECONDS_PER_CASE = Number(process.env.CASE_SECONDS || 1)
const SIZES = (process.env.SIZES || '16,1024,65536,1048576').split(',').map(Number)

const PROTO = process.env.PROTO || 'tcp'
let seq = 0

async function run(lib, size, proto = PROTO) {
  const pull = new lib.Pull()
  const push = new lib.Push()
  const addr = {
    tcp: 'tcp://127.0.0.1:*',
    ipc: `ipc:///tmp/zp-quick-${process.pid}-${seq++}.sock`,
    inproc: `inproc://zp-quick-${seq++}`,
  }[proto]
  await pull.bind(addr)
  push.connect(proto === 'tcp' ? pull.lastEndpoint : addr)
  const payload = Buffer.alloc(size, 7)
  // Warm up the connection so the handshake is not measured.
  await push.send(payload)
  await pull.receive()
  const budget = Math.max(200, Math.floor((SECONDS_PER_CASE * 4e8) / Math.max(size, 2000)))
  const n = Math.min(budget, 300000)
  const t0 = process.hrtime.bigint()
  const consumer = (async () => {
    let got = 0
    for await (const _ of pull) if (++got === n) break
  })()
  for (let i = 0; i < n; i++) await push.send(payload)
  await consumer
  const secs = Number(process.hrtime.bigint() - t0) / 1e9
  push.linger = 0
  await push.close()
  await pull.close()
  return n / secs
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const fmt = (x) => (x >= 1e6 ? `${(x / 1e6).toFixed(2)} M` : `${(x / 1e3).toFixed(1)} k`)

console.log(`node ${process.version}, ${ROUNDS} alternating rounds per size, ${PROTO}, one process, await send + for await`)
console.log('size      | zeropipe msg/s | zeromq.js msg/s | ratio')
for (const size of SIZES) {
  const a = []
  const b = []
  for (let r = 0; r < ROUNDS; r++) {
    a.push(await run(zp, size))
    b.push(await run(zmq, size))
  }
  const ma = median(a)
  const mb = median(b)
  console.log(`${String(size).padEnd(9)} | ${fmt(ma).padStart(14)} | ${fmt(mb).padStart(15)} | ${(ma / mb).toFixed(2)}x`)
}
