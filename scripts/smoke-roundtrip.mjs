// The round trip scripts/smoke-runtimes.sh runs under Bun and Deno (and runs under Node):
// 100 000 two-frame messages Push→Pull over tcp, each checked in order, then one job
// through the module API's push()/pull(). Prints one line; exits non-zero on any mismatch.
import { Pull, Push, close, configure, pull, push } from 'zeropipe'

const N = 100_000
const runtime = globalThis.Bun ? `bun ${Bun.version}` : globalThis.Deno ? `deno ${Deno.version.deno}` : `node ${process.version}`
const started = performance.now()

const sender = new Push()
const receiver = new Pull()
await receiver.bind('tcp://127.0.0.1:*')
sender.connect(receiver.lastEndpoint)
const sending = (async () => {
  for (let i = 0; i < N; i++) await sender.send(['job', String(i)])
})()
for (let i = 0; i < N; i++) {
  const [a, b] = await receiver.receive()
  if (String(a) !== 'job' || String(b) !== String(i)) throw new Error(`message ${i}: got ${a} ${b}`)
}
await sending
await Promise.all([sender.close(), receiver.close()])
const ms = performance.now() - started

configure({ endpoint: 'inproc://runtimes-smoke' })
const queued = push('module job')
let job
for await (const frames of pull()) {
  job = frames.map(String)
  break
}
await queued
await close()
if (JSON.stringify(job) !== '["module job"]') throw new Error(`module job: got ${JSON.stringify(job)}`)

console.log(`${runtime}: ${N} messages round trip in ${ms.toFixed(0)} ms, module push()/pull() ok`)
