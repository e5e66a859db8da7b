// CURVE (encryption and authentication, rfc 26) for Push and Pull: the key options with
// zeromq.js's names and formats, their checks, the `authenticate` callback, and the key
// helpers. Keys are not integer options, so they live here rather than in the engine's
// option table (lib/options.ts); Z85 and key generation are the engine's, through the addon.

import * as binding from '../binding.js'
import { codedError } from './errors'
import { describe } from './frames'

const { curveKeyPair: nativeKeyPair, curvePublicKey, z85Encode, z85Decode } = binding

/** A CURVE key: 40 Z85 characters, or its 32 raw bytes. */
export type CurveKey = string | Uint8Array

/** What a CURVE server asks its `authenticate` callback about a client. */
export interface AuthRequest {
  /** The client's long-term public key (Z85), proven: the client holds its secret key. */
  publicKey: string
  /** Where the client connects from: its IP for tcp (no port), the endpoint (`ipc://path`) for ipc. */
  address: string
  /** The server's `zapDomain`. */
  domain: string
}

/** ZAP status codes: 200 welcome, 300 temporary failure, 400 denied, 500 internal error. */
export type AuthStatus = 200 | 300 | 400 | 500

/**
 * What `authenticate` answers: `true` (200) or `false` (400), or a ZAP status with the
 * user id the `handshake` event then reports.
 */
export type AuthVerdict = boolean | { status: AuthStatus; userId?: string }

/** A CURVE server's decision on each client, sync or async. */
export type Authenticate = (request: AuthRequest) => AuthVerdict | PromiseLike<AuthVerdict>

/**
 * CURVE options (libzmq's `ZMQ_CURVE_*`, zeromq.js's names): set `curveServer` and
 * `curveSecretKey` on a server; `curveServerKey` and `curveSecretKey` on a client. Either
 * side may bind or connect. inproc connections stay unencrypted, as in libzmq.
 */
export interface CurveOptions {
  /** Act as the CURVE server: clients must know this socket's public key. Default: false. */
  curveServer?: boolean
  /**
   * This socket's long-term secret key (Z85 or 32 bytes). Required for CURVE, on both
   * sides. Write-only: reading it gives `null`.
   */
  curveSecretKey?: CurveKey | null
  /** This socket's long-term public key. Default: derived from `curveSecretKey` (a key that is not its pair is `EINVAL`). */
  curvePublicKey?: CurveKey | null
  /** A client's: the server's public key. Setting it makes the socket a CURVE client. */
  curveServerKey?: CurveKey | null
  /** The ZAP domain handed to `authenticate` (`ZMQ_ZAP_DOMAIN`). Default: "". */
  zapDomain?: string
  /**
   * A server's allowlist of client public keys, checked in Rust before `authenticate`: any
   * other client is denied (ERROR "400"). Default: null, every client.
   */
  curveAllow?: Iterable<CurveKey> | null
  /**
   * A server's decision on each client that passed the cryptographic checks and
   * `curveAllow`. Without one (and without `curveAllow`), any client with a valid vouch is
   * accepted, as libzmq does without a ZAP handler. A callback that throws or rejects
   * counts as 500. Default: null.
   */
  authenticate?: Authenticate | null
  /** How long `authenticate` may take, ms; past it the client is turned away as with 300. Default: 5000. */
  authTimeout?: number
}

/** The CURVE options as socket properties (`sock.curveServerKey = key`). */
export interface CurveOptionProperties {
  curveServer: boolean
  /** Write-only: always reads `null`. */
  get curveSecretKey(): null
  set curveSecretKey(value: CurveKey | null)
  /** Reads back as Z85 (derived from the secret key when not set). */
  get curvePublicKey(): string | null
  set curvePublicKey(value: CurveKey | null)
  /** Reads back as Z85. */
  get curveServerKey(): string | null
  set curveServerKey(value: CurveKey | null)
  zapDomain: string
  /** Reads back as Z85 keys. */
  get curveAllow(): string[] | null
  set curveAllow(value: Iterable<CurveKey> | null)
  authenticate: Authenticate | null
  authTimeout: number
}

export type CurveOptionName = keyof CurveOptions

/** Every CURVE option's name (those the engine's option table does not have). */
export const CURVE_OPTION_NAMES: readonly CurveOptionName[] = [
  'curveServer',
  'curveSecretKey',
  'curvePublicKey',
  'curveServerKey',
  'zapDomain',
  'curveAllow',
  'authenticate',
  'authTimeout',
]
const NAMES = new Set<string>(CURVE_OPTION_NAMES)

