// The consuming half of the two-process scenarios (c: throughput, e: latency). It binds, so
// the parent can hand its resolved tcp port to the producer, and reports one JSON result.
//   --lib zeropipe|zeromq.js  --mode throughput|latency  --n <messages, throughput only>
//   --curve 1: a CURVE server (the producer is the client)
import { writeFileSync } from 'node:fs'
import { percentileSorted } from '../lib/stats.mjs'
import { closePair, loadLib, useCurve } from '../lib/sockets.mjs'
import { emit, main, parseArgs } from './common.mjs'

const PHASE_WARMUP = 0
const PHASE_MEASURE = 1
const PHASE_END = 2

main(async () => {
  const args = parseArgs()
  const lib = await loadLib(args.lib)
  const pull = new lib.Pull()
  if (args.curve === '1') useCurve(pull, 'server')
  await pull.bind('tcp://127.0.0.1:*')
  emit({ endpoint: pull.lastEndpoint })

  if (args.mode === 'throughput') {
    const n = Number(args.n)
    // The producer's warm-up message: the connection and handshake are done once it is here.
    await pull.receive()
    let got = 0
    let first = 0n
    let last = 0n
    for await (const [m] of pull) {
      last = process.hrtime.bigint()
      if (got === 0) first = last
      if (m.length === 0) throw new Error('empty message')
      if (++got === n) break
    }
    // first→last covers n-1 gaps between arrivals: the producer's start-up is not timed.
    const secs = Number(last - first) / 1e9
    emit({ messages: n, secs, rate: (n - 1) / secs })
  } else if (args.mode === 'latency') {
    const lat = []
    let warm = 0
    // With an addon built with the stage-trace feature: each message's send stamp and arrival,
    // for scripts/stage-trace.mjs to pair with the addon's per-stage stamps.
    const traceFile = process.env.ZEROPIPE_TRACE_FILE
    const arrivals = traceFile && args.lib === 'zeropipe' ? [] : null
    for await (const [m] of pull) {
      // Read the clock before anything else: what follows is our bookkeeping, not transit.
      const now = process.hrtime.bigint()
      const phase = m.readUInt32LE(12)
      if (phase === PHASE_END) break
      if (arrivals) arrivals.push(`msg ${m.readBigUInt64LE(0)} ${now}${phase === PHASE_WARMUP ? ' warm' : ''}`)
      if (phase === PHASE_MEASURE) lat.push(Number(now - m.readBigUInt64LE(0)) / 1e3)
      else if (phase === PHASE_WARMUP) warm++
    }
    if (arrivals) writeFileSync(`${traceFile}.js.${process.pid}`, `${arrivals.join('\n')}\n`)
    const sorted = Float64Array.from(lat).sort()
    emit({
      warmup: warm,
      samples: sorted.length,
      p50: percentileSorted(sorted, 50),
      p99: percentileSorted(sorted, 99),
      p999: percentileSorted(sorted, 99.9),
      max: sorted[sorted.length - 1],
    })
  } else {
    throw new Error(`unknown mode ${args.mode}`)
  }
  await closePair(null, pull)
})
