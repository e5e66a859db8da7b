// The offload pool's frames, written once: what a dispatcher (`Pool`) sends its workers on
// the jobs channel and what they answer on the results channel; and the checks of the
// options both sides take (the two endpoints, counts). Plain PUSH/PULL multipart
// messages, so a worker in any language with a ZeroMQ binding can serve a pool:
//
//   job      pool → worker   [id, ...payload]                      id: non-empty, opaque
//   result   worker → pool   [id, "ok", ...reply]
//                            [id, "error", message, code?]
//   hello    pool → worker   ["", "zeropipe/hello", peer]          sent when a worker joins
//            worker → pool   ["", "zeropipe/hello", peer, concurrency]
//
// A worker that ignores the hello (treats it as a job, or drops it) still works: the pool
// then assumes its `workerConcurrency` for it. An empty first frame is never a job id.

import { describe, type Frame } from './frames'

/** The control verb of the hello exchange. */
export const HELLO = 'zeropipe/hello'
/** The status frame of a successful result. */
export const OK = 'ok'
/** The status frame of a failed job: the message follows, then an optional error code. */
export const ERROR = 'error'

/** What a worker learns from a pool's hello: the peer id to quote back, or null if it is not one. */
export function helloFrom(frames: Buffer[]): string | null {
  if (frames.length !== 3 || frames[0]!.length !== 0 || frames[1]!.toString() !== HELLO) return null
  return frames[2]!.toString()
}

/** A pool's hello to the worker it knows as `peer`. */
export function hello(peer: number): Frame[] {
  return ['', HELLO, String(peer)]
}

/** A worker's answer to a hello. */
export function helloReply(peer: string, concurrency: number): Frame[] {
  return ['', HELLO, peer, String(concurrency)]
}

/** A worker's answer, as the pool reads it off the results channel. */
export type Reply =
  | { kind: 'hello'; peer: number; concurrency: number }
  | { kind: 'ok'; id: string; frames: Buffer[] }
  | { kind: 'error'; id: string; message: string; code: string | undefined }
  | { kind: 'malformed'; why: string }

/** Parses a results-channel message; anything else is `malformed`, never an exception. */
export function parseReply(frames: Buffer[]): Reply {
  if (frames.length < 2) return { kind: 'malformed', why: `${frames.length} frame(s), at least 2 expected` }
  const id = frames[0]!.toString()
  const status = frames[1]!.toString()
  if (id === '') {
    const peer = Number(frames[2]?.toString())
    const concurrency = Number(frames[3]?.toString())
    if (status !== HELLO || frames.length !== 4 || !Number.isSafeInteger(peer) || !Number.isSafeInteger(concurrency)) {
      return { kind: 'malformed', why: 'a control message that is not a hello reply' }
    }
    return { kind: 'hello', peer, concurrency }
  }
  if (status === OK) return { kind: 'ok', id, frames: frames.slice(2) }
  if (status === ERROR) {
    return { kind: 'error', id, message: frames[2]?.toString() || 'the job failed', code: frames[3]?.toString() || undefined }
  }
  return { kind: 'malformed', why: `status ${JSON.stringify(status.slice(0, 32))} is neither "ok" nor "error"` }
}

/** `options` is an object naming the two endpoints; a `TypeError` for `owner` otherwise. */
export function checkEndpoints(owner: string, options: unknown): void {
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`${owner} takes options such as { jobs, results }, got ${describe(options)}`)
  }
  for (const key of ['jobs', 'results'] as const) {
    const value = (options as Record<string, unknown>)[key]
    if (typeof value !== 'string') throw new TypeError(`${owner} option "${key}" must be an endpoint string, got ${describe(value)}`)
  }
}

/** `value` as an integer count of at least `min`; a `TypeError` naming `owner`'s option otherwise. */
export function checkCount(owner: string, name: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new TypeError(`${owner} option "${name}" must be an integer ≥ ${min}, got ${describe(value)}`)
  }
  return value
}
