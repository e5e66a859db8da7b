// One round of each scenario, every one in fresh child processes that load only the library
// measured: nothing a round does (JIT, heap, threads, the other library's addon) carries over
// to the next, and the runner itself loads neither library.
import { startWorker } from './children.mjs'

/** Starts a consumer, then a producer pointed at the consumer's endpoint; returns both results. */
async function pair(lib, consumerArgs, producerArgs, timeoutMs) {
  const consumer = startWorker('consumer.mjs', { lib, ...consumerArgs }, { timeoutMs })
  let producer = null
  try {
    const { endpoint } = await consumer.next()
    producer = startWorker('producer.mjs', { lib, endpoint, ...producerArgs }, { timeoutMs })
    const received = await consumer.next()
    const sent = await producer.next()
    await consumer.done()
    // The consumer has everything: the producer may now close without losing anything.
    producer.release()
    await producer.done()
    return { received, sent }
  } finally {
    consumer.kill()
    if (producer) producer.kill()
  }
}

/** One round of (c): { rate, secs } as the consumer saw them, first to last message. */
export async function twoProcessThroughput(lib, { size, n, timeoutMs, curve = false }) {
  const c = curve ? { curve: 1 } : {}
  const { received } = await pair(lib, { mode: 'throughput', n, ...c }, { mode: 'throughput', n, size, ...c }, timeoutMs)
  return received
}

/** One round of (e): the consumer's latency percentiles (µs) and how late the producer sent. */
export async function twoProcessLatency(lib, { rate, warmupMs, measureMs, timeoutMs }) {
  const { received, sent } = await pair(
    lib,
    { mode: 'latency' },
    { mode: 'latency', rate, 'warmup-ms': warmupMs, 'measure-ms': measureMs },
    timeoutMs,
  )
  return { ...received, lateP50: sent.lateP50, lateP99: sent.lateP99 }
}

/** Runs `workers/<script>` once and returns the one JSON line it prints. */
async function once(script, args, timeoutMs) {
  const w = startWorker(script, args, { timeoutMs })
  try {
    const result = await w.next()
    await w.done()
    return result
  } finally {
    w.kill()
  }
}

/** One round of (a)/(b): a Push and a Pull in one fresh process; { rate, cpuUsPerMsg, … }. */
export const pairRound = (lib, { transport, size, n, timeoutMs, curve = false }) =>
  once('pair.mjs', { lib, transport, size, n, ...(curve ? { curve: 1 } : {}) }, timeoutMs)

/** One handshake-rate run in a fresh process: { rate, handshakes, secs }. */
export const handshakeRound = (lib, { curve, seconds, concurrency, timeoutMs }) =>
  once('handshake.mjs', { lib, curve: curve ? 1 : 0, seconds, concurrency }, timeoutMs)

/** One round of (d) in a fresh process: { rate } for zeropipe, { ok, codes, n } for zeromq.js. */
export const moduleApiRound = (lib, { size, n, timeoutMs }) =>
  once('module-api.mjs', { lib, size, n, 'timeout-ms': timeoutMs }, timeoutMs + 10_000)

/** One memory run (f) in a fresh process. */
export const memoryRun = (lib, args, timeoutMs) => once('memory.mjs', { lib, ...args }, timeoutMs)
