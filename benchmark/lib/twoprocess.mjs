// Scenarios with the producer and the consumer in separate processes (c: throughput over
// tcp, e: one-way latency at a fixed rate), and the memory scenarios (f), whose every run is
// a fresh process loading only the library it measures.
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

/** One round of (c): msg/s as the consumer saw it, first to last message. */
export async function twoProcessThroughput(lib, { size, n, timeoutMs }) {
  const { received } = await pair(lib, { mode: 'throughput', n }, { mode: 'throughput', n, size }, timeoutMs)
  return received.rate
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

/** One memory run (f) in a fresh process. */
export async function memoryRun(lib, args, timeoutMs) {
  const w = startWorker('memory.mjs', { lib, ...args }, { timeoutMs })
  try {
    const result = await w.next()
    await w.done()
    return result
  } finally {
    w.kill()
  }
}
