#!/usr/bin/env node
// Makes the packages a release publishes: the main package `zeropipe` (JS layer, types and
// napi-rs's loader; no binary) and one package per platform, `zeropipe-<platform>`, holding
// that platform's prebuilt `zeropipe.<platform>.node`. The main package lists every
// platform package in `optionalDependencies` at its own version, so npm installs the one
// that matches the machine (their package.json files carry `os`, `cpu` and `libc`).
//
//   node scripts/release.mjs pack --artifacts DIR --out DIR [--only linux-x64-gnu,...]
//       Writes the tarballs to --out and prints their paths as JSON on the last line.
//       --only: the platforms whose binaries are in DIR (a local build has one); the main
//       package still lists all of package.json's napi.targets.
//   node scripts/release.mjs publish --artifacts DIR
//       Publishes every platform package, then the main package (the release workflow;
//       NPM_CONFIG_PROVENANCE=true there adds provenance to each).
//
// DIR holds the built `zeropipe.<platform>.node` files, in subfolders or not (the release
// workflow downloads one folder per target). The work happens in a staging copy, so the
// checkout's package.json and npm/ are never changed: napi-rs's own steps do the rest,
// `napi artifacts` (binaries into npm/<platform>/) and `napi pre-publish` (checks each
// platform package, writes `optionalDependencies`, publishes the platform packages).

import { execFileSync } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

import { parseTriple } from '@napi-rs/cli'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const NAPI = path.join(ROOT, 'node_modules', '@napi-rs', 'cli', 'dist', 'cli.js')
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm'

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    artifacts: { type: 'string' },
    out: { type: 'string' },
    only: { type: 'string' },
  },
})
const [mode] = positionals
if (!['pack', 'publish'].includes(mode) || !values.artifacts || (mode === 'pack' && !values.out)) {
  console.error('usage: release.mjs pack --artifacts DIR --out DIR [--only P,...] | publish --artifacts DIR')
  process.exit(2)
}
if (mode === 'publish' && values.only) {
  console.error('release.mjs: a publish takes every platform; --only is for pack')
  process.exit(2)
}

const run = (cmd, args, cwd, extra = {}) =>
  execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], shell: cmd === NPM && process.platform === 'win32', ...extra })
const napi = (args, cwd) => run(process.execPath, [NAPI, ...args], cwd, { stdio: ['ignore', 'inherit', 'inherit'] })
const readJson = (file) => JSON.parse(readFileSync(file, 'utf8'))
const writeJson = (file, value) => writeFileSync(file, JSON.stringify(value, null, 2) + '\n')

const manifest = readJson(path.join(ROOT, 'package.json'))
const targets = manifest.napi.targets
const platformOf = (triple) => parseTriple(triple).platformArchABI
const expectedOptional = Object.fromEntries(targets.map((t) => [`${manifest.name}-${platformOf(t)}`, manifest.version]))

let chosen = targets
if (values.only) {
  const only = values.only.split(',')
  const unknown = only.filter((p) => !targets.some((t) => platformOf(t) === p))
  if (unknown.length) throw new Error(`--only: not in napi.targets: ${unknown.join(', ')}`)
  chosen = targets.filter((t) => only.includes(platformOf(t)))
}

const stage = mkdtempSync(path.join(os.tmpdir(), 'zeropipe-release-'))
try {
  // 1. The main package exactly as npm packs the checkout (`files` leaves binaries out).
  const packed = JSON.parse(run(NPM, ['pack', '--ignore-scripts', '--json', '--pack-destination', stage], ROOT))[0]
  const binaries = packed.files.filter((f) => f.path.endsWith('.node'))
  if (binaries.length) throw new Error(`the main package must carry no binary, got ${binaries.map((f) => f.path)}`)
  const pkgDir = path.join(stage, 'zeropipe')
  mkdirSync(pkgDir)
  run('tar', ['-xzf', path.join(stage, packed.filename), '-C', pkgDir, '--strip-components=1'], stage)
  rmSync(path.join(stage, packed.filename))
  cpSync(path.join(ROOT, 'npm'), path.join(pkgDir, 'npm'), { recursive: true })

  // npm provenance checks each package's repository against the workflow's; in GitHub
  // Actions every package gets the repository the workflow runs in.
  const { GITHUB_REPOSITORY, GITHUB_SERVER_URL = 'https://github.com' } = process.env
  if (GITHUB_REPOSITORY) {
    const repository = { type: 'git', url: `git+${GITHUB_SERVER_URL}/${GITHUB_REPOSITORY}.git` }
    for (const dir of [pkgDir, ...readdirSync(path.join(pkgDir, 'npm')).map((p) => path.join(pkgDir, 'npm', p))]) {
      const file = path.join(dir, 'package.json')
      writeJson(file, { ...readJson(file), repository })
    }
  }

  // 2. napi-rs's steps, on the platforms being released (they refuse a missing binary).
  const staged = readJson(path.join(pkgDir, 'package.json'))
  writeJson(path.join(pkgDir, 'package.json'), { ...staged, napi: { ...staged.napi, targets: chosen } })
  napi(['artifacts', '--output-dir', path.resolve(values.artifacts), '--npm-dir', 'npm'], pkgDir)
  napi(['pre-publish', '--tag-style', 'npm', '--npm-dir', 'npm', '--no-gh-release', ...(mode === 'pack' ? ['--skip-optional-publish'] : [])], pkgDir)

  // 3. The main package lists every platform at its version, whatever this run released.
  const released = readJson(path.join(pkgDir, 'package.json'))
  if (chosen === targets) {
    const got = JSON.stringify(released.optionalDependencies)
    if (got !== JSON.stringify(expectedOptional)) throw new Error(`napi pre-publish wrote optionalDependencies ${got}`)
  }
  released.optionalDependencies = expectedOptional
  released.napi = { ...released.napi, targets }
  delete released.scripts?.prepublishOnly
  writeJson(path.join(pkgDir, 'package.json'), released)

  if (mode === 'pack') {
    const out = path.resolve(values.out)
    mkdirSync(out, { recursive: true })
    const tarballs = [pkgDir, ...chosen.map((t) => path.join(pkgDir, 'npm', platformOf(t)))].map((dir) => {
      const [{ filename }] = JSON.parse(run(NPM, ['pack', '--ignore-scripts', '--json', '--pack-destination', out], dir))
      return path.join(out, filename)
    })
    console.log(JSON.stringify(tarballs))
  } else {
    // napi pre-publish has published the platform packages; the main package goes last,
    // so no published zeropipe ever points at a platform package that is not there yet.
    const tag = manifest.version.includes('-') ? ['--tag', 'next'] : []
    run(NPM, ['publish', '--ignore-scripts', '--access', 'public', ...tag], pkgDir, { stdio: 'inherit' })
  }
} finally {
  if (!process.env.ZEROPIPE_RELEASE_KEEP) rmSync(stage, { recursive: true, force: true })
}
