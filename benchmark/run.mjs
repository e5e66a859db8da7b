// zeropipe vs zeromq.js, measured the way a user measures them.
//
//   npm run bench                 full run (about 9 minutes on a quiet 2-core machine); writes
//                                 benchmark/RESULTS.md, benchmark/ratio.svg and the table
//                                 between the README's bench markers
//   npm run bench:smoke           every scenario, both libraries, tiny counts, 1 round (CI)
//   node benchmark/run.mjs --only a,c,e --rounds 3 --scale 0.5
//
// Every round of every case is a fresh Node process that loads only the library it measures
// (benchmark/workers/*.mjs, each runnable on its own): the runner loads neither library, so
// no JIT warm-up, heap, thread or addon of one round or library carries over to another.
// Rounds alternate (zeropipe, zeromq.js, zeropipe, …) so that a noisy neighbour or a CPU
// frequency change hits both libraries alike; the tables give the median and the min–max of
// the rounds, and the ratio of the medians. Message counts are chosen per library from the
// rates it reaches on a 2-core machine, so a round lasts about the same time at either
// library's speed (see RATES). BENCH_ROUNDS and BENCH_SCALE in the environment do
// what --rounds and --scale do.
import { readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { machineInfo, machineLine } from './lib/machine.mjs'
import { ratioSvg } from './lib/plot.mjs'
import { consoleHeader, consoleRow, makeCase, markdownTable } from './lib/report.mjs'
import { handshakeRound, memoryRun, moduleApiRound, pairRound, twoProcessLatency, twoProcessThroughput } from './lib/rounds.mjs'
import { LIBS } from './lib/sockets.mjs'
import { median, sig3, sizeLabel } from './lib/stats.mjs'

const HERE = new URL('.', import.meta.url)
const RESULTS_PATH = fileURLToPath(new URL('RESULTS.md', HERE))
const SVG_PATH = fileURLToPath(new URL('ratio.svg', HERE))
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
      console.log('usage: node benchmark/run.mjs [--smoke] [--only a,b,c,d,e,f,g,h] [--rounds N] [--scale X]')
      process.exit(0)
    } else throw new Error(`unknown argument ${a} (try --help)`)
  }
  opts.rounds ??= process.env.BENCH_ROUNDS ? Number(process.env.BENCH_ROUNDS) : null
  opts.scale ??= process.env.BENCH_SCALE ? Number(process.env.BENCH_SCALE) : 1
  if (opts.rounds !== null && !(Number.isInteger(opts.rounds) && opts.rounds > 0)) throw new Error('--rounds must be a positive integer')
  if (!(opts.scale > 0)) throw new Error('--scale must be a positive number')
  for (const s of opts.only ?? []) if (!'abcdefgh'.includes(s) || s.length !== 1) throw new Error(`--only: unknown scenario "${s}" (a–h)`)
  return opts
}

// ---- budgets -----------------------------------------------------------------------------

const SIZES = [16, 256, 1024, 4096, 16384, 65536, 262144, 1048576]
const TWO_PROCESS_SIZES = [16, 4096, 65536, 1048576]
const CURVE_SIZES = [16, 1024, 65536]

// Messages per second each library reaches in a fresh process on a 2-core VM (the shape of
// the curve matters, not the exact figure): a round sends `seconds` × this many messages, so it
// lasts about as long at either library's speed. Rates that drift far from these only make
// rounds shorter or longer; the runner says so when a round falls outside 0.25–3 s.
const RATES = {
  zeropipe: {
    tcp: [600e3, 500e3, 400e3, 150e3, 60e3, 20e3, 6e3, 1.6e3],
    ipc: [600e3, 500e3, 450e3, 180e3, 80e3, 25e3, 7e3, 2e3],
    inproc: [1.2e6, 1e6, 700e3, 500e3, 400e3, 250e3, 150e3, 100e3],
    twoProcess: [900e3, 150e3, 15e3, 1.2e3],
    curveTcp: [250e3, 100e3, 8e3],
    curveTwoProcess: [250e3, 120e3, 10e3],
  },
  'zeromq.js': {
    tcp: [110e3, 100e3, 90e3, 70e3, 50e3, 22e3, 7e3, 2e3],
    ipc: [110e3, 100e3, 90e3, 75e3, 55e3, 30e3, 8e3, 2.5e3],
    inproc: [150e3, 140e3, 130e3, 120e3, 110e3, 100e3, 70e3, 60e3],
    twoProcess: [250e3, 120e3, 15e3, 1.5e3],
    curveTcp: [65e3, 45e3, 4e3],
    curveTwoProcess: [60e3, 35e3, 4e3],
  },
}

