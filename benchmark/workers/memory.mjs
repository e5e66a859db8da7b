// Memory scenarios (f), one library per fresh process so neither library's allocations, nor
// the runner's own heap, show up in the other's numbers.
//   --lib L --mode burst --n <messages> --size <bytes>
//       f1: peak RSS while n messages go through a tcp pair in this process
//           (await send per message, a for-await consumer alongside).
//   --lib L --mode nohwm --size <bytes> --seconds <s> --send-timeout <ms>
//       f2: a Pull binds and never receives; a Push sends until the high-water marks (and
//           the kernel's socket buffers) are full and send() fails with EAGAIN, then keeps
//           trying. Memory must stop growing at that point.
import { closePair, loadLib, peakRss, rssNow } from '../lib/sockets.mjs'
import { emit, main, parseArgs } from './common.mjs'

main(async () => {
  const args = parseArgs()
  const lib = await loadLib(args.lib)
  const size = Number(args.size)
  const pull = new lib.Pull()
  const push = new lib.Push(args.mode === 'nohwm' ? { sendTimeout: Number(args['send-timeout']) } : {})
  await pull.bind('tcp://127.0.0.1:*')
  push.connect(pull.lastEndpoint)

  if (args.mode === 'burst') {
    const n = Number(args.n)
    const payload = Buffer.alloc(size, 7)
    await push.send(payload)
    await pull.receive()
    const baseline = rssNow()
    const t0 = process.hrtime.bigint()
    const consumer = (async () => {
      let got = 0
      for await (const _ of pull) if (++got === n) break
    })()
    for (let i = 0; i < n; i++) await push.send(payload)
    await consumer
    const secs = Number(process.hrtime.bigint() - t0) / 1e9
    emit({ baseline, peak: peakRss(), end: rssNow(), secs, rate: n / secs })
  } else if (args.mode === 'nohwm') {
    const seconds = Number(args.seconds)
    const start = rssNow()
    const samples = []
    let sent = 0
    let eagain = 0
    let firstCode = null
    let atHwm = null
    let sentAtHwm = 0
    let tHwm = 0n
    let maxAfter = 0
    // RSS halfway through the time past the marks: growth in the second half tells a slow
    // steady leak from a one-off settling right after the first EAGAIN.
    let mid = null
    const windowNs = BigInt(Math.round(seconds * 1e9))
    let lastSample = 0n
    const t0 = process.hrtime.bigint()
    for (;;) {
      const now = process.hrtime.bigint()
      if (atHwm !== null && now - tHwm >= windowNs) break
      if (atHwm !== null && mid === null && now - tHwm >= windowNs / 2n) mid = rssNow()
      // Give up if the marks are never reached (that would itself be a finding: unbounded
      // queueing); 30 s is far beyond what either library needs on loopback.
      if (atHwm === null && now - t0 > 30_000_000_000n) throw new Error(`no EAGAIN after ${sent} sends in 30 s`)
      // A fresh buffer per message: with one shared buffer the zero-copy path (64 KiB and up)
      // would queue references to the same bytes and hide what queued messages really cost.
      const buf = Buffer.alloc(size, sent & 0xff)
      try {
        await push.send(buf)
        sent++
      } catch (err) {
        if (err.code !== 'EAGAIN') throw err
        eagain++
        if (atHwm === null) {
          firstCode = err.code
          atHwm = rssNow()
          sentAtHwm = sent
          tHwm = process.hrtime.bigint()
        }
      }
      // Sample every ~20 ms (every attempt after the marks are reached: each takes the
      // send timeout), so growth between the first EAGAIN and the end would show.
      if (now - lastSample >= 20_000_000n) {
        lastSample = now
        const rss = rssNow()
        samples.push([Number(now - t0) / 1e9, rss])
        if (atHwm !== null) maxAfter = Math.max(maxAfter, rss)
      }
    }
    const end = rssNow()
    emit({
      start,
      atHwm,
      end,
      maxAfterHwm: Math.max(maxAfter, end),
      growthSecondHalf: end - (mid ?? atHwm),
      sentBeforeHwm: sentAtHwm,
      sentAfterHwm: sent - sentAtHwm,
      eagain,
      firstCode,
      peak: peakRss(),
      samples: samples.length,
    })
  } else {
    throw new Error(`unknown mode ${args.mode}`)
  }
  await closePair(push, pull)
})
