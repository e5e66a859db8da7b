#!/usr/bin/env node
// Runs the Node test files one by one, each in its own `node --test` process with two time
// limits: every test (and hook) has --test-timeout, and the whole file has a hard limit after
// which its process group is killed and the file counts as failed, naming what hung. A hang is
// a failure with a message, never a stuck run.
//
// Usage: node scripts/test-node.mjs [file ...]   (default: every __test__/*.test.ts)
// Environment: ZEROPIPE_TEST_TIMEOUT (ms per test, default 120000),
//              ZEROPIPE_FILE_TIMEOUT (ms per file, default 600000).

import { spawn } from 'node:child_process'
import { readdirSync } from 'node:fs'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const TEST_TIMEOUT = Number(process.env.ZEROPIPE_TEST_TIMEOUT || 120_000)
const FILE_TIMEOUT = Number(process.env.ZEROPIPE_FILE_TIMEOUT || 600_000)

const files = process.argv.slice(2).length
  ? process.argv.slice(2)
  : readdirSync(path.join(ROOT, '__test__'))
      .filter((f) => f.endsWith('.test.ts'))
      .sort()
      .map((f) => path.join('__test__', f))

/** Runs one file; resolves with its outcome, its output passed through as it comes. */
function runFile(file) {
  return new Promise((resolve) => {
    const started = Date.now()
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--test', `--test-timeout=${TEST_TIMEOUT}`, '--test-force-exit', file],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
    )
    let tail = ''
    const keep = (chunk) => {
      tail = (tail + chunk).slice(-4000)
    }
    child.stdout.on('data', (d) => {
      process.stdout.write(d)
      keep(d)
    })
    child.stderr.on('data', (d) => {
      process.stderr.write(d)
      keep(d)
    })
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      // The whole group: peers and fixtures the file started go with it.
      try {
        process.kill(-child.pid, 'SIGKILL')
      } catch {}
    }, FILE_TIMEOUT)
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      const seconds = ((Date.now() - started) / 1000).toFixed(1)
      // The last test that started and never reported is what hung.
      const starts = [...tail.matchAll(/# Subtest: (.*)/g)].map((m) => m[1])
      resolve({ file, code, signal, timedOut, seconds, lastStarted: starts.at(-1) })
    })
  })
}

const results = []
for (const file of files) {
  console.log(`\n# file: ${file}`)
  results.push(await runFile(file))
}

console.log('\n# summary')
let failed = 0
for (const r of results) {
  const ok = !r.timedOut && r.code === 0
  if (!ok) failed++
  let why = ''
  if (r.timedOut) why = ` — TIMED OUT after ${FILE_TIMEOUT / 1000} s (last test started: ${r.lastStarted ?? 'none'})`
  else if (!ok) why = ` — exit ${r.code ?? r.signal}`
  console.log(`# ${ok ? 'ok    ' : 'FAILED'} ${r.file} (${r.seconds} s)${why}`)
}
console.log(`# ${results.length - failed} of ${results.length} files passed`)
process.exit(failed ? 1 : 0)
