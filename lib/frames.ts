// What a message is made of, and the one place a MessageLike becomes a frame the addon
// accepts (a string or a Uint8Array view).

/**
 * One frame of a message: a `string` (sent as UTF-8), a `Buffer`, any TypedArray or
 * `DataView` (its bytes), an `ArrayBuffer` or `SharedArrayBuffer` (its bytes), a `number`
 * (sent as decimal text, as zeromq.js does) or `null` (an empty frame). An array of these
 * is one multipart message, delivered atomically.
 */
export type MessageLike = string | Buffer | ArrayBufferView | ArrayBuffer | SharedArrayBuffer | number | null

/** A frame as the addon takes it. */
export type Frame = string | Uint8Array

const EMPTY = new Uint8Array(0)
const ACCEPTED = 'a string, Buffer, TypedArray, DataView, ArrayBuffer, SharedArrayBuffer, number or null'

/** Names what a value is, for error messages. */
export function describe(value: unknown): string {
  if (value === undefined) return 'undefined'
  if (value === null) return 'null'
  if (typeof value === 'number') return `a number (${value})`
  if (typeof value === 'string') return 'a string'
  if (typeof value === 'symbol') return 'a symbol'
  if (typeof value === 'function') return 'a function'
  if (typeof value === 'bigint') return 'a BigInt'
  if (typeof value === 'boolean') return 'a boolean'
  const name = (value as { constructor?: { name?: string } }).constructor?.name
  return name && name !== 'Object' ? `an instance of ${name}` : 'a plain object'
}

/** One MessageLike as a frame; a `TypeError` naming what was given otherwise. */
export function toFrame(value: unknown): Frame {
  if (typeof value === 'string') return value
  if (value instanceof Uint8Array) return value
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
  if (value instanceof ArrayBuffer) return new Uint8Array(value)
  if (typeof SharedArrayBuffer === 'function' && value instanceof SharedArrayBuffer) return new Uint8Array(value)
  // Buffers from another realm (vm contexts, workers' transferred objects).
  const tag = Object.prototype.toString.call(value)
  if (tag === '[object ArrayBuffer]' || tag === '[object SharedArrayBuffer]') {
    return new Uint8Array(value as ArrayBuffer)
  }
  if (typeof value === 'number') return String(value)
  if (value === null) return EMPTY
  const hint = typeof value === 'object' ? ' (to send an object, serialize it first, e.g. JSON.stringify(obj))' : ''
  throw new TypeError(`Invalid message frame: got ${describe(value)}; expected ${ACCEPTED}${hint}`)
}

/** A message (one MessageLike, or an array of them) as frames. */
export function toFrames(msg: unknown): Frame[] {
  if (Array.isArray(msg)) {
    if (msg.length === 0) {
      throw new TypeError(`Invalid message: an empty array has no frames; expected ${ACCEPTED}, or a non-empty array of them`)
    }
    return msg.map(toFrame)
  }
  return [toFrame(msg)]
}

/** A copy of a view's bytes (Buffer#slice would be a view, not a copy). */
export const copyBytes = (view: Uint8Array): Uint8Array => Uint8Array.prototype.slice.call(view)
