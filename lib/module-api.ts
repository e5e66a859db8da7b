// The article's API: push(job) and pull() over two module-level sockets, a PUSH bound and a
// PULL connected to one endpoint, made on first use; and named channels, each the same over
// an endpoint of its own, so that one program can be a stage of a longer pipeline.

import { CurveConfig, curveKeyPair, isCurveOption, type CurveOptionName, type CurveOptions } from './curve'
import { codedError } from './errors'
import { describe, toFrames, type MessageLike } from './frames'
import type { AllSocketOptions } from './generated'
import { optionsFor, resolveOptions } from './options'
import { Pull } from './pull'
import { Push } from './push'

/** `tcp://127.0.0.1:7777`: the module API's endpoint unless `ZEROPIPE_ENDPOINT` or `configure()` says otherwise. */
export const DEFAULT_ENDPOINT: string = 'tcp://127.0.0.1:7777'

/** Which side of a channel binds (the stable one, that the other side's processes find). */
export type BindSide = 'push' | 'pull'

/**
 * A channel's settings: where it is, which side binds, and its sockets' options. With CURVE
 * (`curveSecretKey` or `curveServerKey` set), the side that binds is the CURVE server
 * (with `curveSecretKey`, `curveAllow`, `authenticate`), the other a client (with
 * `curveServerKey`, and `curveSecretKey` if the server checks who it is: a fresh key pair
 * otherwise). So there is no `curveServer` here.
 */
export type ChannelSettings = { endpoint?: string; bind?: BindSide } & Omit<AllSocketOptions, 'curveServer'>

/** A channel's environment variable: `ZEROPIPE_<WHAT>` for the default channel, `ZEROPIPE_<WHAT>_<NAME>` for a named one. */
function variable(what: string, name: string): string {
  return name ? `ZEROPIPE_${what}_${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}` : `ZEROPIPE_${what}`
}

/** The environment variable holding a named channel's endpoint: `ZEROPIPE_ENDPOINT_<NAME>`. */
export function endpointVariable(name: string): string {
  return variable('ENDPOINT', name)
}

/** The CURVE options a channel takes from its environment variables (Z85 keys). */
const CURVE_VARIABLES: [CurveOptionName, string][] = [
  ['curveSecretKey', 'CURVE_SECRET_KEY'],
  ['curvePublicKey', 'CURVE_PUBLIC_KEY'],
  ['curveServerKey', 'CURVE_SERVER_KEY'],
  ['curveAllow', 'CURVE_ALLOW'],
  ['zapDomain', 'ZAP_DOMAIN'],
]

/** A channel's CURVE options from the environment, each with the variable it came from. */
function curveFromEnvironment(name: string): Map<CurveOptionName, { value: unknown; from: string }> {
  const out = new Map<CurveOptionName, { value: unknown; from: string }>()
  for (const [option, what] of CURVE_VARIABLES) {
    const from = variable(what, name)
    const text = process.env[from]?.trim()
    if (!text) continue
    // The allowlist is a list of Z85 keys separated by commas or white space.
    out.set(option, { value: option === 'curveAllow' ? text.split(/[\s,]+/).filter(Boolean) : text, from })
  }
  return out
}

/**
 * The CURVE options of one side of a channel: the binding side is the server, the other a
 * client (see `ChannelSettings`). `EINVAL` when a side lacks its key.
 */
