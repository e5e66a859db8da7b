// One round of the one-process throughput sweep (scenarios a and b), measured as a user
// measures it: a fresh Node process that loads only the library measured, one Push bound
// and one Pull connected in this process, one warm-up message, then `await push.send(buf)`
// per message (the same Buffer every time) while a `for await` loop on the Pull counts them.
// Prints one JSON line. It runs on its own too, which is the way to time a case as a whole
// process, outside the harness:
//
//   /usr/bin/time -v node benchmark/workers/pair.mjs --lib zeropipe --transport tcp --size 16 --n 1000000
//
//   --lib zeropipe|zeromq.js   --transport tcp|ipc|inproc   --size <bytes>   --n <messages>
//   --bind push|pull           which side binds (default push, as the user did)
//   --warmup <messages>        messages sent and received before the clock starts (default 1)
//   --curve 1                  encrypt with CURVE (the Pull is the server, the Push the client)
import { performance } from 'node:perf_hooks'
import { address, cleanupIpcFiles, closePair, connectAddress, loadLib, useCurve } from '../lib/sockets.mjs'
import { emit, main, parseArgs } from './common.mjs'

main(async () => {
  const args = parseArgs()
  const lib = await loadLib(args.lib)
  const transport = args.transport ?? 'tcp'
  const size = Number(args.size)
  const n = Number(args.n)
  const warmup = Number(args.warmup ?? 1)
  const bindPush = (args.bind ?? 'push') === 'push'
  if (!(size >= 0 && n > 0 && warmup >= 0)) throw new Error('--size, --n and --warmup must be numbers (n > 0)')

  const push = new lib.Push()
  const pull = new lib.Pull()
  if (args.curve === '1') {
    useCurve(pull, 'server')
    useCurve(push, 'client')
  }
  const buf = Buffer.alloc(size, 7)
  try {
    const bound = address(transport)
    if (bindPush) {
      await push.bind(bound)
      pull.connect(connectAddress(push, bound))
    } else {
      await pull.bind(bound)
      push.connect(connectAddress(pull, bound))
    }
    for (let i = 0; i < warmup; i++) {
      await push.send(buf)
      await pull.receive()
    }

    const cpu0 = process.cpuUsage()
    const elu0 = performance.eventLoopUtilization()
    const t0 = process.hrtime.bigint()
    const consumer = (async () => {
      let got = 0
      for await (const [m] of pull) {
        if (m.length !== size) throw new Error(`received ${m.length} bytes, sent ${size}`)
        if (++got === n) break
      }
    })()
    for (let i = 0; i < n; i++) await push.send(buf)
    await consumer
    const secs = Number(process.hrtime.bigint() - t0) / 1e9
    const cpu = process.cpuUsage(cpu0)

    emit({
      lib: args.lib,
      transport,
      curve: args.curve === '1',
      size,
      n,
      secs,
      rate: n / secs,
      // CPU of the whole process (the JS thread and the libraries' I/O threads) per message:
      // a second angle that a busy neighbour on the machine disturbs less than the rate.
      cpuUsPerMsg: (cpu.user + cpu.system) / n,
      // Share of the timed window the JS thread was busy (not waiting in the event loop).
      jsBusy: performance.eventLoopUtilization(elu0).utilization,
    })
  } finally {
    await closePair(push, pull)
    cleanupIpcFiles()
  }
})
