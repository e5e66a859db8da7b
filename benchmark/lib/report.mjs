// Turning the rounds of each case into table cells: the console table printed as the run
// goes, and the markdown written to RESULTS.md and the README.
import { median, si, sig3, summarize } from './stats.mjs'

const MiB = 2 ** 20

/**
 * A measured case. `kind` decides units and direction:
 *   throughput (msg/s, higher is better; MB/s shown from `bytes`), latency (µs, lower),
 *   memory (bytes shown in MiB, lower), growth (signed bytes, lower; no ratio: it is ~0 when
 *   bounded, and a ratio of two numbers near zero is noise), handshakes (per second, higher).
 * `zmqNote` replaces zeromq.js's numbers where it cannot run the case (module API).
 */
export function makeCase({
  scenario,
  metric,
  group = null,
  transport,
  size,
  bytes,
  kind,
  zp,
  zmq = null,
  zpCpu = null,
  zmqCpu = null,
  zmqNote = null,
  zpNote = null,
}) {
  return { scenario, metric, group, transport, size, bytes, kind, zp, zmq, zpCpu, zmqCpu, zmqNote, zpNote }
}

function range(kind, s, bytes, cpu) {
  switch (kind) {
    case 'throughput': {
      const mbs = (s.median * bytes) / 1e6
      // The whole process's CPU time per message (median of the rounds), where measured.
      const cpuText = cpu ? `, ${sig3(median(cpu))} µs CPU/msg` : ''
      return `${si(s.median)} msg/s (${si(s.min)}–${si(s.max)}), ${sig3(mbs)} MB/s${cpuText}`
    }
    case 'handshakes':
      return `${si(s.median)}/s (${si(s.min)}–${si(s.max)})`
    case 'latency':
      return `${sig3(s.median)} µs (${sig3(s.min)}–${sig3(s.max)})`
    case 'memory':
      return `${sig3(s.median / MiB)} MiB (${sig3(s.min / MiB)}–${sig3(s.max / MiB)})`
    case 'growth': {
      const signed = (x) => `${x >= 0 ? '+' : '−'}${sig3(Math.abs(x) / MiB)}`
      return `${signed(s.median)} MiB (${signed(s.min)}…${signed(s.max)})`
    }
    default:
      throw new Error(`unknown kind ${kind}`)
  }
}

export function cells(c) {
  const zp = c.zp ? range(c.kind, summarize(c.zp), c.bytes, c.zpCpu) + (c.zpNote ? `; ${c.zpNote}` : '') : c.zpNote
  const zmq = c.zmq ? range(c.kind, summarize(c.zmq), c.bytes, c.zmqCpu) : c.zmqNote
  let ratio = 'n/a'
  if (c.zp && c.zmq && c.kind !== 'growth') {
    ratio = `${(summarize(c.zp).median / summarize(c.zmq).median).toFixed(2)}×`
  }
  return { zp, zmq, ratio }
}

// ---- console -------------------------------------------------------------------------

const COLS = [
  ['transport', 9],
  ['size', 7],
  ['metric', 34],
  ['zeropipe', 62],
  ['zeromq.js', 62],
  ['ratio', 6],
]

const line = (values) => values.map((v, i) => String(v).padEnd(COLS[i][1])).join(' | ').trimEnd()

export function consoleHeader(title, direction) {
  return `\n${title}  [${direction}]\n${line(COLS.map((c) => c[0]))}\n${COLS.map((c) => '-'.repeat(c[1])).join('-|-')}`
}

export function consoleRow(c) {
  const { zp, zmq, ratio } = cells(c)
  return line([c.transport, c.size, c.metric, zp, zmq, ratio])
}

// ---- markdown ------------------------------------------------------------------------

const md = (s) => String(s).replace(/\|/g, '\\|')

export function markdownTable(cases) {
  const rows = [
    '| scenario | transport | size | zeropipe | zeromq.js | ratio |',
    '|---|---|---|---|---|---|',
  ]
  for (const c of cases) {
    const { zp, zmq, ratio } = cells(c)
    rows.push(`| ${md(`${c.scenario}: ${c.metric}`)} | ${md(c.transport)} | ${md(c.size)} | ${md(zp)} | ${md(zmq)} | ${md(ratio)} |`)
  }
  return rows.join('\n')
}