export function isCurveOption(name: string): name is CurveOptionName {
  return NAMES.has(name)
}

/** The default `authTimeout`, ms. */
export const DEFAULT_AUTH_TIMEOUT = 5000
const MAX_AUTH_TIMEOUT = 2 ** 31 - 1

/** A new long-term CURVE key pair (Z85), from the operating system's random generator. */
export function curveKeyPair(): { publicKey: string; secretKey: string } {
  const { publicKey, secretKey } = nativeKeyPair()
  return { publicKey, secretKey }
}

/** Z85 (rfc 32), libzmq's text form of keys. */
export const z85: {
  /** Encodes bytes whose count is a multiple of 4 (`EINVAL` otherwise). */
  encode(data: Uint8Array): string
  /** Decodes text whose length is a multiple of 5 (`EINVAL` otherwise, and for bad characters). */
  decode(text: string): Buffer
} = Object.freeze({
  encode(data: Uint8Array): string {
    if (!(data instanceof Uint8Array)) throw new TypeError(`z85.encode takes a Uint8Array, got ${describe(data)}`)
    return z85Encode(data)
  },
  decode(text: string): Buffer {
    if (typeof text !== 'string') throw new TypeError(`z85.decode takes a string, got ${describe(text)}`)
    return z85Decode(text)
  },
})

/** A key's 32 bytes: `EINVAL` for a wrong length or bad Z85, `TypeError` for another type. */
export function parseKey(name: string, value: unknown): Buffer {
  if (typeof value === 'string') {
    if (value.length !== 40) {
      throw codedError('EINVAL', `${name} must be 40 Z85 characters or 32 bytes, got ${value.length} characters`)
    }
    try {
      return z85Decode(value)
    } catch (err) {
      throw codedError('EINVAL', `${name} is not valid Z85: ${(err as Error).message}`)
    }
  }
  if (value instanceof Uint8Array) {
    if (value.length !== 32) throw codedError('EINVAL', `${name} must be 32 bytes or 40 Z85 characters, got ${value.length} bytes`)
    return Buffer.from(value)
  }
  throw new TypeError(`${name} must be a Z85 string or a 32-byte Buffer, got ${describe(value)}`)
}

/** Why a CURVE setup cannot be used yet, or null when it can (or CURVE is off). */
function incomplete(c: CurveConfig): string | null {
  const clientOnly = c.serverKey !== null && !c.server
  if (c.server || clientOnly) {
    if (!c.secretKey) return `a CURVE ${c.server ? 'server' : 'client'} needs curveSecretKey (curveKeyPair() makes a pair)`
    if (clientOnly && (c.allow || c.authenticate)) {
      return 'curveAllow and authenticate apply to a CURVE server (curveServer: true), not to a client'
    }
    return null
  }
  if (c.secretKey || c.publicKey) return 'CURVE keys are set but neither curveServer nor curveServerKey: set one to choose the role'
  if (c.allow || c.authenticate) return 'curveAllow and authenticate apply to a CURVE server (curveServer: true)'
  return null
}

/** What the addon's `setCurve` and `setAuthenticator` take. */
export interface NativeCurveSetup {
  curve: binding.NativeCurve | null
  /** The authenticator's timeout, or null for none. */
  authTimeout: number | null
}

/** A socket's CURVE settings, checked one at a time as they are set. */
export class CurveConfig {
  server = false
  secretKey: Buffer | null = null
  publicKey: Buffer | null = null
  serverKey: Buffer | null = null
  zapDomain = ''
  allow: Buffer[] | null = null
  authenticate: Authenticate | null = null
  authTimeout = DEFAULT_AUTH_TIMEOUT

  /** A copy, for assignments that must not change the original until they succeed. */
  clone(): CurveConfig {
    return Object.assign(new CurveConfig(), this)
  }

  get enabled(): boolean {
    return this.server || this.serverKey !== null
  }

