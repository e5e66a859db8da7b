// What Push and Pull share: the native socket, endpoints, close, events, options, and how a
// socket waits (armed readiness bits and a reference that keeps Node alive only while a
// call waits).

import { closedError, codedError } from './errors'
import { describe } from './frames'
import { EVENTS, NativeSocket } from './native'
import { Observer, type Observed } from './observer'
import { nativeValues, resolveOptions, type HasOptions, type OptionValues } from './options'
import type { Waiter, WaitQueue } from './wait-queue'

// Sockets with a pending operation. The native waker only holds a socket weakly (so an
// idle socket nobody references can be collected and closed, as in zeromq.js); while a
// send, receive or event wait is pending, this set keeps it alive.
const ACTIVE = new Set<Socket>()

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

  /** @internal */
  constructor(kind: 'push' | 'pull', owner: 'Push' | 'Pull', options: unknown) {
    this.#opts = resolveOptions(owner, options)
    const self = new WeakRef(this)
    this.native = new NativeSocket(kind, nativeValues(this.#opts), (bits: number) => self.deref()?._wake(bits))
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
    await this.native.bind(address)
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
    this.native.connect(address)
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
    this.closing = this.native.close().then(() => {
      this.#observer?._drain()
      this._updateRef()
    })
    this._updateRef()
    return this.closing
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

  /** @internal Keeps the process alive exactly while a call waits. */
  _updateRef(): void {
    const want = !this.closed && (this.waiting() || (this.#observer?.waiting ?? false))
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
    this.ready(bits)
  }
}

/** Settles a waiting call once. */
export function serve<T>(entry: Waiter<T>, settle: () => void): void {
  entry.served = true
  if (entry.timer) clearTimeout(entry.timer)
  settle()
}
