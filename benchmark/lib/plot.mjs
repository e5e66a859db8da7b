// The ratio plot (benchmark/ratio.svg): zeropipe's throughput over zeromq.js's against the
// message size, one line per transport, built as a plain SVG string (no plotting library).
// Both axes are logarithmic in base 2: sizes double from tick to tick, and a ratio of 2× sits
// as far above the 1× line as 0.5× sits below it.
import { sizeLabel } from './stats.mjs'

const W = 780
const H = 470
const M = { left: 64, right: 184, top: 66, bottom: 58 }
const PW = W - M.left - M.right
const PH = H - M.top - M.bottom

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
const f1 = (x) => (Math.round(x * 10) / 10).toString()
const ratioText = (r) => `${r >= 10 ? r.toFixed(1) : r.toFixed(2)}×`

/** A marker centred on (x, y): circle, square or diamond. */
function marker(shape, x, y, color, title) {
  const t = `<title>${esc(title)}</title>`
  if (shape === 'square') return `<rect x="${f1(x - 4)}" y="${f1(y - 4)}" width="8" height="8" fill="${color}">${t}</rect>`
  if (shape === 'diamond') {
    return `<polygon points="${f1(x)},${f1(y - 6)} ${f1(x + 6)},${f1(y)} ${f1(x)},${f1(y + 6)} ${f1(x - 6)},${f1(y)}" fill="${color}">${t}</polygon>`
  }
  return `<circle cx="${f1(x)}" cy="${f1(y)}" r="4" fill="${color}">${t}</circle>`
}

/**
 * series: [{ label, color, shape, dash, points: [{ bytes, ratio }] }]
 * target: optional [{ bytes, ratio }], the goal at each size, drawn as short dashed grey bars
 * title: text above the plot; subtitle: one or more lines of smaller text under it.
 */
