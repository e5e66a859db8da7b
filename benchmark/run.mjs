// zeropipe vs zeromq.js, side by side in the same run.
//
//   npm run bench                 full run (a few minutes); writes benchmark/RESULTS.md and
//                                 the table between the README's bench markers
//   npm run bench:smoke           every scenario, both libraries, tiny counts, 1 round (CI)
//   node benchmark/run.mjs --only a,c,e --rounds 3 --scale 0.5
//
// Every case runs in alternating rounds (zeropipe, zeromq.js, zeropipe, …) so that a noisy
// neighbour or a CPU frequency change hits both libraries alike, and reports the median and
// the min–max of the rounds. Message counts come from a time/byte budget per case, the same
// count for both libraries, so each round takes roughly the same time whatever the size.
// BENCH_ROUNDS and BENCH_SCALE in the environment do what --rounds and --scale do.
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import * as zp from 'zeropipe'
import * as zmq from 'zeromq'
import { moduleApiThroughput, pairThroughput, zmqConcurrentSends } from './lib/inprocess.mjs'
import { machineInfo, machineLine } from './lib/machine.mjs'
import { consoleHeader, consoleRow, makeCase, markdownTable } from './lib/report.mjs'
import { cleanupIpcFiles, LIBS } from './lib/sockets.mjs'
import { clamp, median, sig3, sizeLabel } from './lib/stats.mjs'
import { memoryRun, twoProcessLatency, twoProcessThroughput } from './lib/twoprocess.mjs'

const HERE = new URL('.', import.meta.url)
const RESULTS_PATH = fileURLToPath(new URL('RESULTS.md', HERE))
const README_PATH = fileURLToPath(new URL('../README.md', HERE))
const MiB = 2 ** 20

// ---- command line ----------------------------------------------------------------------

function parseCli(argv) {
  const opts = { smoke: false, only: null, rounds: null, scale: null }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const value = () => {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i]
      if (v === undefined) throw new Error(`${a} needs a value`)
      return v
    }
    if (a === '--smoke') opts.smoke = true
    else if (a.startsWith('--only')) opts.only = value().split(',').map((s) => s.trim().toLowerCase()).filter(Boolean)
    else if (a.startsWith('--rounds')) opts.rounds = Number(value())
    else if (a.startsWith('--scale')) opts.scale = Number(value())
    else if (a === '--help' || a === '-h') {
      console.log('usage: node benchmark/run.mjs [--smoke] [--only a,b,c,d,e,f] [--rounds N] [--scale X]')
      process.exit(0)
    } else throw new Error(`unknown argument ${a} (try --help)`)
  }
  opts.rounds ??= process.env.BENCH_ROUNDS ? Number(process.env.BENCH_ROUNDS) : null
  opts.scale ??= process.env.BENCH_SCALE ? Number(process.env.BENCH_SCALE) : 1
  if (opts.rounds !== null && !(Number.isInteger(opts.rounds) && opts.rounds > 0)) throw new Error('--rounds must be a positive integer')
  if (!(opts.scale > 0)) throw new Error('--scale must be a positive number')
  for (const s of opts.only ?? []) if (!'abcdef'.includes(s) || s.length !== 1) throw new Error(`--only: unknown scenario "${s}" (a–f)`)
  return opts
}

// ---- budgets -----------------------------------------------------------------------------

// Sized for a 2-core VM: the full run takes about 5 minutes there. `bytes` is the payload
// volume per round; small messages are counted as at least `floor` bytes, since their cost is
// per message, not per byte. `max` keeps the slowest library's small-message rounds short.
const FULL = {
  rounds: 5,
  // Latency and memory rounds are whole seconds of child processes each, and vary less.
  slowRounds: 3,
  timeoutMs: 120_000,
  warmupMsgs: 100_000,
  pair: { sizes: [16, 1024, 65536, 1048576], bytes: 6e8, floor: 2048, min: 200, max: 300_000 },
  twoProc: { sizes: [16, 1024, 65536], bytes: 6e8, floor: 2048, min: 200, max: 300_000 },
  moduleApi: { size: 16, n: 100_000 },
  latency: { rate: 10_000, warmupMs: 500, measureMs: 2000 },
  memory: { burstN: 1_000_000, nohwmSizes: [16, 65536], nohwmSeconds: 2, sendTimeout: 50 },
}

