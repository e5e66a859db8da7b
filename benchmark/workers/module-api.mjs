// One round of scenario (d) in a fresh process that loads only the library measured:
// zeropipe's module API under un-awaited concurrent push() calls, or, for zeromq.js (which
// has no module API), what its Push does with the same un-awaited concurrent sends.
// Prints one JSON line.
//   --lib zeropipe|zeromq.js  --size <bytes>  --n <calls>  --timeout-ms <ms>
import net from 'node:net'
import { closePair, loadLib, withTimeout } from '../lib/sockets.mjs'
import { emit, main, parseArgs } from './common.mjs'

/**
 * A tcp port nobody listens on right now, for the module API (it binds a fixed endpoint and
 * cannot be given port 0). The port is released before zeropipe binds it; on loopback
 * another process taking it within that instant is unlikely enough for a benchmark.
 */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

/**
 * One round of (d) with zeropipe's module API: n un-awaited push() calls fired in a loop
 * (they queue in call order), then awaited together, while `for await` over pull()
 * consumes. msg/s from the first call to the last job received.
 */
async function moduleApiThroughput(zp, { size, n, timeoutMs }) {
  const port = await freePort()
  zp.configure({ endpoint: `tcp://127.0.0.1:${port}` })
  try {
    const payload = Buffer.alloc(size, 7)
    const jobs = zp.pull()
    // Warm-up on the same stream: a second pull() stream would share the socket anyway, and
    // closing a warm-up stream would close the module's PULL with it.
    await withTimeout(Promise.all([zp.push(payload), jobs.next()]), timeoutMs, 'module API warm-up')
    const t0 = process.hrtime.bigint()
    const consumer = (async () => {
      let got = 0
      for await (const [m] of jobs) {
        if (m.length !== size) throw new Error(`received ${m.length} bytes, sent ${size}`)
        if (++got === n) break
      }
    })()
    const calls = new Array(n)
    for (let i = 0; i < n; i++) calls[i] = zp.push(payload)
    await withTimeout(Promise.all([Promise.all(calls), consumer]), timeoutMs, `module API ${size} B × ${n}`)
    return n / (Number(process.hrtime.bigint() - t0) / 1e9)
  } finally {
    await zp.close()
  }
}

/**
 * The zeromq.js side of (d): it has no module API, so we do what a port of the module API
 * onto it would do — a Push binds, a Pull connects, and n sends are fired at once without
 * awaiting — and report what really happens: how many calls resolved, and the error codes
 * of the rest. (Fired before the Pull is connected, as push() is called at start-up.)
 */
async function zmqConcurrentSends(zmq, { size, n, timeoutMs }) {
  const pull = new zmq.Pull()
  const push = new zmq.Push()
  try {
    await push.bind('tcp://127.0.0.1:*')
    pull.connect(push.lastEndpoint)
    const payload = Buffer.alloc(size, 7)
    const calls = []
    for (let i = 0; i < n; i++) {
      try {
        calls.push(push.send(payload))
      } catch (err) {
        // Whether the refusal is a throw or a rejection, it counts the same.
        calls.push(Promise.reject(err))
      }
    }
    // Drain what was accepted, so a pending send can complete rather than be cut off by close.
    // Its end (or error) when the socket closes below does not matter.
    ;(async () => {
      for await (const _ of pull);
    })().catch(() => {})
    const settled = await withTimeout(Promise.allSettled(calls), timeoutMs, 'zeromq.js concurrent sends')
    const codes = {}
    let ok = 0
    for (const s of settled) {
      if (s.status === 'fulfilled') ok++
      else {
        const code = (s.reason && s.reason.code) || String(s.reason)
        codes[code] = (codes[code] || 0) + 1
      }
    }
    return { ok, codes, n }
  } finally {
    await closePair(push, pull)
  }
}

main(async () => {
  const args = parseArgs()
  const lib = await loadLib(args.lib)
  const opts = { size: Number(args.size), n: Number(args.n), timeoutMs: Number(args['timeout-ms'] ?? 120_000) }
  if (args.lib === 'zeropipe') emit({ rate: await moduleApiThroughput(lib, opts) })
  else emit(await zmqConcurrentSends(lib, opts))
})