const FULL = {
  // Rounds per library for the throughput cases, as in the issue that asked for this
  // benchmark (three fresh processes per library, median ratio); latency and memory rounds
  // are whole seconds of child processes each, and vary less.
  rounds: 3,
  slowRounds: 3,
  timeoutMs: 120_000,
  // Target length of one timed throughput round, and the fewest messages a round may send.
  seconds: 0.7,
  minMessages: 200,
  sizes: SIZES,
  twoProcessSizes: TWO_PROCESS_SIZES,
  moduleApi: { size: 16, n: 100_000 },
  latency: { rate: 10_000, warmupMs: 500, measureMs: 2000 },
  memory: { burstN: 1_000_000, nohwmSizes: [16, 65536], nohwmSeconds: 2, sendTimeout: 50 },
  curve: { sizes: [16, 1024, 65536], twoProcessSizes: [16, 1024, 65536] },
  handshakes: { seconds: 2, concurrency: 4 },
}

// Just enough to go through every code path of every scenario for both libraries.
const SMOKE = {
  rounds: 1,
  slowRounds: 1,
  timeoutMs: 60_000,
  seconds: 0.01,
  minMessages: 20,
  // The smallest and the largest: the staged-copy path and the zero-copy, large-body one.
  sizes: [16, 1048576],
  twoProcessSizes: [16, 1048576],
  moduleApi: { size: 16, n: 2000 },
  latency: { rate: 10_000, warmupMs: 50, measureMs: 150 },
  memory: { burstN: 20_000, nohwmSizes: [16, 65536], nohwmSeconds: 0.2, sendTimeout: 50 },
  curve: { sizes: [16, 65536], twoProcessSizes: [16] },
  handshakes: { seconds: 0.2, concurrency: 2 },
}

/** Messages per round for one library in one case: ~`seconds` at the rate it reaches. */
function messages(ctx, lib, table, size) {
  const i = (table === 'twoProcess' ? TWO_PROCESS_SIZES : table.startsWith('curve') ? CURVE_SIZES : SIZES).indexOf(size)
  if (i < 0) throw new Error(`no rate for ${lib} ${table} ${size} B in RATES`)
  const rate = RATES[lib][table][i]
  return Math.round(Math.max(ctx.cfg.minMessages, ctx.cfg.seconds * ctx.scale * rate))
}

/** Runs fn(lib) for each library in turn, `rounds` times: zeropipe, zeromq.js, zeropipe, … */
async function alternate(rounds, fn, libs = LIBS) {
  const out = Object.fromEntries(libs.map((l) => [l, []]))
  for (let r = 0; r < rounds; r++) for (const l of libs) out[l].push(await fn(l))
  return out
}

// ---- scenarios ---------------------------------------------------------------------------

const THROUGHPUT = 'msg/s and MB/s, higher is better; ratio > 1: zeropipe faster'
const LOWER = 'lower is better; ratio < 1: zeropipe better'

/** Says so on the console when a round was much shorter or longer than intended. */
function checkLength(ctx, what, lib, secs) {
  if (ctx.smoke || (secs >= 0.25 && secs <= 3)) return
  console.log(`  (${what}: a ${lib} round took ${sig3(secs)} s, not ~${ctx.cfg.seconds} s: its entry in RATES is out of date)`)
}

const counts = (n) => `${n.zeropipe === n['zeromq.js'] ? sigCount(n.zeropipe) : `${sigCount(n.zeropipe)} / ${sigCount(n['zeromq.js'])}`} msgs`
const sigCount = (n) => (n >= 1e6 ? `${sig3(n / 1e6)} M` : n >= 1e3 ? `${sig3(n / 1e3)} k` : String(n))