// Just enough to go through every code path of every scenario for both libraries.
const SMOKE = {
  rounds: 1,
  slowRounds: 1,
  timeoutMs: 60_000,
  warmupMsgs: 200,
  pair: { sizes: [16, 1024, 65536, 1048576], bytes: 2e6, floor: 2048, min: 20, max: 1000 },
  twoProc: { sizes: [16, 1024, 65536], bytes: 2e6, floor: 2048, min: 20, max: 1000 },
  moduleApi: { size: 16, n: 2000 },
  latency: { rate: 10_000, warmupMs: 50, measureMs: 150 },
  memory: { burstN: 20_000, nohwmSizes: [16, 65536], nohwmSeconds: 0.2, sendTimeout: 50 },
}

function messages(budget, size, scale) {
  return Math.round(clamp((budget.bytes * scale) / Math.max(size, budget.floor), budget.min, budget.max * scale))
}

const LOADED = { zeropipe: zp, 'zeromq.js': zmq }

/** Runs fn(lib) for each library in turn, `rounds` times: zeropipe, zeromq.js, zeropipe, … */
async function alternate(rounds, fn, libs = LIBS) {
  const out = Object.fromEntries(libs.map((l) => [l, []]))
  for (let r = 0; r < rounds; r++) for (const l of libs) out[l].push(await fn(l))
  return out
}

// ---- scenarios ---------------------------------------------------------------------------

const THROUGHPUT = 'msg/s and MB/s, higher is better; ratio > 1: zeropipe faster'
const LOWER = 'lower is better; ratio < 1: zeropipe better'

async function pairScenario(ctx, letter, transports) {
  const c = ctx.cfg.pair
  for (const proto of transports) {
    for (const size of c.sizes) {
      const n = messages(c, size, ctx.scale)
      const r = await alternate(ctx.rounds, (l) => pairThroughput(LOADED[l], { proto, size, n, timeoutMs: ctx.cfg.timeoutMs }))
      ctx.add(
        makeCase({
          scenario: `(${letter}) 1 process, await send + for await`,
          metric: `throughput (${n} msgs)`,
          transport: proto,
          size: sizeLabel(size),
          bytes: size,
          kind: 'throughput',
          zp: r.zeropipe,
          zmq: r['zeromq.js'],
        }),
      )
    }
  }
}