export function ratioSvg({ series, target = [], title, subtitle }) {
  const all = series.flatMap((s) => s.points).filter((p) => p.ratio > 0 && Number.isFinite(p.ratio))
  const sizes = [...new Set([...all.map((p) => p.bytes), ...target.map((p) => p.bytes)])].sort((a, b) => a - b)
  const xMin = Math.log2(sizes[0] ?? 16)
  const xMax = Math.log2(sizes[sizes.length - 1] ?? 2 ** 20)
  const ratios = [...all.map((p) => p.ratio), ...target.map((p) => p.ratio), 1]
  // Whole powers of two around the data, at least 0.5× to 8×.
  const yMin = Math.min(-1, Math.floor(Math.log2(Math.min(...ratios)) - 0.15))
  const yMax = Math.max(3, Math.ceil(Math.log2(Math.max(...ratios)) + 0.15))
  const X = (bytes) => M.left + (xMax > xMin ? ((Math.log2(bytes) - xMin) / (xMax - xMin)) * PW : PW / 2)
  const Y = (ratio) => M.top + (1 - (Math.log2(ratio) - yMin) / (yMax - yMin)) * PH

  const out = []
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" ` +
      `font-family="-apple-system, 'Segoe UI', Helvetica, Arial, sans-serif" font-size="12">`,
  )
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`)
  out.push(`<text x="${M.left}" y="22" font-size="15" font-weight="600" fill="#222">${esc(title)}</text>`)
  for (const [i, line] of [subtitle ?? []].flat().entries()) {
    out.push(`<text x="${M.left}" y="${38 + 13 * i}" font-size="11" fill="#666">${esc(line)}</text>`)
  }

  // Grid and axes.
  for (let e = yMin; e <= yMax; e++) {
    const r = 2 ** e
    const y = Y(r)
    out.push(`<line x1="${M.left}" y1="${f1(y)}" x2="${M.left + PW}" y2="${f1(y)}" stroke="#e4e4e4"/>`)
    out.push(`<text x="${M.left - 8}" y="${f1(y + 4)}" text-anchor="end" fill="#444">${r}×</text>`)
  }
  for (const b of sizes) {
    const x = X(b)
    out.push(`<line x1="${f1(x)}" y1="${M.top}" x2="${f1(x)}" y2="${M.top + PH}" stroke="#eeeeee"/>`)
    out.push(`<text x="${f1(x)}" y="${M.top + PH + 18}" text-anchor="middle" fill="#444">${esc(sizeLabel(b))}</text>`)
  }
  out.push(`<rect x="${M.left}" y="${M.top}" width="${PW}" height="${PH}" fill="none" stroke="#999"/>`)
  out.push(`<text x="${M.left + PW / 2}" y="${H - 14}" text-anchor="middle" fill="#222">message size (log₂ scale)</text>`)
  out.push(
    `<text transform="translate(18 ${M.top + PH / 2}) rotate(-90)" text-anchor="middle" fill="#222">` +
      'zeropipe / zeromq.js throughput (log₂ scale)</text>',
  )

  // Parity: above the line zeropipe is faster.
  out.push(`<line x1="${M.left}" y1="${f1(Y(1))}" x2="${M.left + PW}" y2="${f1(Y(1))}" stroke="#222" stroke-width="1.5"/>`)
  out.push(`<text x="${M.left + 6}" y="${f1(Y(1) + 15)}" fill="#222">1× (parity)</text>`)

  // The targets: a short dashed bar at each size that has a goal.
  for (const t of target) {
    const x = X(t.bytes)
    const y = Y(t.ratio)
    out.push(
      `<line x1="${f1(x - 18)}" y1="${f1(y)}" x2="${f1(x + 18)}" y2="${f1(y)}" stroke="#8a8a8a" stroke-width="2" stroke-dasharray="4 3">` +
        `<title>target at ${esc(sizeLabel(t.bytes))}: ${ratioText(t.ratio)}</title></line>`,
    )
  }

  for (const s of series) {
    const pts = s.points.filter((p) => p.ratio > 0 && Number.isFinite(p.ratio)).sort((a, b) => a.bytes - b.bytes)
    if (pts.length > 1) {
      out.push(
        `<polyline points="${pts.map((p) => `${f1(X(p.bytes))},${f1(Y(p.ratio))}`).join(' ')}" fill="none" ` +
          `stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`,
      )
    }
    for (const p of pts) out.push(marker(s.shape, X(p.bytes), Y(p.ratio), s.color, `${s.label}, ${sizeLabel(p.bytes)}: ${ratioText(p.ratio)}`))
  }

  // Legend, right of the plot.
  const lx = M.left + PW + 18
  let ly = M.top + 8
  const entries = [...series.map((s) => ({ ...s, kind: 'series' })), ...(target.length ? [{ label: 'target (tcp, ipc)', kind: 'target' }] : [])]
  for (const e of entries) {
    if (e.kind === 'target') {
      out.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 26}" y2="${ly}" stroke="#8a8a8a" stroke-width="2" stroke-dasharray="4 3"/>`)
    } else {
      out.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 26}" y2="${ly}" stroke="${e.color}" stroke-width="2"${e.dash ? ` stroke-dasharray="${e.dash}"` : ''}/>`)
      out.push(marker(e.shape, lx + 13, ly, e.color, e.label))
    }
    out.push(`<text x="${lx + 34}" y="${ly + 4}" fill="#222">${esc(e.label)}</text>`)
    ly += 22
  }
  out.push(`<text x="${lx}" y="${ly + 10}" font-size="11" fill="#666">above 1×: zeropipe faster</text>`)
  out.push(`<text x="${lx}" y="${ly + 26}" font-size="11" fill="#666">medians of fresh-process</text>`)
  out.push(`<text x="${lx}" y="${ly + 40}" font-size="11" fill="#666">rounds per library</text>`)
  out.push('</svg>')
  return `${out.join('\n')}\n`
}
