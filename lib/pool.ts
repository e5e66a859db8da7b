// The offload pool's dispatcher: jobs out to worker processes over PUSH, results back over
// PULL, each job's reply to its caller. Load-aware (a job goes to the least busy worker, not
// the next in turn), with per-job timeouts, at-least-once retry of the jobs of a worker that
// died or went silent, and a bounded queue. The frames are in `offload-wire.ts`.

import { EventEmitter } from 'node:events'

import { curveOf, type CurveOptions } from './curve'
import { closedError, codedError, type CodedError } from './errors'
import { copyBytes, toFrames, type Frame, type MessageLike } from './frames'
import { checkCount, checkEndpoints, hello, parseReply } from './offload-wire'
import type { SocketEvent } from './observer'
import { Pull } from './pull'
import { Push } from './push'

/** How a `Pool` is set up. Both endpoints are bound by the pool unless `bind` is false. */
export interface PoolOptions {
  /** Where workers take jobs from (the pool's PUSH). */
  jobs: string
  /** Where workers send results to (the pool's PULL). */
  results: string
  /** Bind both endpoints (default true: the pool is the stable side workers find), or connect to them (a broker binds). */
  bind?: boolean
  /** A job's time limit in ms from `run()`, unless the call gives its own (default 0: none). */
  timeout?: number
  /** Tries per job when the worker running it dies or goes silent (default 3). */
  attempts?: number
  /** Jobs that may wait for a free worker; `run()` rejects with `EAGAIN` beyond (default 10 000). */
  maxQueue?: number
  /** Jobs at once for a worker that has not said its concurrency (default 1). */
  workerConcurrency?: number
  /** ZMTP heartbeat to each worker, ms (default 1 000): how a silent worker is noticed. */
  heartbeatInterval?: number
  /** No traffic from a worker for this long, ms, and it counts as dead (default 3 000). */
  heartbeatTimeout?: number
  /**
   * CURVE options for both of the pool's sockets (see `CurveOptions`): usually
   * `{ curveServer: true, curveSecretKey, curveAllow }`, the workers being its clients.
   */
  curve?: CurveOptions
}

/** What `run()` takes besides the job. */
export interface RunOptions {
  /** This job's time limit in ms from the call (default: the pool's `timeout`); `ETIMEDOUT` after. */
  timeout?: number
  /** Aborting it rejects the run with the signal's reason (a job already sent still runs on its worker). */
  signal?: AbortSignal
}

/** The pool's counters since it started. */
export interface PoolStats {
  /** Workers connected now (completed handshakes). */
  workers: number
  /** Jobs at workers now. */
  running: number
  /** Jobs waiting for a free worker. */
  queued: number
  completed: number
  /** Jobs whose worker reported an error, or that ran out of attempts. */
  failed: number
  /** Jobs sent again because their worker died or went silent. */
  retries: number
  /** Results for a job that already had one (a retried job that both workers finished). */
  duplicates: number
  /** Runs rejected by their timeout. */
  timeouts: number
  /** Results that came after their run timed out or was aborted. */
  late: number
  /** Messages on the results channel that were not a result of this pool (ignored). */
  malformed: number
  /** Busy share of the workers' capacity since the pool started, 0..1. */
  utilization: number
}

/** A worker as the pool sees it: the jobs it runs now, and how many it takes. */
interface WorkerState {
  peer: number
  address: string
  concurrency: number
  running: Set<Job>
  /** A send to it found its queue full: no more until one of its jobs completes. */
  full: boolean
  /** When it last got a job: ties go to the one idle longest. */
  lastAssigned: number
  joined: number
  busyMs: number
}

interface Job {
  id: string
  frames: Frame[]
  attempt: number
  resolve(frames: Buffer[]): void
  reject(err: unknown): void
  /** The caller has its answer (result, error, timeout or abort): what follows is late. */
  settled: boolean
  /** In the queue waiting for a worker (counted in `#waiting`). */
  queued: boolean
  worker: WorkerState | null
  started: number
  timer: NodeJS.Timeout | null
  cleanup: (() => void) | null
}

/** Ids of finished jobs kept to tell a duplicate result from a stray one. */
const REMEMBERED_IDS = 65_536

/**
 * Hands jobs to worker processes and gives each caller its job's reply.
 *
 * ```ts
 * const pool = new Pool({ jobs: "tcp://127.0.0.1:5555", results: "tcp://127.0.0.1:5556" })
 * await pool.waitForWorkers(4)
 * const [thumbnail] = await pool.run(["resize", image], { timeout: 5_000 })
 * ```
 *
 * Workers are `serve()` in other processes, or any ZeroMQ program speaking the frames of
 * the README's "Offloading work" section. Emits `worker` and `workerExit` ({ peer, address }),
 * `retry` ({ id, attempt }) and `duplicate` ({ id }). An idle pool does not keep the process
 * alive; a pending `run()` does.
 */