function curveForSide(
  settings: Map<CurveOptionName, { value: unknown; from: string }>,
  binds: boolean,
  label: string,
): CurveOptions {
  const get = (n: CurveOptionName) => settings.get(n)?.value as never
  const check = new CurveConfig()
  for (const [n, { value, from }] of settings) {
    try {
      check.set(n, value)
    } catch (err) {
      throw codedError('EINVAL', `${from}: ${(err as Error).message}`)
    }
  }
  const shared = { zapDomain: get('zapDomain') }
  if (!check.secretKey && !check.serverKey) {
    if (check.allow || check.authenticate) {
      throw codedError('EINVAL', `curveAllow and authenticate${label} need CURVE: set curveSecretKey (ZEROPIPE_CURVE_SECRET_KEY)`)
    }
    return {}
  }
  if (binds) {
    if (!check.secretKey) {
      throw codedError(
        'EINVAL',
        `The binding side${label} is its CURVE server and needs curveSecretKey (the server's secret key, ZEROPIPE_CURVE_SECRET_KEY)`,
      )
    }
    return {
      ...shared,
      curveServer: true,
      curveSecretKey: get('curveSecretKey'),
      curvePublicKey: get('curvePublicKey'),
      curveAllow: get('curveAllow'),
      authenticate: get('authenticate'),
      authTimeout: get('authTimeout'),
    }
  }
  if (!check.serverKey) {
    throw codedError(
      'EINVAL',
      `The connecting side${label} is a CURVE client and needs curveServerKey (the server's public key, ZEROPIPE_CURVE_SERVER_KEY)`,
    )
  }
  // Without a key pair of its own, a client makes one: enough unless the server checks keys.
  const own = check.secretKey ? null : curveKeyPair()
  return {
    ...shared,
    curveServerKey: get('curveServerKey'),
    curveSecretKey: own ? own.secretKey : get('curveSecretKey'),
    curvePublicKey: own ? own.publicKey : get('curvePublicKey'),
  }
}

/** Drops undefined values, which the socket constructors take as "not given". */
function defined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T
}

/**
 * One endpoint of the module API, with a PUSH and a PULL socket made on first use: the
 * default channel is the article's `push()`/`pull()`; named ones come from `channel()`.
 */
export class Channel {
  /** The channel's name ("" for the default channel). */
  readonly name: string
  #endpoint: string | undefined
  #bind: BindSide = 'push'
  #options: AllSocketOptions = {}
  /** CURVE options: the environment's, overridden by configure()'s. */
  #curve: Map<CurveOptionName, { value: unknown; from: string }>
  #push: Push | null = null
  #pushReady: Promise<void> | null = null
  #pull: Pull | null = null
  #pullReady: Promise<void> | null = null
  readonly #streams = new Set<JobStream>()

  /** @internal Made by `channel()`, and once for the default channel. */
  constructor(name: string, endpoint: string | undefined) {
    this.name = name
    this.#endpoint = endpoint
    this.#curve = curveFromEnvironment(name)
  }

  /** The options of the socket of type `owner`, binding or not, CURVE included. */
  #socketOptions(owner: 'Push' | 'Pull', binds: boolean): AllSocketOptions {
    return { ...optionsFor(owner, this.#options), ...defined(curveForSide(this.#curve, binds, this.#label())) }
  }

  /** The endpoint its sockets bind or connect to (undefined until configured). */
  get endpoint(): string | undefined {
    return this.#endpoint
  }

  /** Which side binds: `'push'` (the article's default: the producer is the stable side) or `'pull'`. */
  get bindSide(): BindSide {
    return this.#bind
  }

  /**
   * Sets the endpoint, the binding side and the sockets' options. Allowed before the
   * channel's first `push()`/`pull()`, or after its `close()`; `EINVAL` otherwise.
   */
  configure(settings: ChannelSettings): void {
    if (settings === null || typeof settings !== 'object') {
      throw new TypeError(`configure() takes an object such as { endpoint: "tcp://127.0.0.1:7777" }, got ${describe(settings)}`)
    }
    if (this.#push || this.#pull) {
      throw codedError('EINVAL', `configure() must be called before the first push() or pull()${this.#label()}, or after close()`)
    }
    const { endpoint, bind, ...all } = settings
    if ('curveServer' in all) {
      throw new TypeError(`A channel's binding side is its CURVE server: give curveSecretKey to both sides, or curveServerKey to the connecting one, not curveServer`)
    }
    const options: Record<string, unknown> = {}
    const curve = new Map(curveFromEnvironment(this.name))
    const check = new CurveConfig()
    for (const [name, value] of Object.entries(all)) {
      if (!isCurveOption(name)) options[name] = value
      else if (value !== undefined) {
        check.set(name, value)
        curve.set(name, { value, from: name })
      }
    }
    if (endpoint !== undefined && typeof endpoint !== 'string') {
      throw new TypeError(`Address must be a string, got ${describe(endpoint)}`)
    }
    if (bind !== undefined && bind !== 'push' && bind !== 'pull') {
      throw new TypeError(`bind must be "push" or "pull", got ${describe(bind)}`)
    }
    resolveOptions('configure()', options)
    if (endpoint !== undefined) this.#endpoint = endpoint
    if (bind !== undefined) this.#bind = bind
    this.#options = options
    this.#curve = curve
  }

  #label(): string {
    return this.name ? ` of channel "${this.name}"` : ''
  }

