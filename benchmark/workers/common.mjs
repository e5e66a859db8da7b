// Shared by the child workers: arguments come as --key value pairs, results go to stdout as
// one JSON object per line (the parent reads them; anything else a library prints would
// break that, so diagnostics go to stderr).

export function parseArgs(argv = process.argv.slice(2)) {
  const out = {}
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--')) throw new Error(`unexpected argument ${argv[i]}`)
    out[argv[i].slice(2)] = argv[i + 1]
  }
  return out
}

export const emit = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`)

/** Runs a worker's main and turns any failure into a non-zero exit with the error on stderr. */
export function main(fn) {
  fn().then(
    () => process.exit(0),
    (err) => {
      process.stderr.write(`${err && err.stack ? err.stack : err}\n`)
      process.exit(1)
    },
  )
}

/** Resolves when the parent closes our stdin: its way to say "you may exit now". */
export function parentDone() {
  return new Promise((resolve) => {
    process.stdin.on('end', resolve)
    process.stdin.on('close', resolve)
    process.stdin.resume()
  })
}

/** One turn of the event loop, so a busy-waiting loop still lets sockets make progress. */
export const yieldToLoop = () => new Promise((resolve) => setImmediate(resolve))