export class Pool extends EventEmitter {
  readonly #jobs: Push
  readonly #results: Pull
  readonly #ready: Promise<void>
  readonly #workers = new Map<number, WorkerState>()
  readonly #pending = new Map<string, Job>()
  readonly #queue: Job[] = []
  readonly #done = new Set<string>()
  readonly #timeout: number
  readonly #attempts: number
  readonly #maxQueue: number
  readonly #workerConcurrency: number
  readonly #prefix = `${process.pid.toString(36)}.${Math.random().toString(36).slice(2, 8)}.`
  readonly #untap: () => void
  #nextId = 0
  /** Live jobs in `#queue` (settled ones stay there until the pump meets them). */
  #waiting = 0
  /** Who waits for the next settled job (a non-forced close). */
  #onSettled: (() => void)[] = []
  #closing: Promise<void> | null = null
  /** The binds (or connects) are done: a job can go out within its run() call. */
  #isReady = false
  #receiving = false
  #capacityMs = 0
  #busyMs = 0
  readonly #counts = { completed: 0, failed: 0, retries: 0, duplicates: 0, timeouts: 0, late: 0, malformed: 0 }

  constructor(options: PoolOptions) {
    super()
    checkEndpoints('Pool', options)
    this.#timeout = checkCount('Pool', 'timeout', options.timeout ?? 0, 0)
    this.#attempts = checkCount('Pool', 'attempts', options.attempts ?? 3, 1)
    this.#maxQueue = checkCount('Pool', 'maxQueue', options.maxQueue ?? 10_000, 0)
    this.#workerConcurrency = checkCount('Pool', 'workerConcurrency', options.workerConcurrency ?? 1, 1)
    const heartbeatInterval = checkCount('Pool', 'heartbeatInterval', options.heartbeatInterval ?? 1_000, 0)
    const heartbeatTimeout = checkCount('Pool', 'heartbeatTimeout', options.heartbeatTimeout ?? 3_000, 0)
    // linger 0: what a closing pool still holds for workers is for callers it already rejected.
    const curve = curveOf('Pool', options.curve)
    this.#jobs = new Push({ ...curve, heartbeatInterval, heartbeatTimeout, linger: 0 })
    this.#results = new Pull({ ...curve, heartbeatInterval, heartbeatTimeout, linger: 0 })
    this.#results._holdProcess(false)
    this.#untap = this.#jobs.events._tap((ev) => this.#onEvent(ev))
    if (options.bind === false) {
      this.#ready = Promise.resolve().then(() => {
        this.#jobs.connect(options.jobs)
        this.#results.connect(options.results)
      })
    } else {
      this.#ready = Promise.all([this.#jobs.bind(options.jobs), this.#results.bind(options.results)]).then(() => {})
    }
    // Seen by run() and waitForWorkers(); unobserved it must not crash the process.
    this.#ready.then(
      () => (this.#isReady = true),
      () => {},
    )
    this.#receive()
  }

  /** Workers connected now. */
  get workers(): number {
    return this.#workers.size
  }

  /** Resolves once `count` workers are connected (see `Socket#waitForPeers`); rejects with the bind error if binding failed. */
  async waitForWorkers(count = 1, options: { timeout?: number; signal?: AbortSignal } = {}): Promise<void> {
    await this.#ready
    await this.#jobs.waitForPeers(count, options)
  }

  /**
   * Runs a job on the least busy worker and resolves with its reply frames. The job's
   * frames are copied by the call. Rejects with `EAGAIN` when `maxQueue` jobs wait already
   * (nothing is queued), `ETIMEDOUT` after the timeout, the signal's reason on abort, the
   * worker's error (its message, and its `code` if it sent one, else `ERR_JOB_FAILED`),
   * `ECONNRESET` when every attempt's worker died, `EBADF` once the pool is closing.
   */
  run(job: MessageLike | MessageLike[], options: RunOptions = {}): Promise<Buffer[]> {
    let frames: Frame[]
    try {
      // Copied now: the job may wait, and be sent again, long after the caller moved on.
      frames = toFrames(job).map((f) => (typeof f === 'string' ? f : copyBytes(f)))
      const timeout = options.timeout ?? this.#timeout
      checkCount('Pool', 'timeout', timeout, 0)
      if (this.#closing) throw closedError()
      if (options.signal?.aborted) throw options.signal.reason
      if (this.#waiting >= this.#maxQueue && !(this.#waiting === 0 && this.#idleWorker())) {
        throw codedError('EAGAIN', `Pool queue is full (${this.#maxQueue} jobs wait for a worker)`)
      }
      return new Promise<Buffer[]>((resolve, reject) => {
        const entry: Job = {
          id: this.#prefix + (this.#nextId++).toString(36),
          frames,
          attempt: 0,
          resolve,
          reject,
          settled: false,
          queued: false,
          worker: null,
          started: Date.now(),
          timer: null,
          cleanup: null,
        }
        if (timeout > 0) {
          entry.timer = setTimeout(() => {
            this.#counts.timeouts++
            this.#abandon(entry, codedError('ETIMEDOUT', `Job timed out after ${timeout} ms`))
          }, timeout)
        }
        const signal = options.signal
        if (signal) {
          const onAbort = () => this.#abandon(entry, signal.reason)
          signal.addEventListener('abort', onAbort, { once: true })
          entry.cleanup = () => signal.removeEventListener('abort', onAbort)
        }
        this.#pending.set(entry.id, entry)
        this.#enqueue(entry, false)
        this.#hold()
        if (this.#isReady) this.#pump()
        else {
          this.#ready.then(
            () => this.#pump(),
            (err: unknown) => this.#settle(entry, () => reject(err)),
          )
        }
      })
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /** The pool's counters (see `PoolStats`). */
  get stats(): PoolStats {
    const now = Date.now()
    let capacity = this.#capacityMs
    let busy = this.#busyMs
    let running = 0
    for (const w of this.#workers.values()) {
      capacity += (now - w.joined) * w.concurrency
      busy += w.busyMs
      for (const j of w.running) busy += now - j.started
      running += w.running.size
    }
    return {
      workers: this.#workers.size,
      running,
      queued: this.#waiting,
      ...this.#counts,
      utilization: capacity > 0 ? Math.min(1, busy / capacity) : 0,
    }
  }

  /**
   * Stops taking jobs (`run()` rejects with `EBADF`), waits for the queued and running
   * ones to settle, then closes the sockets. With `{ force: true }` it rejects them with
   * `EBADF` instead of waiting.
   */
  close(options: { force?: boolean } = {}): Promise<void> {
    if (!this.#closing) {
      this.#closing = (async () => {
        if (options.force) {
          for (const j of [...this.#pending.values()]) this.#settle(j, () => j.reject(closedError()))
        }
        while ([...this.#pending.values()].some((j) => !j.settled)) {
          await new Promise<void>((r) => this.#onSettled.push(r))
        }
        this.#untap()
        await Promise.all([this.#jobs.close(), this.#results.close()])
      })()
    }
    return this.#closing
  }

  /** Takes a job back from its caller: it will not be sent (again); a reply to it is late. */
  #abandon(job: Job, err: unknown): void {
    this.#settle(job, () => job.reject(err))
  }

  #settle(job: Job, answer: () => void): void {
    if (job.settled) return
    job.settled = true
    if (job.queued) {
      job.queued = false
      this.#waiting--
    }
    if (job.timer) clearTimeout(job.timer)
    job.cleanup?.()
    // A job still at a worker keeps its slot until its result comes or the worker goes:
    // the worker is busy with it whatever the caller decided.
    if (!job.worker) this.#pending.delete(job.id)
    answer()
    this.#hold()
    for (const wake of this.#onSettled.splice(0)) wake()
  }

  /** Puts a job in line: at the back, or at the front (a retry has waited longest). */
  #enqueue(job: Job, front: boolean): void {
    job.queued = true
    this.#waiting++
    if (front) this.#queue.unshift(job)
    else this.#queue.push(job)
  }

  /** The results socket keeps the process alive exactly while a caller waits. */
  #hold(): void {
    let waiting = false
    for (const j of this.#pending.values()) {
      if (!j.settled) {
        waiting = true
        break
      }
    }
    this.#results._holdProcess(waiting)
  }

  #idleWorker(): WorkerState | null {
    let best: WorkerState | null = null
    for (const w of this.#workers.values()) {
      if (w.full || w.running.size >= w.concurrency) continue
      const load = w.running.size / w.concurrency
      const bestLoad = best ? best.running.size / best.concurrency : Infinity
      if (load < bestLoad || (load === bestLoad && best && w.lastAssigned < best.lastAssigned)) best = w
    }
    return best
  }

  /** Sends queued jobs while a worker has room. */
  #pump(): void {
    while (this.#queue.length) {
      const job = this.#queue[0]!
      if (job.settled) {
        this.#queue.shift()
        continue
      }
      const w = this.#idleWorker()
      if (!w) return
      try {
        this.#jobs._sendTo(w.peer, [job.id, ...job.frames])
      } catch (err) {
        const code = (err as CodedError).code
        if (code === 'EAGAIN') w.full = true
        else if (code === 'EHOSTUNREACH') this.#workerGone(w.peer)
        else if (code === 'EBADF') return
        else throw err
        continue
      }
      this.#queue.shift()
      job.queued = false
      this.#waiting--
      job.attempt++
      job.worker = w
      job.started = Date.now()
      w.running.add(job)
      w.lastAssigned = performance.now()
    }
  }

  #onEvent(ev: SocketEvent): void {
    if (ev.peer === undefined) return
    if (ev.type === 'handshake') {
      const w: WorkerState = {
        peer: ev.peer,
        address: ev.address,
        concurrency: this.#workerConcurrency,
        running: new Set(),
        full: false,
        lastAssigned: 0,
        joined: Date.now(),
        busyMs: 0,
      }
      this.#workers.set(ev.peer, w)
      try {
        this.#jobs._sendTo(ev.peer, hello(ev.peer))
      } catch {
        // Gone already: its disconnect follows.
      }
      this.emit('worker', { peer: ev.peer, address: ev.address })
      this.#pump()
    } else if (ev.type === 'disconnect') {
      this.#workerGone(ev.peer)
    }
  }

  /** A worker died or went silent: its unfinished jobs go to the others (at least once). */
  #workerGone(peer: number): void {
    const w = this.#workers.get(peer)
    if (!w) return
    this.#workers.delete(peer)
    const now = Date.now()
    this.#capacityMs += (now - w.joined) * w.concurrency
    this.#busyMs += w.busyMs
    const retry: Job[] = []
    for (const job of w.running) {
      job.worker = null
      if (job.settled) {
        this.#pending.delete(job.id)
      } else if (job.attempt >= this.#attempts) {
        this.#counts.failed++
        this.#settle(job, () =>
          job.reject(codedError('ECONNRESET', `Job lost: its worker went away on each of ${job.attempt} attempt(s) (last ${w.address})`)),
        )
      } else {
        this.#counts.retries++
        retry.push(job)
        this.emit('retry', { id: job.id, attempt: job.attempt + 1 })
      }
    }
    for (const job of retry.reverse()) this.#enqueue(job, true)
    this.emit('workerExit', { peer, address: w.address })
    this.#pump()
  }

  /** Reads results for as long as the pool lives; idle, it does not hold the process. */
  async #receive(): Promise<void> {
    if (this.#receiving) return
    this.#receiving = true
    try {
      await this.#ready
    } catch {
      return
    }
    for (;;) {
      let frames: Buffer[]
      try {
        frames = await this.#results.receive()
      } catch {
        return // closed
      }
      this.#onReply(frames)
    }
  }

  #onReply(frames: Buffer[]): void {
    const reply = parseReply(frames)
    if (reply.kind === 'malformed') {
      this.#counts.malformed++
      return
    }
    if (reply.kind === 'hello') {
      const w = this.#workers.get(reply.peer)
      if (w) {
        w.concurrency = Math.max(1, Math.min(reply.concurrency, 65_536))
        this.#pump()
      }
      return
    }
    const job = this.#pending.get(reply.id)
    if (!job) {
      if (this.#done.has(reply.id)) {
        this.#counts.duplicates++
        this.emit('duplicate', { id: reply.id })
      } else {
        this.#counts.malformed++
      }
      return
    }
    this.#pending.delete(job.id)
    this.#remember(job.id)
    const w = job.worker
    if (w) {
      w.running.delete(job)
      w.full = false
      w.busyMs += Date.now() - job.started
      job.worker = null
    }
    if (job.settled) {
      this.#counts.late++
    } else if (reply.kind === 'ok') {
      this.#counts.completed++
      this.#settle(job, () => job.resolve(reply.frames))
    } else {
      this.#counts.failed++
      this.#settle(job, () => job.reject(codedError(reply.code ?? 'ERR_JOB_FAILED', reply.message)))
    }
    this.#pump()
  }

  #remember(id: string): void {
    this.#done.add(id)
    if (this.#done.size > REMEMBERED_IDS) {
      const oldest = this.#done.values().next().value
      if (oldest !== undefined) this.#done.delete(oldest)
    }
  }
}

