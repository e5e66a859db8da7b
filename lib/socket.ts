// What Push and Pull share: the native socket, endpoints, close, events, options, and how a
// socket waits (armed readiness bits and a reference that keeps Node alive only while a
// call waits).

import { CURVE_OPTION_NAMES, CurveConfig, splitCurveOptions, verdictStatus, type CurveOptionName } from './curve'
import { closedError, codedError } from './errors'
import { describe } from './frames'
import { AUTH, EVENTS, NativeSocket, PEERS } from './native'
import { Observer, type Observed } from './observer'
import { nativeValues, resolveOptions, type HasOptions, type OptionValues } from './options'
import type { Waiter, WaitQueue } from './wait-queue'

// Sockets with a pending operation. The native waker only holds a socket weakly (so an
// idle socket nobody references can be collected and closed, as in zeromq.js); while a
// send, receive or event wait is pending, this set keeps it alive.
const ACTIVE = new Set<Socket>()

/** A flush still going this long after close() is worth a warning even with peers present. */
const LINGER_WARNING_AFTER_MS = 1000

interface PeerWaiter {
  count: number
  resolve(): void
  reject(err: unknown): void
  timer: NodeJS.Timeout | null
  signal: AbortSignal | undefined
  onAbort: (() => void) | null
}

function checkAddress(addr: unknown): asserts addr is string {
  if (typeof addr !== 'string') throw new TypeError(`Address must be a string, got ${describe(addr)}`)
}

/** The base of `Push` and `Pull`. */
export abstract class Socket implements HasOptions, Observed {
  /** @internal */
  protected readonly native: NativeSocket
  #opts: OptionValues
  #referenced = false
  /** @internal Set once close() was called: the close in progress. */
  protected closing: Promise<void> | null = null
  #observer: Observer | null = null
  /** Calls of `waitForPeers()` still waiting: each its count, settled on a PEERS wake. */
  #peerWaiters: PeerWaiter[] = []
  /** False where the owner reports a lingering close its own way (the CLI, with its exit code). */
  #warnOnLinger = true
  /** False for a socket whose waits must not keep the process alive (a pool's, when idle). */
  #holdsProcess = true
  /** What bind() and connect() were given, for the close warning to name. */
  readonly #endpoints = new Set<string>()
  /** The CURVE options as set (see lib/curve.ts). */
  #curve = new CurveConfig()
  /**
   * Why the CURVE options as assigned cannot be used (a role without its keys, a public key
   * that is not the secret key's): thrown by bind() and connect() until fixed. Assignments
   * come one at a time, so an unfinished or in-between setup is not an error until used;
   * meanwhile connections keep the last complete setup.
   */
  #curveProblem: Error | null = null

