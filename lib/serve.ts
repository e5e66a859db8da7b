// The offload pool's worker side: take jobs from the jobs channel, run a handler on up to
// `concurrency` of them at once, and send each result back with its job's id. The frames are
// in `offload-wire.ts`; a plain PUSH ventilator (no pool) can feed it too.

import { curveOf, type CurveOptions } from './curve'
import { describe, toFrames, type Frame, type MessageLike } from './frames'
import { ERROR, OK, checkCount, checkEndpoints, helloFrom, helloReply } from './offload-wire'
import { Pull } from './pull'
import { Push } from './push'

/** A job handler: the job's payload frames in, the reply out (a frame, frames, or nothing). */
export type JobHandler = (frames: Buffer[]) => unknown

/** How `serve()` connects and works. */
export interface ServeOptions {
  /** The pool's jobs endpoint (connected to, unless `bind`). */
  jobs: string
  /** The pool's results endpoint (connected to, unless `bind`). */
  results: string
  /** Jobs run at once (default 1); told to the pool, which hands no more than that. */
  concurrency?: number
  /** Bind both endpoints instead of connecting (default false: the pool binds). */
  bind?: boolean
  /**
   * CURVE options for both of the worker's sockets (see `CurveOptions`): usually
   * `{ curveServerKey, curveSecretKey }`, the pool being the server.
   */
  curve?: CurveOptions
}

/** A running worker: its counters, and how to stop it. */
export class Worker {
  readonly #jobs: Pull
  readonly #results: Push
  readonly #concurrency: number
  readonly #handler: JobHandler
  #running = 0
  #slotFree: (() => void) | null = null
  #stopping = false
  #idle: (() => void) | null = null
  /** Settles when the worker stopped: after `close()`, or with the error that stopped it. */
  readonly done: Promise<void>
  /** Jobs answered with a result, and with an error. */
  readonly stats = { completed: 0, failed: 0 }

  /** @internal Made by `serve()`. */
  constructor(handler: JobHandler, options: ServeOptions) {
    if (typeof handler !== 'function') throw new TypeError(`serve() takes a handler function, got ${describe(handler)}`)
    checkEndpoints('serve()', options)
    const concurrency = checkCount('serve()', 'concurrency', options.concurrency ?? 1, 1)
    this.#handler = handler
    this.#concurrency = concurrency
    // Room for what the worker runs, not more: jobs a plain ventilator round-robins here
    // wait in its queue (and move on if this worker dies), not in ours.
    const curve = curveOf('serve()', options.curve)
    this.#jobs = new Pull({ ...curve, receiveHighWaterMark: concurrency })
    this.#results = new Push(curve)
    this.done = this.#run(options)
  }

  async #run(options: ServeOptions): Promise<void> {
    if (options.bind) {
      await Promise.all([this.#jobs.bind(options.jobs), this.#results.bind(options.results)])
    } else {
      this.#jobs.connect(options.jobs)
      this.#results.connect(options.results)
    }
    while (!this.#stopping) {
      if (this.#running >= this.#concurrency) {
        await new Promise<void>((r) => (this.#slotFree = r))
        continue
      }
      let frames: Buffer[]
      try {
        frames = await this.#jobs.receive()
      } catch (err) {
        if (this.#stopping) break
        throw err
      }
      const peer = helloFrom(frames)
      if (peer !== null) {
        await this.#results.send(helloReply(peer, this.#concurrency))
        continue
      }
      if (frames.length < 1 || frames[0]!.length === 0) continue
      this.#running++
      void this.#work(frames[0]!, frames.slice(1))
    }
    if (this.#running > 0) await new Promise<void>((r) => (this.#idle = r))
  }

  async #work(id: Buffer, payload: Buffer[]): Promise<void> {
    let answer: Frame[]
    try {
      const reply = await this.#handler(payload)
      answer = [id, OK, ...(reply === undefined || reply === null ? [] : toFrames(reply as MessageLike | MessageLike[]))]
      this.stats.completed++
    } catch (err) {
      const e = err as { message?: unknown; code?: unknown }
      const message = typeof e?.message === 'string' ? e.message : String(err)
      answer = [id, ERROR, message, ...(typeof e?.code === 'string' ? [e.code] : [])]
      this.stats.failed++
    }
    try {
      await this.#results.send(answer)
    } catch {
      // Closed while the job ran: the pool sends the job to another worker.
    }
    this.#running--
    this.#slotFree?.()
    this.#slotFree = null
    if (this.#running === 0) this.#idle?.()
  }

  /**
   * Stops taking jobs, lets the running ones finish and their results go out (within the
   * results socket's linger), then closes. Jobs that were queued here and not started go
   * back to the pool when the connection closes.
   */
  async close(): Promise<void> {
    if (!this.#stopping) {
      this.#stopping = true
      await this.#jobs.close()
      this.#slotFree?.()
    }
    await this.done.catch(() => {})
    await this.#results.close()
  }
}

/**
 * Serves a pool: connects to its jobs and results endpoints and answers each job with what
 * `handler` returns (or the error it throws: its message and `code` reach the caller).
 *
 * ```ts
 * const worker = serve(async ([image]) => resize(image), { jobs, results, concurrency: 2 })
 * process.once("SIGTERM", () => worker.close())
 * ```
 */
export function serve(handler: JobHandler, options: ServeOptions): Worker {
  return new Worker(handler, options)
}