  /** Checks and stores one option: `TypeError` for a wrong type, `EINVAL` for a bad key. */
  set(name: CurveOptionName, value: unknown): void {
    switch (name) {
      case 'curveServer':
        if (typeof value !== 'boolean') throw new TypeError(`Option "curveServer" must be a boolean, got ${describe(value)}`)
        this.server = value
        return
      case 'curveSecretKey':
        this.secretKey = value === null ? null : parseKey(name, value)
        return
      case 'curvePublicKey':
        this.publicKey = value === null ? null : parseKey(name, value)
        return
      case 'curveServerKey':
        this.serverKey = value === null ? null : parseKey(name, value)
        return
      case 'zapDomain':
        if (typeof value !== 'string') throw new TypeError(`Option "zapDomain" must be a string, got ${describe(value)}`)
        if (Buffer.byteLength(value) > 255) throw codedError('EINVAL', 'zapDomain is at most 255 bytes')
        this.zapDomain = value
        return
      case 'curveAllow': {
        if (value === null) {
          this.allow = null
          return
        }
        if (typeof value === 'string' || typeof (value as Iterable<unknown>)?.[Symbol.iterator] !== 'function') {
          throw new TypeError(`Option "curveAllow" must be an iterable of keys (an array, a Set) or null, got ${describe(value)}`)
        }
        this.allow = [...(value as Iterable<unknown>)].map((k, i) => parseKey(`curveAllow[${i}]`, k))
        return
      }
      case 'authenticate':
        if (value !== null && typeof value !== 'function') {
          throw new TypeError(`Option "authenticate" must be a function or null, got ${describe(value)}`)
        }
        this.authenticate = value as Authenticate | null
        return
      case 'authTimeout':
        if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_AUTH_TIMEOUT) {
          throw new RangeError(`Option "authTimeout" must be an integer from 1 to ${MAX_AUTH_TIMEOUT} (ms), got ${describe(value)}`)
        }
        this.authTimeout = value
        return
    }
  }

  /** One option as a property reads it. */
  get(name: CurveOptionName): unknown {
    switch (name) {
      case 'curveServer':
        return this.server
      case 'curveSecretKey':
        return null
      case 'curvePublicKey': {
        const key = this.publicKey ?? (this.secretKey && curvePublicKey(this.secretKey))
        return key ? z85Encode(key) : null
      }
      case 'curveServerKey':
        return this.serverKey && z85Encode(this.serverKey)
      case 'zapDomain':
        return this.zapDomain
      case 'curveAllow':
        return this.allow && this.allow.map((k) => z85Encode(k))
      case 'authenticate':
        return this.authenticate
      case 'authTimeout':
        return this.authTimeout
    }
  }

  /** What the addon takes, or `EINVAL` when the settings cannot be used as they are. */
  native(): NativeCurveSetup {
    const why = incomplete(this)
    if (why) throw codedError('EINVAL', why)
    if (!this.enabled) return { curve: null, authTimeout: null }
    return {
      curve: {
        server: this.server,
        secretKey: this.secretKey!,
        publicKey: this.publicKey ?? undefined,
        serverKey: this.server ? undefined : (this.serverKey ?? undefined),
        zapDomain: this.zapDomain,
        allow: this.server && this.allow ? this.allow : undefined,
      },
      authTimeout: this.server && this.authenticate ? this.authTimeout : null,
    }
  }
}

/** Splits constructor options into the engine's and CURVE's. */
export function splitCurveOptions(options: unknown): { rest: unknown; curve: [CurveOptionName, unknown][] } {
  if (options === null || typeof options !== 'object') return { rest: options, curve: [] }
  const rest: Record<string, unknown> = {}
  const curve: [CurveOptionName, unknown][] = []
  for (const [name, value] of Object.entries(options)) {
    if (isCurveOption(name)) {
      if (value !== undefined) curve.push([name, value])
    } else rest[name] = value
  }
  return { rest, curve }
}

/** A verdict as the addon takes it: a ZAP status and a user id. */
export function verdictStatus(verdict: unknown): { status: number; userId: string } | null {
  if (verdict === true) return { status: 200, userId: '' }
  if (verdict === false) return { status: 400, userId: '' }
  if (verdict !== null && typeof verdict === 'object') {
    const { status, userId } = verdict as { status?: unknown; userId?: unknown }
    if ((status === 200 || status === 300 || status === 400 || status === 500) && (userId === undefined || typeof userId === 'string')) {
      return { status, userId: userId ?? '' }
    }
  }
  return null
}

/** The `curve` option of `Pool` and `serve()`: CURVE options only (`TypeError` otherwise). */
export function curveOf(owner: string, curve: unknown): CurveOptions {
  if (curve === undefined || curve === null) return {}
  if (typeof curve !== 'object') throw new TypeError(`${owner} option "curve" must be an object of CURVE options, got ${describe(curve)}`)
  for (const name of Object.keys(curve)) {
    if (!isCurveOption(name)) {
      throw new TypeError(`${owner} option "curve" takes CURVE options (${CURVE_OPTION_NAMES.join(', ')}), not "${name}"`)
    }
  }
  return curve as CurveOptions
}