/** A throughput row from both libraries' rounds (`r`), with their CPU per message if measured. */
function throughputCase({ scenario, metric, group, transport = 'tcp', size, r }) {
  const cpu = (l) => (r[l][0]?.cpuUsPerMsg === undefined ? null : r[l].map((x) => x.cpuUsPerMsg))
  return makeCase({
    scenario,
    metric,
    group,
    transport,
    size: sizeLabel(size),
    bytes: size,
    kind: 'throughput',
    zp: r.zeropipe.map((x) => x.rate),
    zmq: r['zeromq.js'].map((x) => x.rate),
    zpCpu: cpu('zeropipe'),
    zmqCpu: cpu('zeromq.js'),
  })
}

async function pairScenario(ctx, letter, transports) {
  for (const transport of transports) {
    for (const size of ctx.cfg.sizes) {
      const n = Object.fromEntries(LIBS.map((l) => [l, messages(ctx, l, transport, size)]))
      const r = await alternate(ctx.rounds, (l) => pairRound(l, { transport, size, n: n[l], timeoutMs: ctx.cfg.timeoutMs }))
      for (const l of LIBS) for (const x of r[l]) checkLength(ctx, `${transport} ${sizeLabel(size)}`, l, x.secs)
      ctx.add(throughputCase({ scenario: `(${letter}) 1 process`, metric: `throughput (${counts(n)})`, group: 'one', transport, size, r }))
    }
  }
}

