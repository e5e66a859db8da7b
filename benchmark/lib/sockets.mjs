// Helpers shared by the child workers: loading one library, unique addresses, and closing a
// pair of sockets without waiting on linger.
import { readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'

export const LIBS = ['zeropipe', 'zeromq.js']

/**
 * Imports one library by its label. Workers call this with the one library they measure,
 * so a child process never has the other library's native addon (and its threads) loaded.
 */
export async function loadLib(name) {
  if (name === 'zeropipe') return import('zeropipe')
  if (name === 'zeromq.js') return import('zeromq')
  throw new Error(`unknown library "${name}" (expected zeropipe or zeromq.js)`)
}

let seq = 0
const ipcFiles = new Set()

/**
 * A fresh address per run: reusing one would make a run depend on how quickly the previous
 * run's socket released it (and libzmq and zeropipe differ there).
 */
export function address(proto) {
  const n = seq++
  if (proto === 'tcp') return 'tcp://127.0.0.1:*'
  if (proto === 'ipc') {
    const file = path.join(os.tmpdir(), `zp-bench-${process.pid}-${n}.sock`)
    ipcFiles.add(file)
    return `ipc://${file}`
  }
  if (proto === 'inproc') return `inproc://zp-bench-${process.pid}-${n}`
  throw new Error(`unknown transport ${proto}`)
}

/** Where the connecting side goes: the resolved port for tcp, the same address otherwise. */
export const connectAddress = (boundSocket, bound) => (bound.startsWith('tcp://') ? boundSocket.lastEndpoint : bound)

/**
 * Closes a pair without waiting for anything: linger 0 on the push so queued messages of an
 * aborted run do not hold up the next one. zeromq.js's close() returns nothing, ours a promise;
 * awaiting either is fine.
 */
export async function closePair(push, pull) {
  if (push && !push.closed) {
    push.linger = 0
    await push.close()
  }
  if (pull && !pull.closed) await pull.close()
}

/** Removes ipc socket files a library may have left behind (neither should, but a crash could). */
export function cleanupIpcFiles() {
  for (const f of ipcFiles) rmSync(f, { force: true })
  ipcFiles.clear()
}

/** Rejects with a clear message when a run hangs, so CI fails instead of waiting forever. */
export function withTimeout(promise, ms, what) {
  let timer
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

// CURVE keys for the benchmark: the example pairs of libzmq's documentation (rfc 26's
// test keys), so that the two processes of a round agree without passing keys around.
const CURVE_SERVER = { publicKey: 'rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7', secretKey: 'JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6' }
const CURVE_CLIENT = { publicKey: 'Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID', secretKey: 'D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs' }

/**
 * Makes `sock` a CURVE server (the PULL in every scenario) or client (the PUSH), through
 * the option properties both libraries share (zeromq.js's names, Z85 keys). Before bind or
 * connect, as both require.
 */
export function useCurve(sock, role) {
  if (role === 'server') {
    sock.curveServer = true
    sock.curveSecretKey = CURVE_SERVER.secretKey
  } else {
    sock.curveServerKey = CURVE_SERVER.publicKey
    sock.curvePublicKey = CURVE_CLIENT.publicKey
    sock.curveSecretKey = CURVE_CLIENT.secretKey
  }
}

/** Resident set size now, in bytes (process.memoryUsage.rss() is cheap: no heap walk). */
export const rssNow = () => process.memoryUsage.rss()

/**
 * Peak resident set size of this process so far, in bytes: VmHWM from /proc/self/status.
 * Not getrusage's ru_maxrss: Linux carries that across fork and exec, so a worker spawned by
 * a 111 MiB runner reported 111 MiB for both libraries whatever it did itself.
 */
export function peakRss() {
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'))
  if (!m) throw new Error('no VmHWM in /proc/self/status: peak RSS needs Linux')
  return Number(m[1]) * 1024
}
