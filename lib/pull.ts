// The PULL socket: receive batches read out of slabs message by message, waiting receives
// served in call order, and `for await` over the socket.

import { ReceiveBatches } from './batch'
import { closedError, codedError } from './errors'
import type { PullOptionProperties, PullOptions } from './generated'
import { READABLE } from './native'
import { defineOptionProperties } from './options'
import { defineCurveProperties, serve, Socket } from './socket'
import { WaitQueue, type Waiter } from './wait-queue'

/** A receive that its caller can cancel without losing a message (a `JobStream` does). */
export interface Cancellable<T> {
  promise: Promise<T>
  /** Takes the receive back if it is still waiting; false if it was already served. */
  cancel(): boolean
}

const settled = <T>(promise: Promise<T>): Cancellable<T> => ({ promise, cancel: () => false })

/** A ZeroMQ PULL socket: fair-queues messages from its peers. */
export class Pull extends Socket implements AsyncIterable<Buffer[]> {
  readonly #batches: ReceiveBatches
  readonly #queue = new WaitQueue<Waiter<Buffer[]>>()

  constructor(options?: PullOptions) {
    super('pull', 'Pull', options)
    this.#batches = new ReceiveBatches(this.native)
  }

  /** A message can be received now (ZMQ_EVENTS & ZMQ_POLLIN). */
  get readable(): boolean {
    return !this.closed && (this.#batches.buffered > 0 || this.native.readable)
  }

  /** A message that is already here, unless earlier receives wait; else undefined. */
  #takeNow(): Buffer[] | undefined {
    return this.#queue.length === 0 && this.closing === null ? this.#batches.next() : undefined
  }

  /**
   * Resolves with the next message, one Buffer per frame. Rejects with `EAGAIN` after
   * `receiveTimeout`, `EBADF` once closed. Small messages received together share memory
   * (a SharedArrayBuffer slab, as Node's own socket reads do): keeping one keeps its slab,
   * `Buffer.from(frame)` copies it out; transferring one to a worker is refused for that
   * call, sharing it (postMessage without a transfer list) works.
   */
  receive(): Promise<Buffer[]> {
    let m: Buffer[] | undefined
    try {
      m = this.#takeNow()
    } catch (err) {
      return Promise.reject(err)
    }
    return m !== undefined ? Promise.resolve(m) : this._receive().promise
  }

  /** @internal A receive a JobStream can cancel without losing a message. */
  _receive(): Cancellable<Buffer[]> {
    if (this.closed) return settled(Promise.reject(closedError()))
    if (this.#queue.length === 0) {
      let m: Buffer[] | undefined
      try {
        m = this.#batches.next()
      } catch (err) {
        return settled(Promise.reject(err))
      }
      if (m !== undefined) return settled(Promise.resolve(m))
    }
    // Also behind earlier receives still waiting: 0 means never wait.
    const timeout = this._options().receiveTimeout
    if (timeout === 0) return settled(Promise.reject(codedError('EAGAIN', 'No message available (receiveTimeout 0)')))
    let entry!: Waiter<Buffer[]>
    const promise = new Promise<Buffer[]>((resolve, reject) => {
      entry = { resolve, reject, timer: null, cancelled: false, served: false }
      this.enqueue(this.#queue, entry, timeout, 'receive', READABLE)
    })
    return { promise, cancel: () => this.dequeue(this.#queue, entry) }
  }

  /** `for await (const [msg] of pull)`; ends cleanly when the socket is closed. */
  [Symbol.asyncIterator](): AsyncIterator<Buffer[], undefined> {
    return {
      next: () => {
        // A message already here resolves the iteration directly: one promise, no chain.
        let m: Buffer[] | undefined
        try {
          m = this.#takeNow()
        } catch (err) {
          return Promise.reject(err)
        }
        if (m !== undefined) return Promise.resolve({ value: m, done: false })
        return this._receive().promise.then(
          (value): IteratorResult<Buffer[], undefined> => ({ value, done: false }),
          (err: { code?: string }): IteratorResult<Buffer[], undefined> => {
            if (this.closed && err.code === 'EBADF') return { value: undefined, done: true }
            throw err
          },
        )
      },
      return: () => Promise.resolve({ value: undefined, done: true }),
      [Symbol.asyncIterator]() {
        return this
      },
    } as AsyncIterator<Buffer[], undefined>
  }

  /** @internal */
  protected beforeClose(err: Error): void {
    for (const r of this.#queue.drain()) serve(r, () => r.reject(err))
    this.#batches.drop()
  }

  /** @internal */
  protected waiting(): boolean {
    return this.#queue.length > 0
  }

  /** @internal */
  protected ready(bits: number): void {
    if (!(bits & READABLE)) return
    const q = this.#queue
    for (let w = q.peek(); w !== undefined; w = q.peek()) {
      let m: Buffer[] | undefined
      try {
        m = this.#batches.next()
      } catch (err) {
        q.shift()
        serve(w, () => w.reject(err))
        continue
      }
      if (m === undefined) break
      q.shift()
      serve(w, () => w.resolve(m))
    }
    if (q.length) this.arm(READABLE)
    this._updateRef()
  }
}

// The options as properties, typed and documented from the engine's table.
// eslint-disable-next-line @typescript-eslint/no-empty-interface
export interface Pull extends PullOptionProperties {}
defineOptionProperties(Pull, 'Pull')
defineCurveProperties(Pull)
