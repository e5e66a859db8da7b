import * as zp from 'zeropipe'
import * as zmq from 'zeromq'
const lib = process.env.LIB === 'zmq' ? zmq : zp
const size = Number(process.env.SIZE || 16), n = Number(process.env.N || 300000), proto = process.env.PROTO || 'tcp'
const pull = new lib.Pull(); const push = new lib.Push()
const addr = { tcp: 'tcp://127.0.0.1:*', ipc: `ipc:///tmp/zp-one-${process.pid}.sock`, inproc: 'inproc://one' }[proto]
await pull.bind(addr); push.connect(proto === 'tcp' ? pull.lastEndpoint : addr)
const payload = Buffer.alloc(size, 7)
await push.send(payload); await pull.receive()
for (let rep = 0; rep < Number(process.env.REPS || 1); rep++) {
const t0 = process.hrtime.bigint()
const consumer = (async () => { let got = 0; for await (const _ of pull) if (++got === n) break })()
for (let i = 0; i < n; i++) await push.send(payload)
await consumer
const secs = Number(process.hrtime.bigint() - t0) / 1e9
console.log(process.env.LIB || 'zp', size, proto, Math.round(n / secs), 'msg/s')
}
push.linger = 0; await push.close(); await pull.close()
