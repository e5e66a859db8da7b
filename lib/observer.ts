// zeromq.js's socket event observer: `sock.events.on("handshake", ({ address }) => …)`.

import { codedError, type CodedError } from './errors'
import type { SocketEventMap } from './generated'
import { MAX_QUEUED_EVENTS } from './native'

/**
 * The event types `on()` and `off()` take: those of `SocketEventMap` (which says what each
 * means), and `'handshake:error'` for every handshake failure.
 */
export type EventType = keyof SocketEventMap | 'handshake:error'

/** A socket event. `error` is set for error events, `interval` for `connect:retry`. */
export interface SocketEvent {
  type: keyof SocketEventMap
  /** The endpoint concerned. */
  address: string
  /** For `connect:retry`: the delay before the next attempt, ms. */
  interval?: number
  /** For error events (and a `disconnect` that an error caused): what went wrong, with its errno name as `code`. */
  error?: CodedError
  /** For `handshake` and the `disconnect` that ends it over tcp/ipc: the peer's id, unique in the process. */
  peer?: number
  /**
   * For `handshake` over CURVE: the peer's long-term public key (Z85). On a server, the
   * client's, proven by its handshake; on a client, the server key it was given.
   */
  publicKey?: string
  /** For `handshake` on a CURVE server: the user id `authenticate` gave ("" without one). */
  userId?: string
  /** For `handshake:error:auth`: the ZAP status, 300, 400 or 500. */
  status?: number
}

/** What the observer needs from its socket. */
export interface Observed {
  /** @internal */
  _takeEvents(max: number): {
    type: string
    address: string
    interval?: number | null
    errorCode?: string | null
    errorMessage?: string | null
    peer?: number | null
    publicKey?: string | null
    userId?: string | null
    status?: number | null
  }[]
  /** @internal */
  _armEvents(): void
  /** @internal */
  _updateRef(): void
}

type Listener = (event: SocketEvent) => void

const closedObserver = () => codedError('EBADF', 'Observer is closed')

/**
 * A socket's events, with zeromq.js's names. Listen with `on(type, fn)`; `'handshake:error'`
 * hears every `handshake:error:*`. As in zeromq.js, a socket with a listener (or a pending
 * `receive()`) keeps the process alive until it closes or its last listener is removed with
 * `off()`: `await new Promise(r => sock.events.on("handshake", r))` waits instead of letting
 * the process exit mid-wait.
 */
export class Observer implements AsyncIterable<SocketEvent> {
  readonly #socket: Observed
  readonly #listeners = new Map<string, Set<Listener>>()
  /** Listeners of the library's own (a pool watching its workers come and go): they hear
   * every event but, unlike a user's listener, do not keep the process alive. */
  readonly #taps = new Set<Listener>()
  readonly #queue: SocketEvent[] = []
  #waiters: { resolve: (ev: SocketEvent) => void; reject: (err: unknown) => void }[] = []
  #closed = false

  /** @internal */
  constructor(socket: Observed) {
    this.#socket = socket
  }

  /** True once the socket ended (after its `end` event) or `close()` was called. */
  get closed(): boolean {
    return this.#closed
  }

  /** @internal Whether the observer keeps the process alive. */
  get waiting(): boolean {
    return !this.#closed && (this.#waiters.length > 0 || this.#listenerCount() > 0)
  }

  #listenerCount(): number {
    let n = 0
    for (const set of this.#listeners.values()) n += set.size
    return n
  }

  /** Calls `listener` for every event of `type`. */
  on<K extends EventType>(type: K, listener: Listener): this {
    if (typeof listener !== 'function') throw new TypeError('Event listener must be a function')
    let set = this.#listeners.get(type)
    if (!set) this.#listeners.set(type, (set = new Set()))
    set.add(listener)
    this.#socket._updateRef()
    this.#socket._armEvents()
    return this
  }

  /** Stops calling `listener` for `type`. */
  off<K extends EventType>(type: K, listener: Listener): this {
    const set = this.#listeners.get(type)
    set?.delete(listener)
    if (set?.size === 0) this.#listeners.delete(type)
    this.#socket._updateRef()
    return this
  }

  /** @internal Hears every event without keeping the process alive; returns the way to stop. */
  _tap(listener: Listener): () => void {
    this.#taps.add(listener)
    this.#socket._armEvents()
    return () => this.#taps.delete(listener)
  }

  /** Resolves with the next event (zeromq.js `Observer#receive`). */
  receive(): Promise<SocketEvent> {
    if (this.#queue.length) return Promise.resolve(this.#queue.shift()!)
    if (this.#closed) return Promise.reject(closedObserver())
    return new Promise((resolve, reject) => {
      this.#waiters.push({ resolve, reject })
      this.#socket._updateRef()
      this.#socket._armEvents()
    })
  }

  /** Stops observing: pending `receive()` calls reject with `EBADF`. */
  close(): void {
    this.#closed = true
    for (const w of this.#waiters.splice(0)) w.reject(closedObserver())
    this.#socket._updateRef()
  }

  async *[Symbol.asyncIterator](): AsyncIterator<SocketEvent> {
    for (;;) {
      let ev: SocketEvent
      try {
        ev = await this.receive()
      } catch (err) {
        if (this.#closed) return
        throw err
      }
      yield ev
    }
  }

  /** @internal Delivers what the socket queued. */
  _drain(): void {
    const batch = this.#socket._takeEvents(256)
    for (const e of batch) {
      const ev: SocketEvent = { type: e.type as SocketEvent['type'], address: e.address }
      if (e.interval !== undefined && e.interval !== null) ev.interval = e.interval
      if (e.errorCode) ev.error = codedError(e.errorCode, e.errorMessage || e.errorCode)
      if (e.peer !== undefined && e.peer !== null) ev.peer = e.peer
      if (e.publicKey !== undefined && e.publicKey !== null) ev.publicKey = e.publicKey
      if (e.userId !== undefined && e.userId !== null) ev.userId = e.userId
      if (e.status !== undefined && e.status !== null) ev.status = e.status
      for (const tap of this.#taps) tap(ev)
      this.#dispatch(ev.type, ev)
      // `handshake:error` listeners hear every handshake failure, whatever its subtype.
      if (ev.type.startsWith('handshake:error:')) this.#dispatch('handshake:error', ev)
      if (this.#waiters.length) this.#waiters.shift()!.resolve(ev)
      else if (!this.#listeners.size && !this.#taps.size) this.#queue.push(ev)
      if (this.#queue.length > MAX_QUEUED_EVENTS) this.#queue.shift()
    }
    if (batch.some((e) => e.type === 'end')) this.close()
    this.#socket._updateRef()
    if (!this.#closed && (this.#listeners.size || this.#taps.size || this.#waiters.length)) this.#socket._armEvents()
  }

  #dispatch(type: string, ev: SocketEvent): void {
    const set = this.#listeners.get(type)
    if (!set) return
    for (const fn of set) {
      try {
        fn(ev)
      } catch (err) {
        // A throwing listener must not stop event delivery to the others.
        process.nextTick(() => {
          throw err
        })
      }
    }
  }
}
