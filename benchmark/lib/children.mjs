// Starting the child workers and talking to them: each child writes JSON lines on stdout;
// its stderr goes straight to ours so a crash explains itself.
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

const workersDir = fileURLToPath(new URL('../workers/', import.meta.url))

/**
 * Starts `workers/<script>` with `--key value` arguments. `next()` resolves with the next
 * JSON line; it rejects if the child exits first or `timeoutMs` passes (the child is then
 * killed, so a hung library fails the run instead of stalling it).
 */
export function startWorker(script, args, { timeoutMs }) {
  const argv = [workersDir + script]
  for (const [k, v] of Object.entries(args)) argv.push(`--${k}`, String(v))
  const child = spawn(process.execPath, argv, { stdio: ['pipe', 'pipe', 'inherit'] })
  // A child that already exited makes the stdin close below fail with EPIPE: harmless.
  child.stdin.on('error', () => {})
  const lines = []
  const waiters = []
  let failure = null

  const fail = (err) => {
    if (failure) return
    failure = err
    for (const w of waiters.splice(0)) w.reject(err)
  }
  const timer = setTimeout(() => {
    fail(new Error(`${script} ${args.lib ?? ''} ${args.mode ?? ''}: timed out after ${timeoutMs} ms`))
    child.kill('SIGKILL')
  }, timeoutMs)

  const rl = createInterface({ input: child.stdout })
  rl.on('line', (line) => {
    let msg
    try {
      msg = JSON.parse(line)
    } catch {
      fail(new Error(`${script}: unexpected output on stdout: ${line}`))
      return
    }
    const w = waiters.shift()
    if (w) w.resolve(msg)
    else lines.push(msg)
  })

  // Both the exit and the end of stdout: 'exit' can come before the last lines are read,
  // and those lines must still be handed out.
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  const drained = new Promise((resolve) => rl.on('close', resolve))
  const finished = Promise.all([exited, drained]).then(([{ code, signal }]) => {
    clearTimeout(timer)
    if (code !== 0) fail(new Error(`${script} ${args.lib ?? ''}: exited with ${signal || `code ${code}`}`))
    else fail(new Error(`${script} ${args.lib ?? ''}: exited before reporting`))
    return code
  })

  return {
    next() {
      if (lines.length) return Promise.resolve(lines.shift())
      if (failure) return Promise.reject(failure)
      return new Promise((resolve, reject) => waiters.push({ resolve, reject }))
    },
    /** Closes the child's stdin: the producers take it as "you may exit now". */
    release() {
      child.stdin.end()
    },
    /** Resolves when the child is gone; rejects if it failed. */
    async done() {
      const code = await finished
      if (code !== 0) throw failure
    },
    kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    },
  }
}