  #where(): string {
    if (this.#endpoint !== undefined) return this.#endpoint
    throw codedError(
      'EINVAL',
      `Channel "${this.name}" has no endpoint: pass channel("${this.name}", { endpoint }) or set ${endpointVariable(this.name)}`,
    )
  }

  /**
   * Sends a job through the channel's PUSH socket (made on first use: bound, or connected
   * when the PULL side binds). Resolves once the job is queued (at once while under the
   * high-water mark); waits while the queue is full or no peer is there yet. Calls from
   * anywhere in the program are queued in call order.
   */
  push<const T extends MessageLike | readonly MessageLike[]>(job: NonEmpty<T>): Promise<void> {
    let frames
    try {
      frames = toFrames(job)
      if (!this.#push) {
        const endpoint = this.#where()
        const sock = new Push(this.#socketOptions('Push', this.#bind === 'push'))
        if (this.#bind === 'push') {
          this.#pushReady = sock.bind(endpoint).catch((err: unknown) => {
            // A failed bind leaves no half-made socket behind: the next push() tries again.
            if (this.#push === sock) this.#push = null
            void sock.close()
            throw err
          })
        } else {
          connectOrClose(sock, endpoint)
          this.#pushReady = Promise.resolve()
        }
        this.#push = sock
      }
    } catch (err) {
      return Promise.reject(err)
    }
    const sock = this.#push
    return this.#pushReady!.then(() => sock.send(frames.length === 1 ? frames[0]! : frames))
  }

  /**
   * Returns a `JobStream` over the channel's PULL socket (made on first use: connected, or
   * bound when this side binds). Without a handler, consuming it as a promise logs
   * `Received Job <job>` for each job.
   */
  pull(handler?: Handler): JobStream {
    return new JobStream(this, handler)
  }

