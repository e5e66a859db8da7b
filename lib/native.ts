// The native addon as the JS layer uses it (the only module that loads ../binding.js): the generated loader (binding.js, typed by
// binding.d.ts) and what the process does at exit.
//
// binding.js is napi-rs's generated loader: it tries ./zeropipe.<platform>.node (a build
// in this directory) and then the per-platform package zeropipe-<platform>, and when both
// fail throws an error that blames npm and lock files. This is the one place the JS layer
// loads it, so a failure is turned here into an error that says what is missing and how
// to get it.

import type * as Binding from '../binding.js'

/**
 * The platforms with a prebuilt package, as napi-rs names them (`napi.targets` in
 * package.json; packaging.test.ts keeps the two lists equal).
 */
export const PREBUILT_PLATFORMS = [
  'linux-x64-gnu',
  'linux-x64-musl',
  'linux-arm64-gnu',
  'linux-arm64-musl',
  'darwin-x64',
  'darwin-arm64',
  'win32-x64-msvc',
  'win32-arm64-msvc',
] as const

/** The Rust toolchain a build from source needs (napi-rs 3's minimum). */
export const RUST_FOR_SOURCE_BUILD = '1.88'

/** This process's platform in napi-rs's naming, and the C library on Linux. */
export function hostPlatform(): { name: string; libc: 'glibc' | 'musl' | null } {
  const { platform, arch } = process
  if (platform === 'linux') {
    const libc = isMusl() ? 'musl' : 'glibc'
    return { name: `linux-${arch}-${libc === 'musl' ? 'musl' : 'gnu'}`, libc }
  }
  if (platform === 'win32') return { name: `win32-${arch}-msvc`, libc: null }
  return { name: `${platform}-${arch}`, libc: null }
}

function isMusl(): boolean {
  // Node's own report names the glibc it runs on; a musl build (Alpine) has none.
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined
  return !report?.header?.glibcVersionRuntime
}

function packageVersion(): string {
  try {
    return (require('../package.json') as { version: string }).version
  } catch {
    return 'latest'
  }
}

function installed(name: string): boolean {
  try {
    require.resolve(`${name}/package.json`)
    return true
  } catch {
    return false
  }
}

/** The error thrown when no addon could be loaded: what is missing, and the two fixes. */
export function missingAddonError(cause: unknown): Error & { code: string } {
  const host = hostPlatform()
  const where = `${process.platform} ${process.arch}${host.libc ? ` (${host.libc})` : ''}`
  const pkg = `zeropipe-${host.name}`
  const version = packageVersion()
  const fromSource =
    `build it from source, which needs Rust ${RUST_FOR_SOURCE_BUILD} or newer (https://rustup.rs) ` +
    `and a C compiler: in a checkout of zeropipe run \`npm install\` (it builds the addon), then ` +
    `\`npm install /path/to/that/checkout\` in your project (README, "Install": "Other platforms")`
  let message: string
  if (!(PREBUILT_PLATFORMS as readonly string[]).includes(host.name)) {
    message =
      `zeropipe has no prebuilt native addon for ${where}: prebuilt packages exist for ` +
      `${PREBUILT_PLATFORMS.join(', ')}. To use zeropipe here, ${fromSource}.`
  } else if (!installed(pkg)) {
    message =
      `zeropipe's native addon for ${where} was not found: it comes in the package ${pkg}, ` +
      `an optional dependency of zeropipe that was not installed (npm leaves optional ` +
      `dependencies out under --omit=optional, and a lock file made on another platform may ` +
      `not list it). Fix it either way:\n` +
      `  1. install it: npm install ${pkg}@${version}\n` +
      `  2. or ${fromSource}.`
  } else {
    message =
      `zeropipe's native addon for ${where} is installed (${pkg}) but failed to load: ` +
      `${describe(cause)}. Fix it either way:\n` +
      `  1. reinstall it at zeropipe's version: npm install ${pkg}@${version}\n` +
      `  2. or ${fromSource}.`
  }
  const err = new Error(message, { cause }) as Error & { code: string }
  err.code = 'ERR_ZEROPIPE_NATIVE_ADDON'
  return err
}

/** The innermost load errors napi-rs's loader chained through `cause`, one per line. */
function describe(cause: unknown): string {
  const messages: string[] = []
  for (let e = (cause as { cause?: unknown })?.cause; e && messages.length < 8; e = (e as { cause?: unknown }).cause) {
    messages.push(String((e as { message?: unknown }).message ?? e).split('\n')[0])
  }
  return messages.length ? messages.reverse().join('; ') : String((cause as { message?: unknown })?.message ?? cause)
}

function load(): typeof Binding {
  try {
    return require('../binding.js') as typeof Binding
  } catch (err) {
    throw missingAddonError(err)
  }
}

/** The loaded addon; the rest of the JS layer takes it from here, never from binding.js. */
export const binding = load()

export const {
  NativeSocket,
  optionSpecs,
  lingerAllSockets,
  READABLE,
  WRITABLE,
  EVENTS,
  PEERS,
  CLOSED,
  AUTH,
  MAX_QUEUED_EVENTS,
} = binding
export type NativeSocket = Binding.NativeSocket
export type NativeEvent = Binding.NativeEvent
export type NativePeer = Binding.NativePeer

// A thread or process that ends normally (the end of the script, process.exit(), a
// worker's own exit) first delivers what its sends resolved for, each socket within its
// linger, as libzmq's context termination does. A worker terminated from outside gets the
// same from the addon's environment cleanup hook.
process.once('exit', () => lingerAllSockets())
