// The producing half of the two-process scenarios (c: throughput, e: latency). It connects
// to the consumer's endpoint, and stays alive after its last send until the parent closes our
// stdin (the consumer has everything by then), so no linger setting can drop messages.
//   --lib L --endpoint tcp://… --mode throughput --n <messages> --size <bytes>
//   --lib L --endpoint tcp://… --mode latency --rate <msg/s> --warmup-ms <ms> --measure-ms <ms>
//   --curve 1: a CURVE client (of the consumer, the server)
import { closePair, loadLib, useCurve } from '../lib/sockets.mjs'
import { percentileSorted } from '../lib/stats.mjs'
import { emit, main, parentDone, parseArgs, yieldToLoop } from './common.mjs'

const PHASE_WARMUP = 0
const PHASE_MEASURE = 1
const PHASE_END = 2

main(async () => {
  const args = parseArgs()
  const done = parentDone()
  const lib = await loadLib(args.lib)
  const push = new lib.Push()
  if (args.curve === '1') useCurve(push, 'client')
  push.connect(args.endpoint)

  if (args.mode === 'throughput') {
    const n = Number(args.n)
    const payload = Buffer.alloc(Number(args.size), 7)
    await push.send(payload)
    for (let i = 0; i < n; i++) await push.send(payload)
    emit({ sent: n })
  } else if (args.mode === 'latency') {
    const rate = Number(args.rate)
    const intervalNs = BigInt(Math.round(1e9 / rate))
    const warmupN = Math.round((rate * Number(args['warmup-ms'])) / 1000)
    const measureN = Math.round((rate * Number(args['measure-ms'])) / 1000)
    const total = warmupN + measureN
    // How late each send left compared with its slot: if this grows, the producer could not
    // hold the rate and the latencies include its own queueing.
    const lateUs = new Float64Array(total)
    // Absolute due times (start + i·interval): a late send makes the next ones come sooner
    // instead of shifting the whole schedule, so the average rate stays exact.
    let due = process.hrtime.bigint() + intervalNs
    for (let i = 0; i < total; i++) {
      // Busy-wait, but through setImmediate: the event loop keeps polling the socket (and
      // zeromq.js's completions) while we wait; a timer would be far coarser than 100 µs.
      while (process.hrtime.bigint() < due) await yieldToLoop()
      // A fresh buffer per message: nothing is shared with a frame still in flight.
      const buf = Buffer.allocUnsafe(16)
      buf.writeUInt32LE(i, 8)
      buf.writeUInt32LE(i < warmupN ? PHASE_WARMUP : PHASE_MEASURE, 12)
      const t = process.hrtime.bigint()
      buf.writeBigUInt64LE(t, 0)
      lateUs[i] = Number(t - due) / 1e3
      await push.send(buf)
      due += intervalNs
    }
    const end = Buffer.alloc(16)
    end.writeUInt32LE(PHASE_END, 12)
    await push.send(end)
    const sorted = lateUs.subarray(warmupN).sort()
    emit({ sent: total, lateP50: percentileSorted(sorted, 50), lateP99: percentileSorted(sorted, 99) })
  } else {
    throw new Error(`unknown mode ${args.mode}`)
  }
  await done
  await closePair(push, null)
})