  /** @internal The PULL socket a new stream reads, and what must happen before it can. */
  _pullSocket(): { socket: Pull; ready: Promise<void> | null } {
    if (!this.#pull) {
      const endpoint = this.#where()
      const sock = new Pull(this.#socketOptions('Pull', this.#bind === 'pull'))
      if (this.#bind === 'pull') {
        const ready = sock.bind(endpoint)
        // Seen by the streams' next(); a stream-less rejection must not crash the process.
        ready.catch(() => {})
        this.#pullReady = ready
      } else {
        connectOrClose(sock, endpoint)
        this.#pullReady = null
      }
      this.#pull = sock
    }
    return { socket: this.#pull, ready: this.#pullReady }
  }

  /** @internal */
  _addStream(s: JobStream): void {
    this.#streams.add(s)
  }

  /** @internal The last stream gone: the PULL closes, so the PUSH stops routing jobs to a socket nobody reads. */
  _removeStream(s: JobStream, socket: Pull): void {
    this.#streams.delete(s)
    if (this.#streams.size === 0 && this.#pull === socket) {
      this.#pull = null
      this.#pullReady = null
      void socket.close()
    }
  }

  /** Flushes (within linger) and closes the channel's sockets; push()/pull() start afresh afterwards. */
  async close(): Promise<void> {
    const work: Promise<void>[] = []
    if (this.#push) {
      const sock = this.#push
      const ready = this.#pushReady!
      this.#push = null
      this.#pushReady = null
      work.push(ready.then(() => sock.close(), () => sock.close()))
    }
    for (const s of [...this.#streams]) s.close()
    if (this.#pull) {
      work.push(this.#pull.close())
      this.#pull = null
      this.#pullReady = null
    }
    await Promise.all(work)
  }
}

/** Connects, or leaves no half-made socket behind (it would block configure()). */
function connectOrClose(sock: Push | Pull, endpoint: string): void {
  try {
    sock.connect(endpoint)
  } catch (err) {
    void sock.close()
    throw err
  }
}

const defaultChannel = new Channel('', process.env.ZEROPIPE_ENDPOINT || DEFAULT_ENDPOINT)
const channels = new Map<string, Channel>()

/**
 * A named channel of the module API: its own endpoint, with `push()`, `pull()` and
 * `close()` as the module functions have. The first call makes it; the endpoint comes from
 * `settings.endpoint`, else `ZEROPIPE_ENDPOINT_<NAME>` (upper case, other characters as
 * `_`). `bind` says which side binds (default `'push'`). A later call returns the same
 * channel, reconfigured if settings are given (allowed until its first use).
 *
 * ```ts
 * const results = channel("results", { endpoint: "tcp://127.0.0.1:7778", bind: "pull" })
 * for await (const [job] of pull()) await results.push(work(job))   // a worker stage
 * ```
 */
export function channel(name: string, settings?: ChannelSettings): Channel {
  if (typeof name !== 'string' || name === '') {
    throw new TypeError(`A channel's name must be a non-empty string, got ${describe(name)}`)
  }
  let ch = channels.get(name)
  if (!ch) {
    ch = new Channel(name, process.env[endpointVariable(name)] || undefined)
    channels.set(name, ch)
  }
  if (settings !== undefined) ch.configure(settings)
  return ch
}

/**
 * Sets the module sockets' endpoint and options. Must be called before the first `push()`
 * or `pull()` (or after `close()`); each socket takes the options of its type.
 */
export function configure(settings: { endpoint?: string } & Omit<AllSocketOptions, 'curveServer'>): void {
  if (settings !== null && typeof settings === 'object' && 'bind' in settings) {
    throw new TypeError('configure() sets the default channel, whose PUSH binds; use channel(name, { bind }) for another side')
  }
  defaultChannel.configure(settings)
}

/** A job: one frame, or an array of frames that is not empty (an empty array has no frames). */
export type NonEmpty<T> = T & (T extends readonly [] ? never : unknown)

/**
 * Sends a job through the module's PUSH socket, which binds to the configured endpoint on
 * first use. Resolves once the job is queued (at once while under the high-water mark);
 * waits while the queue is full or no worker is connected yet. Calls from anywhere in the
 * program are queued in call order.
 */
export function push<const T extends MessageLike | readonly MessageLike[]>(job: NonEmpty<T>): Promise<void> {
  return defaultChannel.push(job)
}

type Handler = (frames: Buffer[]) => unknown

function defaultHandler(frames: Buffer[]): void {
  console.log(`Received Job ${frames.map((f) => f.toString()).join(' ')}`)
}

/**
 * The jobs arriving at the module's PULL socket: both an async iterator
 * (`for await (const [job] of pull())`) and promise-like (awaiting it, or calling
 * then/catch/finally, runs the handler for each job in turn and settles when the stream
 * closes; it rejects if the handler throws). Using one stream both ways throws.
 */
export class JobStream implements AsyncIterableIterator<Buffer[]>, PromiseLike<void> {
  readonly #handler: Handler
  #mode: 'iterator' | 'promise' | null = null
  #closed = false
  #cancelPending: (() => void) | null = null
  #run: Promise<void> | null = null
  readonly #socket: Pull
  readonly #channel: Channel
  /** The PULL's bind when this side binds: receiving waits for it, and fails with it. */
  readonly #ready: Promise<void> | null

  /** @internal Made by `pull()` and `Channel#pull()`. */
  constructor(channel: Channel, handler?: Handler) {
    if (handler !== undefined && typeof handler !== 'function') {
      throw new TypeError(`pull() takes an optional handler function, got ${describe(handler)}`)
    }
    this.#handler = handler || defaultHandler
    const { socket, ready } = channel._pullSocket()
    this.#socket = socket
    this.#ready = ready
    this.#channel = channel
    channel._addStream(this)
  }

  /** True once the stream ended. */
  get closed(): boolean {
    return this.#closed
  }

  #use(mode: 'iterator' | 'promise'): void {
    if (this.#mode && this.#mode !== mode) {
      throw new Error(
        `This JobStream is already consumed as ${this.#mode === 'iterator' ? 'an async iterator' : 'a promise'}; ` +
          'use either `for await` or then/catch/await on a pull() stream, not both',
      )
    }
    this.#mode = mode
  }

  [Symbol.asyncIterator](): this {
    this.#use('iterator')
    return this
  }

  /** The next job, or `done` once the stream is closed. */
  next(): Promise<IteratorResult<Buffer[], undefined>> {
    if (this.#closed) return Promise.resolve({ value: undefined, done: true })
    if (this.#ready) {
      const ready = this.#ready
      return ready.then(
        () => this.#next(),
        (err: unknown) => {
          this.close()
          throw err
        },
      )
    }
    return this.#next()
  }

  #next(): Promise<IteratorResult<Buffer[], undefined>> {
    if (this.#closed) return Promise.resolve({ value: undefined, done: true })
    const r = this.#socket._receive()
    return new Promise((resolve, reject) => {
      this.#cancelPending = () => {
        if (r.cancel()) resolve({ value: undefined, done: true })
      }
      r.promise.then(
        (value) => {
          this.#cancelPending = null
          resolve({ value, done: false })
        },
        (err: { code?: string }) => {
          this.#cancelPending = null
          if (this.#closed || (this.#socket.closed && err.code === 'EBADF')) {
            this.#finish()
            resolve({ value: undefined, done: true })
          } else reject(err)
        },
      )
    })
  }

  /** Ends the stream (as `close()`). */
  return(): Promise<IteratorResult<Buffer[], undefined>> {
    this.close()
    return Promise.resolve({ value: undefined, done: true })
  }

  #loop(): Promise<void> {
    if (!this.#run) {
      this.#run = (async () => {
        for (;;) {
          const { value, done } = await this.next()
          if (done) return
          try {
            await this.#handler(value)
          } catch (err) {
            this.close()
            throw err
          }
        }
      })()
    }
    return this.#run
  }

  then<T = void, U = never>(
    onfulfilled?: ((value: void) => T | PromiseLike<T>) | null,
    onrejected?: ((reason: unknown) => U | PromiseLike<U>) | null,
  ): Promise<T | U> {
    this.#use('promise')
    return this.#loop().then(onfulfilled, onrejected)
  }

  catch<U = never>(onrejected?: ((reason: unknown) => U | PromiseLike<U>) | null): Promise<void | U> {
    return this.then(undefined, onrejected)
  }

  finally(onfinally?: (() => void) | null): Promise<void> {
    return this.then().finally(onfinally)
  }

  /** Ends this stream: iteration finishes and the promise resolves. */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    if (this.#cancelPending) this.#cancelPending()
    this.#cancelPending = null
    this.#finish()
  }

  #finish(): void {
    this.#closed = true
    this.#channel._removeStream(this, this.#socket)
  }

  get [Symbol.toStringTag](): string {
    return 'JobStream'
  }
}

/**
 * Returns a `JobStream` over the module's PULL socket, which connects to the configured
 * endpoint on first use. Without a handler, consuming it as a promise logs
 * `Received Job <job>` for each job.
 */
export function pull(handler?: Handler): JobStream {
  return defaultChannel.pull(handler)
}

/**
 * Flushes (within linger) and closes the module's sockets, the default channel's and every
 * named channel's, so the process can exit; push()/pull() start afresh afterwards.
 */
export async function close(): Promise<void> {
  await Promise.all([defaultChannel.close(), ...[...channels.values()].map((c) => c.close())])
}
