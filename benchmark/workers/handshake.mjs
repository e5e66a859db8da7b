// Handshakes per second one server accepts: a Pull bound on tcp loopback, and `concurrency`
// loops that each connect a fresh Push, wait for its `handshake` event, close it, and start
// over, for `seconds`. With CURVE, the Pull is the server and each Push a client with the
// same long-term keys (each connection still makes its own short-term keys, as libzmq does).
// Client and server share this one process, so the rate pays for both sides' crypto.
//   --lib zeropipe|zeromq.js  --curve 0|1  --seconds <s>  --concurrency <n>
import { closePair, loadLib, useCurve, withTimeout } from '../lib/sockets.mjs'
import { emit, main, parseArgs } from './common.mjs'

main(async () => {
  const args = parseArgs()
  const lib = await loadLib(args.lib)
  const curve = args.curve === '1'
  const seconds = Number(args.seconds)
  const concurrency = Number(args.concurrency ?? 4)
  const server = new lib.Pull()
  if (curve) useCurve(server, 'server')
  await server.bind('tcp://127.0.0.1:*')
  const endpoint = server.lastEndpoint

  /** One connection: connect, handshake, close. */
  async function once() {
    const push = new lib.Push()
    push.linger = 0
    if (curve) useCurve(push, 'client')
    const shook = new Promise((resolve) => push.events.on('handshake', resolve))
    push.connect(endpoint)
    await withTimeout(shook, 10_000, 'a handshake')
    await closePair(push, null)
  }

  // Warm-up: the first connections pay for JIT and lazy set-up.
  for (let i = 0; i < 3; i++) await once()
  let handshakes = 0
  const t0 = process.hrtime.bigint()
  const end = Date.now() + seconds * 1000
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < end) {
        await once()
        handshakes++
      }
    }),
  )
  const secs = Number(process.hrtime.bigint() - t0) / 1e9
  emit({ lib: args.lib, curve, handshakes, secs, rate: handshakes / secs })
  await closePair(null, server)
})
