// Small statistics and formatting helpers shared by the runner and the workers.

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  const n = s.length
  if (n === 0) return NaN
  // The mean of the two middle values for an even count, so 2 or 4 rounds still give a
  // value between the samples rather than favouring the upper one.
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2
}

export const min = (xs) => Math.min(...xs)
export const max = (xs) => Math.max(...xs)

/** Nearest-rank percentile of an already sorted numeric array (p in 0..100). */
export function percentileSorted(sorted, p) {
  if (sorted.length === 0) return NaN
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]
}

/** Summary of the rounds of one library in one case. */
export const summarize = (xs) => ({ median: median(xs), min: min(xs), max: max(xs), n: xs.length })

/** Human-readable number with a k/M/G suffix (3 significant digits). */
export function si(x) {
  if (!Number.isFinite(x)) return String(x)
  const a = Math.abs(x)
  const [div, suffix] = a >= 1e9 ? [1e9, ' G'] : a >= 1e6 ? [1e6, ' M'] : a >= 1e3 ? [1e3, ' k'] : [1, '']
  return `${sig3(x / div)}${suffix}`
}

/** Three significant digits without exponent notation. */
export function sig3(x) {
  if (!Number.isFinite(x)) return String(x)
  const a = Math.abs(x)
  if (a >= 100) return x.toFixed(0)
  if (a >= 10) return x.toFixed(1)
  if (a >= 1) return x.toFixed(2)
  return x.toPrecision(3)
}

export const sizeLabel = (bytes) =>
  bytes >= 1 << 20 && bytes % (1 << 20) === 0
    ? `${bytes / (1 << 20)} MiB`
    : bytes >= 1024 && bytes % 1024 === 0
      ? `${bytes / 1024} KiB`
      : `${bytes} B`

export const clamp = (x, lo, hi) => Math.min(hi, Math.max(lo, x))