const SCENARIOS = {
  a: {
    title:
      '(a) throughput, one process, tcp loopback: a fresh process per round loading one library, Push bound, Pull connected, ' +
      'one warm-up message, await push.send(buf) per message, for await on the pull',
    direction: THROUGHPUT,
    run: (ctx) => pairScenario(ctx, 'a', ['tcp']),
  },
  b: {
    title: '(b) throughput, one process, ipc and inproc: as (a)',
    direction: THROUGHPUT,
    run: (ctx) => pairScenario(ctx, 'b', ['ipc', 'inproc']),
  },
  c: {
    title: '(c) throughput, producer and consumer in two fresh processes, tcp loopback (consumer times first→last message)',
    direction: THROUGHPUT,
    async run(ctx) {
      for (const size of ctx.cfg.twoProcessSizes) {
        const n = Object.fromEntries(LIBS.map((l) => [l, messages(ctx, l, 'twoProcess', size)]))
        const r = await alternate(ctx.rounds, (l) => twoProcessThroughput(l, { size, n: n[l], timeoutMs: ctx.cfg.timeoutMs }))
        for (const l of LIBS) for (const x of r[l]) checkLength(ctx, `two processes ${sizeLabel(size)}`, l, x.secs)
        ctx.add(throughputCase({ scenario: '(c) 2 processes', metric: `throughput (${counts(n)})`, group: 'two', size, r }))
      }
    },
  },
  d: {
    title: '(d) module API: un-awaited concurrent zp.push() calls, for await over zp.pull(), tcp loopback, a fresh process per round',
    direction: `${THROUGHPUT}; zeromq.js has no module API: the row shows what its Push does with un-awaited concurrent sends`,
    async run(ctx) {
      const { size } = ctx.cfg.moduleApi
      const n = Math.round(ctx.cfg.moduleApi.n * ctx.scale)
      const r = await alternate(ctx.rounds, (l) => moduleApiRound(l, { size, n, timeoutMs: ctx.cfg.timeoutMs }))
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
          zp: r.zeropipe.map((x) => x.rate),
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
  g: {
    title:
      '(g) CURVE against NULL, tcp loopback: as (a) in one process and as (c) in two, each library with and without ' +
      'CURVE (the Pull the CURVE server, the Push the client)',
    direction: `${THROUGHPUT}; the CURVE / NULL notes say what encryption costs each library`,
    async run(ctx) {
      const cost = []
      for (const [group, sizes, label] of [
        ['curve-one', ctx.cfg.curve.sizes, '1 process'],
        ['curve-two', ctx.cfg.curve.twoProcessSizes, '2 processes'],
      ]) {
        for (const size of sizes) {
          const medians = {}
          for (const curve of [false, true]) {
            const table = group === 'curve-one' ? (curve ? 'curveTcp' : 'tcp') : curve ? 'curveTwoProcess' : 'twoProcess'
            const rateSize = table === 'twoProcess' && !TWO_PROCESS_SIZES.includes(size) ? 4096 : size
            const n = Object.fromEntries(LIBS.map((l) => [l, messages(ctx, l, table, rateSize)]))
            const r = await alternate(ctx.rounds, (l) =>
              group === 'curve-one'
                ? pairRound(l, { transport: 'tcp', size, n: n[l], timeoutMs: ctx.cfg.timeoutMs, curve })
                : twoProcessThroughput(l, { size, n: n[l], timeoutMs: ctx.cfg.timeoutMs, curve }),
            )
            for (const l of LIBS) for (const x of r[l]) checkLength(ctx, `${curve ? 'CURVE' : 'NULL'} ${label} ${sizeLabel(size)}`, l, x.secs)
            for (const l of LIBS) medians[`${l} ${curve}`] = median(r[l].map((x) => x.rate))
            const mech = curve ? 'CURVE' : 'NULL'
            ctx.add(throughputCase({ scenario: `(g) ${mech}, ${label}`, metric: `throughput ${mech} (${counts(n)})`, group, size, r }))
          }
          const keep = (l) => `${Math.round((100 * medians[`${l} true`]) / medians[`${l} false`])}%`
          cost.push(`${label} ${sizeLabel(size)}: zeropipe ${keep('zeropipe')}, zeromq.js ${keep('zeromq.js')}`)
        }
      }
      ctx.note(`(g) CURVE throughput as a share of NULL's (medians): ${cost.join('; ')}.`)
    },
  },
  h: {
    title:
      '(h) handshakes per second, NULL and CURVE: one server Pull on tcp loopback, 4 loops each connecting a fresh Push, waiting ' +
      'for its handshake event and closing it (client and server in one process: both sides\' work)',
    direction: 'handshakes/s, higher is better; ratio > 1: zeropipe faster',
    async run(ctx) {
      const h = ctx.cfg.handshakes
      const seconds = h.seconds * ctx.scale
      for (const curve of [false, true]) {
        const r = await alternate(ctx.slowRounds, (l) =>
          handshakeRound(l, { curve, seconds, concurrency: h.concurrency, timeoutMs: ctx.cfg.timeoutMs }),
        )
        const mech = curve ? 'CURVE' : 'NULL'
        const rates = (l) => r[l].map((x) => x.rate)
        const scenario = `(h) ${mech} handshakes, ${h.concurrency} at a time for ${seconds} s`
        const where = { group: 'handshake', transport: 'tcp', size: '-', kind: 'handshakes' }
        ctx.add(makeCase({ scenario, metric: `handshakes/s ${mech}`, ...where, zp: rates('zeropipe'), zmq: rates('zeromq.js') }))
      }
    },
  },
}

// ---- targets ---------------------------------------------------------------------------------

// The performance targets, checked against this run's medians. Nothing is assumed: a case the
// run did not measure is reported as not measured, and every miss is printed as MISSED.
const ONE_PROCESS_GOALS = [
  ['16 B', 5],
  ['1 KiB', 3],
  ['4 KiB', 2],
  ['16 KiB', 1.5],
  ['64 KiB', 1.5],
  ['256 KiB', 1.2],
  ['1 MiB', 1.2],
]
const TWO_PROCESS_GOALS = [
  ['16 B', 3],
  ['64 KiB', 1.2],
  ['1 MiB', 1.2],
]

const byCase = (group, transport, size, metric) => (c) =>
  (group === undefined || c.group === group) &&
  c.transport === transport &&
  c.size === size &&
  c.metric.startsWith(metric)

const TARGETS = [
  ...['tcp', 'ipc'].flatMap((transport) => [
    ...ONE_PROCESS_GOALS.map(([size, min]) => ({
      what: `1 process, ${transport}, ${size}: throughput`,
      match: byCase('one', transport, size, 'throughput'),
      min,
    })),
    { what: `1 process, ${transport}, every size: throughput`, floor: { group: 'one', transport }, min: 1 },
  ]),
  ...TWO_PROCESS_GOALS.map(([size, min]) => ({
    what: `2 processes, tcp, ${size}: throughput`,
    match: byCase('two', 'tcp', size, 'throughput'),
    min,
  })),
  ...['p50', 'p99', 'p99.9'].map((p) => ({
    what: `latency ${p}, 2 processes, tcp, 16 B`,
    match: (c) => c.scenario.startsWith('(e)') && c.metric === `latency ${p}`,
    max: 1,
  })),
  // CURVE, zeropipe's against zeromq.js's (issue 11).
  ...[
    ['curve-one', '1 process'],
    ['curve-two', '2 processes'],
  ].flatMap(([group, label]) =>
    [
      ['16 B', 1.5],
      ['1 KiB', 1.5],
      ['64 KiB', 1],
    ].map(([size, min]) => ({
      what: `CURVE, ${label}, tcp, ${size}: throughput`,
      match: byCase(group, 'tcp', size, 'throughput CURVE'),
      min,
    })),
  ),
  { what: 'peak RSS of the burst, 16 B', match: (c) => c.scenario.startsWith('(f1)') && c.metric === 'peak RSS', max: 1 },
  {
    what: 'RSS at the high-water mark, 64 KiB frames',
    match: (c) => c.scenario.startsWith('(f2)') && c.size === '64 KiB' && c.metric === 'RSS at 1st EAGAIN',
    max: 1,
  },
]

const ratioOf = (c) => median(c.zp) / median(c.zmq)

function checkTargets(cases) {
  return TARGETS.map((t) => {
    const goal = t.min !== undefined ? `≥ ${t.min}× zeromq.js` : `≤ ${t.max}× zeromq.js`
    if (t.floor) {
      const xs = cases.filter((c) => c.group === t.floor.group && c.transport === t.floor.transport && c.zp && c.zmq)
      if (!xs.length) return { what: t.what, goal: goal.replace('≥', 'no size below'), got: 'not measured', holds: null }
      const worst = xs.reduce((a, b) => (ratioOf(b) < ratioOf(a) ? b : a))
      return {
        what: t.what,
        goal: `no size below ${t.min}×`,
        got: `lowest ${ratioOf(worst).toFixed(2)}× (${worst.size})`,
        holds: ratioOf(worst) >= t.min,
      }
    }
    const c = cases.find((x) => t.match(x) && x.zp && x.zmq)
    if (!c) return { what: t.what, goal, got: 'not measured', holds: null }
    const ratio = ratioOf(c)
    return { what: t.what, goal, got: `${ratio.toFixed(2)}×`, holds: t.min !== undefined ? ratio >= t.min : ratio <= t.max }
  })
}

const verdict = (holds) => (holds === null ? 'not measured' : holds ? 'holds' : 'MISSED')

function targetsTable(results) {
  return [
    '| target | goal | this run | |',
    '|---|---|---|---|',
    ...results.map((r) => `| ${r.what} | ${r.goal} | ${r.got} | ${r.holds === false ? '**MISSED**' : verdict(r.holds)} |`),
  ].join('\n')
}

// ---- the sweep at a glance: a ratio matrix and the plot ------------------------------------

const COLUMNS = [
  { label: 'tcp', group: 'one', transport: 'tcp', color: '#1f77b4', shape: 'circle' },
  { label: 'ipc', group: 'one', transport: 'ipc', color: '#2ca02c', shape: 'square' },
  { label: 'inproc', group: 'one', transport: 'inproc', color: '#9467bd', shape: 'circle', dash: '2 3' },
  { label: '2 processes (tcp)', group: 'two', transport: 'tcp', color: '#d62728', shape: 'diamond', dash: '1 5' },
]

function sweepPoints(cases, col) {
  return cases
    .filter((c) => c.group === col.group && c.transport === col.transport && c.zp && c.zmq)
    .map((c) => ({ bytes: c.bytes, size: c.size, ratio: ratioOf(c) }))
}

function ratioMatrix(cases) {
  const cols = COLUMNS.map((col) => ({ ...col, points: sweepPoints(cases, col) })).filter((c) => c.points.length)
  if (!cols.length) return ''
  const sizes = [...new Set(cols.flatMap((c) => c.points.map((p) => p.bytes)))].sort((a, b) => a - b)
  const cell = (col, b) => {
    const p = col.points.find((x) => x.bytes === b)
    return p ? `${p.ratio.toFixed(2)}×` : ''
  }
  return [
    `| size | ${cols.map((c) => c.label).join(' | ')} |`,
    `|---|${cols.map(() => '---|').join('')}`,
    ...sizes.map((b) => `| ${sizeLabel(b)} | ${cols.map((c) => cell(c, b)).join(' | ')} |`),
  ].join('\n')
}

function plot(cases, machine, rounds) {
  const series = COLUMNS.map((col) => ({ ...col, points: sweepPoints(cases, col) })).filter((s) => s.points.length)
  // 256 B has no goal of its own beyond "no size below 1×", which the parity line shows.
  const target = ONE_PROCESS_GOALS.map(([size, ratio]) => ({ bytes: SIZE_BYTES[size], ratio }))
  return ratioSvg({
    series,
    target,
    title: 'zeropipe / zeromq.js throughput by message size',
    subtitle: [
      `await push.send() per message + for await, a fresh process per round and library, median of ${rounds} rounds`,
      `${machine.cores} cores, Node ${machine.node}, zeromq.js ${machine.zeromqjs}, zeropipe ${machine.zeropipe}, ${machine.date.slice(0, 10)}`,
    ],
  })
}

const SIZE_BYTES = Object.fromEntries(SIZES.map((b) => [sizeLabel(b), b]))

// ---- output files --------------------------------------------------------------------------

function resultsBlock(cases, notes, machine, rounds, svgPath) {
  const matrix = ratioMatrix(cases)
  return [
    `zeropipe vs zeromq.js, ${rounds} rounds per library and case, alternating (zeropipe, zeromq.js, zeropipe, …).`,
    'Every round is a fresh Node process that loads only the library it measures (one warm-up message, then',
    '`await push.send(buf)` per message with a `for await` loop on the Pull), as a user would time it.',
    'Cells: median of the rounds (min–max), and the whole process\'s CPU time per message. Ratio: zeropipe /',
    'zeromq.js of the medians — for throughput higher is better (> 1: zeropipe faster); for latency and memory',
    'lower is better (< 1: zeropipe better). MB = 10⁶ bytes, MiB = 2²⁰ bytes. Reproduce with `npm run bench`.',
    '',
    ...(matrix ? ['Throughput ratio (zeropipe / zeromq.js) by message size:', '', matrix, '', `![zeropipe / zeromq.js throughput ratio by message size](${svgPath})`, ''] : []),
    markdownTable(cases),
    '',
    ...notes.map((n) => `- ${n}`),
    '',
    'Targets, checked against the medians above:',
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
  const load = () => os.loadavg().map((x) => x.toFixed(2)).join(' ')
  console.log(`load average ${load()} (other work on the machine slows either library's rounds)`)

  for (const key of chosen) {
    const sc = SCENARIOS[key]
    console.log(consoleHeader(sc.title, sc.direction))
    const ctx = {
      cfg,
      rounds,
      slowRounds,
      scale: opts.scale,
      smoke: opts.smoke,
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
  }

  console.log(`\nthroughput ratio zeropipe / zeromq.js by size:\n${ratioMatrix(cases) || '  (no sweep in this run)'}`)
  const targets = checkTargets(cases)
  if (!opts.smoke) {
    console.log("\ntargets, against this run's medians:")
    for (const r of targets) {
      if (r.holds !== null) console.log(`  ${r.holds ? 'holds ' : 'MISSED'}  ${r.what}: ${r.goal}, got ${r.got}`)
    }
  }
  // Built on every run, smoke included, so CI goes through the plot's code too.
  const svg = plot(cases, machine, roundsText)

  const total = ((Date.now() - t0) / 1000).toFixed(1)
  console.log(`\ntotal ${total} s; load average now ${load()}`)
  if (failures.length) {
    console.error(`FAILED scenarios: ${failures.join(', ')} — RESULTS.md, ratio.svg and README.md left unchanged`)
    return 1
  }
  if (opts.smoke || opts.only) {
    console.log('(smoke or --only run: RESULTS.md, ratio.svg and README.md left unchanged)')
    return 0
  }
  writeFileSync(SVG_PATH, svg)
  writeFileSync(
    RESULTS_PATH,
    `# Benchmark results\n\nWritten by \`npm run bench\` (benchmark/run.mjs); a full run replaces this file.\n\n${resultsBlock(cases, notes, machine, roundsText, 'ratio.svg')}\n`,
  )
  updateReadme(resultsBlock(cases, notes, machine, roundsText, 'benchmark/ratio.svg'))
  console.log('wrote benchmark/RESULTS.md, benchmark/ratio.svg and the README.md performance table')
  return 0
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err && err.stack ? err.stack : err)
    process.exit(1)
  },
)