  /** @internal */
  constructor(kind: 'push' | 'pull', owner: 'Push' | 'Pull', options: unknown) {
    const { rest, curve } = splitCurveOptions(options)
    this.#opts = resolveOptions(owner, rest)
    for (const [name, value] of curve) this.#curve.set(name, value)
    const self = new WeakRef(this)
    this.native = new NativeSocket(kind, nativeValues(this.#opts), (bits: number) => self.deref()?._wake(bits))
    // Constructor options come together: any problem with them is reported now.
    if (curve.length) {
      try {
        this.#applyCurve(this.#curve)
      } catch (err) {
        void this.native.close()
        throw err
      }
    }
  }

  /** Hands `config` to the addon (throws, changing nothing, if it cannot be used). */
  #applyCurve(config: CurveConfig): void {
    const { curve, authTimeout } = config.native()
    this.native.setCurve(curve)
    this.native.setAuthenticator(authTimeout)
    // Listening for clients to judge does not keep the process alive: the socket's other
    // waits (a receive, a listener) decide that, as they do for messages.
    if (authTimeout !== null) this.arm(AUTH)
  }

  /** @internal A CURVE option, as its property reads it. */
  _curveOption(name: CurveOptionName): unknown {
    return this.#curve.get(name)
  }

  /** @internal Assigns a CURVE option: `TypeError`/`EINVAL` for a bad value (nothing changes then). */
  _setCurveOption(name: CurveOptionName, value: unknown): void {
    if (this.closed) throw closedError()
    const next = this.#curve.clone()
    next.set(name, value)
    this.#curve = next
    try {
      this.#applyCurve(next)
      this.#curveProblem = null
    } catch (err) {
      if ((err as { code?: string }).code !== 'EINVAL') throw err
      this.#curveProblem = err as Error
    }
  }

  #checkCurve(): void {
    if (this.#curveProblem) throw this.#curveProblem
  }

  /** Runs the `authenticate` callback for each client waiting for a verdict. */
  #serveAuth(): void {
    const authenticate = this.#curve.authenticate
    if (this.native.closed || !authenticate) return
    const requests = this.native.takeAuthRequests()
    this.arm(AUTH)
    for (const { id, publicKey, address, domain } of requests) {
      const answer = (verdict: unknown) => {
        const reply = verdictStatus(verdict)
        if (!reply) {
          process.emitWarning(
            `authenticate() returned ${describe(verdict)}; expected true, false or { status: 200 | 300 | 400 | 500, userId? }: the client gets 500`,
            { code: 'ZEROPIPE_AUTH' },
          )
        }
        if (!this.native.closed) this.native.authReply(id, reply?.status ?? 500, reply?.userId ?? '')
      }
      const failed = (err: unknown) => {
        process.emitWarning(`authenticate() failed, the client gets 500: ${(err as Error)?.message ?? String(err)}`, {
          code: 'ZEROPIPE_AUTH',
        })
        if (!this.native.closed) this.native.authReply(id, 500, '')
      }
      let verdict: unknown
      try {
        verdict = authenticate({ publicKey, address, domain })
      } catch (err) {
        failed(err)
        continue
      }
      if (verdict !== null && typeof (verdict as PromiseLike<unknown>)?.then === 'function') {
        Promise.resolve(verdict).then(answer, failed)
      } else answer(verdict)
    }
  }

  /** True once `close()` was called. */
  get closed(): boolean {
    return this.closing !== null || this.native.closed
  }

  /**
   * ZMQ_LAST_ENDPOINT: the resolved address of the last bind (the real port of
   * `tcp://host:0` or `:*`, the path of `ipc://*`), or null.
   */
  get lastEndpoint(): string | null {
    return this.native.lastEndpoint ?? null
  }

  /**
   * How many peers this socket reaches now: those whose ZMTP handshake completed and whose
   * connection is still up. `connect()` and an `accept` event say nothing of this; a PUSH
   * that sends before its peers are counted here gives every message to the first one to
   * arrive (the "slow joiner").
   */
  get peers(): number {
    return this.native.closed ? 0 : this.native.peers().length
  }

  /**
   * Resolves once the socket reaches at least `count` peers (default 1; see `peers`).
   * Keeps the process alive while it waits. Rejects with `ETIMEDOUT` after
   * `options.timeout` ms (default: no limit), with the signal's reason when
   * `options.signal` aborts, and with `EBADF` if the socket closes first.
   */
  waitForPeers(count = 1, options: { timeout?: number; signal?: AbortSignal } = {}): Promise<void> {
    if (!Number.isInteger(count) || count < 0) {
      return Promise.reject(new TypeError(`Peer count must be a non-negative integer, got ${describe(count)}`))
    }
    const { timeout, signal } = options
    if (timeout !== undefined && (typeof timeout !== 'number' || !(timeout >= 0))) {
      return Promise.reject(new TypeError(`Timeout must be a non-negative number of ms, got ${describe(timeout)}`))
    }
    if (this.closed) return Promise.reject(closedError())
    if (signal?.aborted) return Promise.reject(signal.reason)
    // Armed before the count is read: a handshake in between wakes us, never goes unseen.
    this.arm(PEERS)
    if (this.peers >= count) return Promise.resolve()
    return new Promise<void>((resolve, reject) => {
      const waiter: PeerWaiter = { count, resolve, reject, timer: null, signal, onAbort: null }
      const drop = (err: unknown) => {
        if (this.#removePeerWaiter(waiter)) reject(err)
      }
      if (timeout !== undefined) {
        waiter.timer = setTimeout(
          () => drop(codedError('ETIMEDOUT', `${this.peers} of ${count} peers after ${timeout} ms`)),
          timeout,
        )
      }
      if (signal) {
        waiter.onAbort = () => drop(signal.reason)
        signal.addEventListener('abort', waiter.onAbort, { once: true })
      }
      this.#peerWaiters.push(waiter)
      this._updateRef()
    })
  }

  #removePeerWaiter(w: PeerWaiter): boolean {
    const i = this.#peerWaiters.indexOf(w)
    if (i < 0) return false
    this.#peerWaiters.splice(i, 1)
    if (w.timer) clearTimeout(w.timer)
    if (w.onAbort) w.signal?.removeEventListener('abort', w.onAbort)
    this._updateRef()
    return true
  }