const SCENARIOS = {
  a: {
    title: '(a) throughput, one process, tcp loopback: await push.send() per message, for await on the pull',
    direction: THROUGHPUT,
    run: (ctx) => pairScenario(ctx, 'a', ['tcp']),
  },
  b: {
    title: '(b) throughput, one process, ipc and inproc: as (a)',
    direction: THROUGHPUT,
    run: (ctx) => pairScenario(ctx, 'b', ['ipc', 'inproc']),
  },
  c: {
    title: '(c) throughput, producer and consumer in two processes, tcp loopback (consumer times first→last message)',
    direction: THROUGHPUT,
    async run(ctx) {
      const c = ctx.cfg.twoProc
      for (const size of c.sizes) {
        const n = messages(c, size, ctx.scale)
        const r = await alternate(ctx.rounds, (l) => twoProcessThroughput(l, { size, n, timeoutMs: ctx.cfg.timeoutMs }))
        ctx.add(
          makeCase({
            scenario: '(c) 2 processes',
            metric: `throughput (${n} msgs)`,
            transport: 'tcp',
            size: sizeLabel(size),
            bytes: size,
            kind: 'throughput',
            zp: r.zeropipe,
            zmq: r['zeromq.js'],
          }),
        )
      }
    },
  },
  d: {
    title: '(d) module API: un-awaited concurrent zp.push() calls, for await over zp.pull(), tcp loopback',
    direction: `${THROUGHPUT}; zeromq.js has no module API: the row shows what its Push does with un-awaited concurrent sends`,
    async run(ctx) {
      const { size } = ctx.cfg.moduleApi
      const n = Math.round(ctx.cfg.moduleApi.n * ctx.scale)
      const timeoutMs = ctx.cfg.timeoutMs
      const r = await alternate(ctx.rounds, (l) =>
        l === 'zeropipe' ? moduleApiThroughput(zp, { size, n, timeoutMs }) : zmqConcurrentSends(zmq, { size, n, timeoutMs }),
      )
      // Summed over the rounds: the codes are what zeromq.js really answered, nothing assumed.
      let ok = 0
      const codes = {}
      for (const o of r['zeromq.js']) {
        ok += o.ok
        for (const [code, k] of Object.entries(o.codes)) codes[code] = (codes[code] || 0) + k
      }
      const refused = Object.entries(codes).map(([code, k]) => `${code} × ${k}`).join(', ')
      ctx.add(
        makeCase({
          scenario: '(d) module API, un-awaited push()',
          metric: `throughput (${n} calls)`,
          transport: 'tcp',
          size: sizeLabel(size),
          bytes: size,
          kind: 'throughput',
          zp: r.zeropipe,
          zmqNote: `no module API; ${r['zeromq.js'].length} round${r['zeromq.js'].length === 1 ? '' : 's'} × ${n} un-awaited Push#send(): ${ok} resolved, ${refused || 'none rejected'}`,
        }),
      )
    },
  },
  e: {
    title: '(e) one-way latency at a fixed 10 000 msg/s, two processes, tcp loopback, 16 B (send timestamp in the payload)',
    direction: `µs, ${LOWER}`,
    async run(ctx) {
      const l = ctx.cfg.latency
      const args = { rate: l.rate, warmupMs: Math.round(l.warmupMs * ctx.scale), measureMs: Math.round(l.measureMs * ctx.scale) }
      const r = await alternate(ctx.slowRounds, (lib) => twoProcessLatency(lib, { ...args, timeoutMs: ctx.cfg.timeoutMs }))
      for (const [key, label] of [['p50', 'p50'], ['p99', 'p99'], ['p999', 'p99.9']]) {
        ctx.add(
          makeCase({
            scenario: `(e) 2 processes, ${l.rate} msg/s for ${args.measureMs / 1000} s`,
            metric: `latency ${label}`,
            transport: 'tcp',
            size: '16 B',
            kind: 'latency',
            zp: r.zeropipe.map((x) => x[key]),
            zmq: r['zeromq.js'].map((x) => x[key]),
          }),
        )
      }
      const late = (lib) => sig3(median(r[lib].map((x) => x.lateP99)))
      const samples = (lib) => r[lib].map((x) => x.samples).join('/')
      ctx.note(
        `(e) samples per round: zeropipe ${samples('zeropipe')}, zeromq.js ${samples('zeromq.js')}. ` +
          `Producer's p99 lateness against its 100 µs schedule (median of rounds; large values mean the ` +
          `producer could not hold the rate): zeropipe ${late('zeropipe')} µs, zeromq.js ${late('zeromq.js')} µs.`,
      )
    },
  },
  f: {
    title: '(f) memory: every run a fresh process loading only the library measured, tcp loopback',
    direction: `RSS, ${LOWER}`,
    async run(ctx) {
      const m = ctx.cfg.memory
      const timeoutMs = ctx.cfg.timeoutMs
      const burstN = Math.round(m.burstN * ctx.scale)
      const burst = await alternate(ctx.slowRounds, (lib) => memoryRun(lib, { mode: 'burst', n: burstN, size: 16 }, timeoutMs))
      ctx.add(
        makeCase({
          scenario: `(f1) ${burstN} msgs burst, await send + for await`,
          metric: 'peak RSS',
          transport: 'tcp',
          size: '16 B',
          kind: 'memory',
          zp: burst.zeropipe.map((x) => x.peak),
          zmq: burst['zeromq.js'].map((x) => x.peak),
        }),
      )
      const base = (lib) => sig3(median(burst[lib].map((x) => x.baseline)) / MiB)
      ctx.note(
        `(f1) RSS before the burst (library loaded, pair connected): zeropipe ${base('zeropipe')} MiB, ` +
          `zeromq.js ${base('zeromq.js')} MiB.`,
      )

      const seconds = m.nohwmSeconds * ctx.scale
      for (const size of m.nohwmSizes) {
        const r = await alternate(ctx.slowRounds, (lib) =>
          memoryRun(lib, { mode: 'nohwm', size, seconds, 'send-timeout': m.sendTimeout }, timeoutMs),
        )
        const scenario = `(f2) no consumer, sendTimeout ${m.sendTimeout} ms, ${seconds} s past the HWM`
        const row = (metric, kind, pick) =>
          ctx.add(
            makeCase({
              scenario,
              metric,
              transport: 'tcp',
              size: sizeLabel(size),
              kind,
              zp: r.zeropipe.map(pick),
              zmq: r['zeromq.js'].map(pick),
            }),
          )
        row('RSS at 1st EAGAIN', 'memory', (x) => x.atHwm)
        row('RSS at end', 'memory', (x) => x.end)
        row('growth after HWM', 'growth', (x) => x.maxAfterHwm - x.atHwm)
        const detail = (lib) => {
          const xs = r[lib]
          const codes = [...new Set(xs.map((x) => x.firstCode))].join('/')
          const late = median(xs.map((x) => x.growthSecondHalf)) / MiB
          return (
            `${lib} ${median(xs.map((x) => x.sentBeforeHwm))} messages accepted before the first ${codes}, ` +
            `${median(xs.map((x) => x.sentAfterHwm))} after, RSS change over the last ${seconds / 2} s ${late >= 0 ? '+' : '−'}${sig3(Math.abs(late))} MiB`
          )
        }
        ctx.note(`(f2) ${sizeLabel(size)}: ${detail('zeropipe')}; ${detail('zeromq.js')} (medians of rounds).`)
      }
    },
  },
}

