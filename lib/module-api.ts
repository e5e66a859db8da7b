// The article's API: push(job) and pull() over two module-level sockets, a PUSH bound and a
// PULL connected to one endpoint, made on first use.

import { codedError } from './errors'
import { describe, toFrames, type MessageLike } from './frames'
import type { AllSocketOptions } from './generated'
import { optionsFor, resolveOptions } from './options'
import { Pull } from './pull'
import { Push } from './push'

/** `tcp://127.0.0.1:7777`: the module API's endpoint unless `ZEROPIPE_ENDPOINT` or `configure()` says otherwise. */
export const DEFAULT_ENDPOINT: string = 'tcp://127.0.0.1:7777'

let config: { endpoint: string; options: AllSocketOptions } = {
  endpoint: process.env.ZEROPIPE_ENDPOINT || DEFAULT_ENDPOINT,
  options: {},
}
let pushSocket: Push | null = null
let pushReady: Promise<void> | null = null
let pullSocket: Pull | null = null
const streams = new Set<JobStream>()

/**
 * Sets the module sockets' endpoint and options. Must be called before the first `push()`
 * or `pull()` (or after `close()`); each socket takes the options of its type.
 */
export function configure(settings: { endpoint?: string } & AllSocketOptions): void {
  if (settings === null || typeof settings !== 'object') {
    throw new TypeError(`configure() takes an object such as { endpoint: "tcp://127.0.0.1:7777" }, got ${describe(settings)}`)
  }
  if (pushSocket || pullSocket) {
    throw codedError('EINVAL', 'configure() must be called before the first push() or pull(), or after close()')
  }
  const { endpoint, ...options } = settings
  if (endpoint !== undefined && typeof endpoint !== 'string') {
    throw new TypeError(`Address must be a string, got ${describe(endpoint)}`)
  }
  resolveOptions('configure()', options)
  config = { endpoint: endpoint === undefined ? config.endpoint : endpoint, options }
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
  let frames
  try {
    frames = toFrames(job)
  } catch (err) {
    return Promise.reject(err)
  }
  if (!pushSocket) {
    const sock = new Push(optionsFor('Push', config.options))
    pushSocket = sock
    pushReady = sock.bind(config.endpoint).catch((err: unknown) => {
      // A failed bind leaves no half-made socket behind: the next push() tries again.
      if (pushSocket === sock) pushSocket = null
      void sock.close()
      throw err
    })
  }
  const sock = pushSocket
  return pushReady!.then(() => sock.send(frames.length === 1 ? frames[0]! : frames))
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

  /** @internal Made by `pull()`. */
  constructor(handler?: Handler) {
    if (handler !== undefined && typeof handler !== 'function') {
      throw new TypeError(`pull() takes an optional handler function, got ${describe(handler)}`)
    }
    this.#handler = handler || defaultHandler
    if (!pullSocket) {
      const sock = new Pull(optionsFor('Pull', config.options))
      try {
        sock.connect(config.endpoint)
      } catch (err) {
        // A failed connect leaves no half-made socket behind (it would block configure()).
        void sock.close()
        throw err
      }
      pullSocket = sock
    }
    this.#socket = pullSocket
    streams.add(this)
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
    streams.delete(this)
    // The last stream gone: close the module's PULL so the pusher stops routing jobs to a
    // socket nobody reads.
    if (streams.size === 0 && pullSocket === this.#socket) {
      pullSocket = null
      void this.#socket.close()
    }
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
  return new JobStream(handler)
}

/** Flushes (within linger) and closes the module's sockets so the process can exit; push()/pull() start afresh afterwards. */
export async function close(): Promise<void> {
  const work: Promise<void>[] = []
  if (pushSocket) {
    const sock = pushSocket
    const ready = pushReady!
    pushSocket = null
    pushReady = null
    work.push(ready.then(() => sock.close(), () => sock.close()))
  }
  for (const s of [...streams]) s.close()
  if (pullSocket) {
    work.push(pullSocket.close())
    pullSocket = null
  }
  await Promise.all(work)
}
