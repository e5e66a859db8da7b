// What the numbers were measured on: printed with every run and written under the tables,
// because results from a 2-core shared VM and a workstation are not comparable.
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import { fileURLToPath } from 'node:url'

const require = createRequire(import.meta.url)
const repoRoot = fileURLToPath(new URL('../..', import.meta.url))

function cpuModel() {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))
    if (m) return m[1].trim()
  } catch {
    // Not Linux: fall back to what Node reports.
  }
  return os.cpus()[0]?.model?.trim() || 'unknown CPU'
}

function osName() {
  try {
    const m = /^PRETTY_NAME="?([^"\n]+)"?$/m.exec(readFileSync('/etc/os-release', 'utf8'))
    if (m) return `${m[1]}, ${os.type()} ${os.release()}`
  } catch {
    // No os-release: the kernel alone still says enough.
  }
  return `${os.type()} ${os.release()}`
}

function gitCommit() {
  try {
    const opts = { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }
    const hash = execFileSync('git', ['rev-parse', '--short', 'HEAD'], opts).trim()
    // Uncommitted changes mean the numbers belong to no commit: say so.
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], opts).trim() !== ''
    return dirty ? `${hash}-dirty` : hash
  } catch {
    return 'unknown (not a git checkout)'
  }
}

export function machineInfo() {
  return {
    cpu: cpuModel(),
    cores: os.cpus().length,
    ramGiB: os.totalmem() / 2 ** 30,
    os: osName(),
    node: process.version,
    zeromqjs: require('zeromq/package.json').version,
    zeropipe: gitCommit(),
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
  }
}

export function machineLine(m, rounds) {
  return (
    `${m.cpu}, ${m.cores} cores, ${m.ramGiB.toFixed(1)} GiB RAM; ${m.os}; Node ${m.node}; ` +
    `zeromq.js ${m.zeromqjs}; zeropipe ${m.zeropipe}; ${m.date}; rounds: ${rounds}`
  )
}