// ---- targets ---------------------------------------------------------------------------------

// The performance issue's targets, checked against this run's medians (nothing is assumed:
// a case the run did not measure is reported as not measured).
const TARGETS = [
  { scenario: '(a)', transport: 'tcp', size: '16 B', metric: 'throughput', min: 5 },
  { scenario: '(a)', transport: 'tcp', size: '1 KiB', metric: 'throughput', min: 3 },
  { scenario: '(a)', transport: 'tcp', size: '64 KiB', metric: 'throughput', min: 1.5 },
  { scenario: '(a)', transport: 'tcp', size: '1 MiB', metric: 'throughput', min: 1 },
  { scenario: '(c)', transport: 'tcp', size: '16 B', metric: 'throughput', min: 3 },
  { scenario: '(e)', transport: 'tcp', size: '16 B', metric: 'latency p50', max: 1 },
  { scenario: '(e)', transport: 'tcp', size: '16 B', metric: 'latency p99', max: 1 },
  { scenario: '(f1)', transport: 'tcp', size: '16 B', metric: 'peak RSS', max: 1 },
  // "Flat" after the high-water mark: under 5 MiB of growth however long the producer tries.
  { scenario: '(f2)', transport: 'tcp', size: '16 B', metric: 'growth after HWM', maxGrowth: 5 * MiB },
  { scenario: '(f2)', transport: 'tcp', size: '64 KiB', metric: 'growth after HWM', maxGrowth: 5 * MiB },
]

function checkTargets(cases) {
  return TARGETS.map((t) => {
    const c = cases.find(
      (x) => x.scenario.startsWith(t.scenario) && x.transport === t.transport && x.size === t.size && x.metric.startsWith(t.metric),
    )
    const what = `${t.scenario} ${t.transport} ${t.size} ${t.metric}`
    if (!c || !c.zp) return { what, goal: goalText(t), got: 'not measured', holds: null }
    const zp = median(c.zp)
    if (t.maxGrowth !== undefined) {
      return { what, goal: goalText(t), got: `${sig3(zp / MiB)} MiB`, holds: zp <= t.maxGrowth }
    }
    const ratio = zp / median(c.zmq)
    const holds = t.min !== undefined ? ratio >= t.min : ratio <= t.max
    return { what, goal: goalText(t), got: `${ratio.toFixed(2)}×`, holds }
  })
}

function goalText(t) {
  if (t.maxGrowth !== undefined) return `≤ ${t.maxGrowth / MiB} MiB`
  return t.min !== undefined ? `≥ ${t.min}× zeromq.js` : `≤ ${t.max}× zeromq.js`
}

function targetsTable(results) {
  return [
    '| target | goal | this run | holds |',
    '|---|---|---|---|',
    ...results.map((r) => `| ${r.what} | ${r.goal} | ${r.got} | ${r.holds === null ? '–' : r.holds ? 'yes' : '**no**'} |`),
  ].join('\n')
}

// ---- output files --------------------------------------------------------------------------

function resultsBlock(cases, notes, machine, rounds) {
  return [
    `zeropipe vs zeromq.js in the same run, alternating rounds (zeropipe, zeromq.js, zeropipe, …): ${rounds} per case.`,
    'Cells: median of the rounds (min–max). Ratio: zeropipe / zeromq.js of the medians — for throughput',
    'higher is better (> 1: zeropipe faster); for latency and memory lower is better (< 1: zeropipe better).',
    'MB = 10⁶ bytes, MiB = 2²⁰ bytes. Reproduce with `npm run bench` (see `benchmark/run.mjs` for each scenario).',
    '',
    markdownTable(cases),
    '',
    ...notes.map((n) => `- ${n}`),
    '',
    'Targets (from the performance issue), checked against the medians above:',
    '',
    targetsTable(checkTargets(cases)),
    '',
    `Machine: ${machineLine(machine, rounds)}`,
  ].join('\n')
}