  #servePeerWaiters(): void {
    if (!this.#peerWaiters.length) return
    this.arm(PEERS)
    const now = this.peers
    for (const w of this.#peerWaiters.filter((w) => now >= w.count)) {
      if (this.#removePeerWaiter(w)) w.resolve()
    }
  }

  /** Socket events (bind, accept, connect, connect:retry, disconnect, handshake, …), created on first use. */
  get events(): Observer {
    if (!this.#observer) {
      this.native.enableEvents()
      this.#observer = new Observer(this)
    }
    return this.#observer
  }

  /**
   * Binds to `tcp://host:port` (`*` = all interfaces, port `0`/`*` = ephemeral),
   * `ipc:///path` (`ipc://*` = a fresh temp path, `ipc://@name` = Linux abstract) or
   * `inproc://name`. Rejects with `EADDRINUSE`, `EINVAL`, `EPROTONOSUPPORT`, `EBADF`.
   */
  async bind(address: string): Promise<void> {
    checkAddress(address)
    if (this.closed) throw closedError()
    this.#checkCurve()
    await this.native.bind(address)
    this.#endpoints.add(address)
  }

  /** Stops listening on an address given to `bind()` (or its resolved form). */
  async unbind(address: string): Promise<void> {
    checkAddress(address)
    if (this.closed) throw closedError()
    await this.native.unbind(address)
  }

  /** Connects in the background, reconnecting as needed. Throws `EINVAL`/`EPROTONOSUPPORT`/`EBADF`. */
  connect(address: string): void {
    checkAddress(address)
    if (this.closed) throw closedError()
    this.#checkCurve()
    this.native.connect(address)
    this.#endpoints.add(address)
  }

  /** Stops connecting to an address and drops that connection. */
  disconnect(address: string): void {
    checkAddress(address)
    if (this.closed) throw closedError()
    this.native.disconnect(address)
  }

  /**
   * Closes the socket. Unlike zeromq.js this returns a Promise, settled once queued
   * messages are flushed (within `linger`). Pending sends and receives reject with `EBADF`.
   */
  close(): Promise<void> {
    if (this.closing) return this.closing
    this.beforeClose(closedError())
    for (const w of [...this.#peerWaiters]) if (this.#removePeerWaiter(w)) w.reject(closedError())
    const warning = this.#lingerWarning()
    this.closing = this.native.close().then(() => {
      if (warning) clearTimeout(warning)
      this.#observer?._drain()
      this._updateRef()
    })
    this._updateRef()
    return this.closing
  }

  /**
   * A close that lingers is never silent: with messages queued and no peer to take them
   * the warning comes at once, otherwise if the flush is still going after a second. The
   * timer is unref'd: it must not be what keeps a process alive.
   */
  #lingerWarning(): NodeJS.Timeout | null {
    const linger = this.#opts.linger
    if (!this.#warnOnLinger || linger === 0 || this.native.unsent() === 0) return null
    const warn = () => {
      const left = this.native.unsent()
      if (left === 0) return
      const where = [...this.#endpoints].join(', ') || '(no endpoint)'
      const wait = linger < 0 ? 'with no limit (linger -1)' : `up to ${linger} ms (linger)`
      process.emitWarning(
        `close() of a ${this.constructor.name} on ${where} waits ${wait} for ${left} queued message(s)` +
          (this.peers === 0 ? ' that no peer can take now' : ' still being flushed') +
          '; set `linger` lower (0 drops them) to close sooner',
        { code: 'ZEROPIPE_LINGER' },
      )
    }
    if (this.peers === 0) {
      warn()
      return null
    }
    const timer = setTimeout(warn, LINGER_WARNING_AFTER_MS)
    timer.unref()
    return timer
  }

  /** @internal What a socket type settles before closing: what it accepted, what waits. */
  protected abstract beforeClose(err: Error): void

  /** @internal Whether a call of this socket waits (which keeps the process alive). */
  protected abstract waiting(): boolean

  /** @internal Serves the calls a readiness bit of this socket type unblocked. */
  protected abstract ready(bits: number): void

  /** @internal */
  _options(): OptionValues {
    return this.#opts
  }

  /** @internal */
  _setOptions(values: OptionValues): void {
    // As every other use of a closed socket: the value would apply to nothing.
    if (this.closed) throw closedError()
    this.native.setOptions(nativeValues(values))
    this.#opts = values
  }

  /** @internal */
  _takeEvents(max: number) {
    return this.native.takeEvents(max)
  }

  /** @internal */
  _armEvents(): void {
    this.arm(EVENTS)
  }

  /**
   * @internal Queues a waiting call with its timeout; the first waiter arms `bit` (its
   * wake-up serves the whole queue and re-arms if needed).
   */
  protected enqueue<T>(queue: WaitQueue<Waiter<T>>, entry: Waiter<T>, timeout: number, what: string, bit: number): void {
    if (timeout > 0) {
      entry.timer = setTimeout(() => {
        if (this.dequeue(queue, entry)) entry.reject(codedError('EAGAIN', `Socket ${what} timed out after ${timeout} ms`))
      }, timeout)
    }
    queue.push(entry)
    if (queue.length === 1) {
      this._updateRef()
      this.arm(bit)
    }
  }

  /** @internal Takes a waiting call out (timeout or cancel); false if it was already served. */
  protected dequeue<T>(queue: WaitQueue<Waiter<T>>, entry: Waiter<T>): boolean {
    if (!queue.cancel(entry)) return false
    if (entry.timer) clearTimeout(entry.timer)
    this._updateRef()
    return true
  }

  /** @internal Asks for a wake-up when `bits` become true (at once if they are). */
  protected arm(bits: number): void {
    if (this.native.closed) return
    const ready = this.native.arm(bits)
    if (ready) queueMicrotask(() => this._wake(ready))
  }

  /** @internal Whether close() warns when it lingers (see `#lingerWarning`). */
  _warnOnLinger(on: boolean): void {
    this.#warnOnLinger = on
  }

  /** @internal Whether this socket's waits keep the process alive (see `Pool`). */
  _holdProcess(hold: boolean): void {
    this.#holdsProcess = hold
    this._updateRef()
  }

  /** @internal Keeps the process alive exactly while a call waits. */
  _updateRef(): void {
    const want =
      this.#holdsProcess &&
      !this.closed &&
      (this.waiting() || this.#peerWaiters.length > 0 || (this.#observer?.waiting ?? false))
    if (want !== this.#referenced) {
      this.#referenced = want
      if (want) ACTIVE.add(this)
      else ACTIVE.delete(this)
      this.native.setRef(want)
    }
  }

  /** @internal Called by the addon's waker with the bits that became true. */
  _wake(bits: number): void {
    if (bits & EVENTS && this.#observer) this.#observer._drain()
    if (bits & PEERS) this.#servePeerWaiters()
    if (bits & AUTH) this.#serveAuth()
    this.ready(bits)
  }
}

/** Settles a waiting call once. */
/**
 * The CURVE options as properties, on each prototype as the other options are (see
 * `defineOptionProperties`). `curveSecretKey` reads `null`: a secret key is never read back.
 */
export function defineCurveProperties(cls: { prototype: Socket }): void {
  for (const name of CURVE_OPTION_NAMES) {
    Object.defineProperty(cls.prototype, name, {
      get(this: Socket) {
        return this._curveOption(name)
      },
      set(this: Socket, value: unknown) {
        this._setCurveOption(name, value)
      },
    })
  }
}

export function serve<T>(entry: Waiter<T>, settle: () => void): void {
  entry.served = true
  if (entry.timer) clearTimeout(entry.timer)
  settle()
}