const START = '<!-- bench:start -->'
const END = '<!-- bench:end -->'

function updateReadme(block) {
  const readme = readFileSync(README_PATH, 'utf8')
  const marked = `${START}\n${block}\n${END}`
  let next
  const s = readme.indexOf(START)
  const e = readme.indexOf(END)
  if (s >= 0 && e > s) next = readme.slice(0, s) + marked + readme.slice(e + END.length)
  else {
    // No markers yet: a Performance section of its own, before the test notes if there are any.
    const section = `## Performance\n\n${marked}\n\n`
    const at = readme.indexOf('\n## Tests and interop')
    next = at >= 0 ? `${readme.slice(0, at + 1)}${section}${readme.slice(at + 1)}` : `${readme.trimEnd()}\n\n${section}`
  }
  writeFileSync(README_PATH, next)
}

// ---- main ----------------------------------------------------------------------------------

async function main() {
  const opts = parseCli(process.argv.slice(2))
  const cfg = opts.smoke ? SMOKE : FULL
  const rounds = opts.rounds ?? cfg.rounds
  const slowRounds = opts.rounds ?? cfg.slowRounds
  const roundsText = rounds === slowRounds ? `${rounds}` : `${rounds} (${slowRounds} for e and f)`
  const chosen = opts.only ?? Object.keys(SCENARIOS)
  const machine = machineInfo()
  const cases = []
  const notes = []
  const failures = []
  const t0 = Date.now()

  console.log(`zeropipe vs zeromq.js${opts.smoke ? ' — SMOKE RUN (tiny counts: the numbers mean nothing)' : ''}`)
  console.log(`scenarios ${chosen.join(',')}, rounds ${roundsText}, scale ${opts.scale}`)
  console.log(machineLine(machine, roundsText))

  // JIT warm-up of both libraries' hot paths, so the first measured round of the first case
  // does not pay for compilation.
  for (const l of LIBS) {
    await pairThroughput(LOADED[l], { proto: 'tcp', size: 16, n: cfg.warmupMsgs, timeoutMs: cfg.timeoutMs })
  }

  for (const key of chosen) {
    const sc = SCENARIOS[key]
    console.log(consoleHeader(sc.title, sc.direction))
    const ctx = {
      cfg,
      rounds,
      slowRounds,
      scale: opts.scale,
      add(c) {
        cases.push(c)
        console.log(consoleRow(c))
      },
      note(text) {
        notes.push(text)
        console.log(`  note: ${text}`)
      },
    }
    const ts = Date.now()
    try {
      await sc.run(ctx)
    } catch (err) {
      failures.push(key)
      console.error(`scenario ${key} FAILED: ${err && err.stack ? err.stack : err}`)
    }
    console.log(`  (${((Date.now() - ts) / 1000).toFixed(1)} s)`)
    cleanupIpcFiles()
  }

  if (!opts.smoke) {
    console.log('\ntargets (from the performance issue), against this run\'s medians:')
    for (const r of checkTargets(cases)) {
      if (r.holds !== null) console.log(`  ${r.holds ? 'holds ' : 'MISSED'}  ${r.what}: ${r.goal}, got ${r.got}`)
    }
  }

  const total = ((Date.now() - t0) / 1000).toFixed(1)
  console.log(`\ntotal ${total} s`)
  if (failures.length) {
    console.error(`FAILED scenarios: ${failures.join(', ')} — RESULTS.md and README.md left unchanged`)
    return 1
  }
  if (opts.smoke || opts.only) {
    console.log('(smoke or --only run: RESULTS.md and README.md left unchanged)')
    return 0
  }
  const block = resultsBlock(cases, notes, machine, roundsText)
  writeFileSync(
    RESULTS_PATH,
    `# Benchmark results\n\nWritten by \`npm run bench\` (benchmark/run.mjs); a full run replaces this file.\n\n${block}\n`,
  )
  updateReadme(block)
  console.log('wrote benchmark/RESULTS.md and the README.md performance table')
  return 0
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err && err.stack ? err.stack : err)
    process.exit(1)
  },
)
