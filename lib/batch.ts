// The JS side of the two batch formats between JavaScript and the addon. The formats are
// specified in src/batch.rs (the Rust side of this module); the constants come from there.

import { copyBytes, type Frame } from './frames'
import { binding, type NativeSocket } from './native'

const { STAGE_META_HEAD, OWN_BUFFER, RECEIVE_BATCH_MESSAGES, RECEIVE_SLAB_BYTES } = binding

/** A slab with less room left than this is retired rather than written in small pieces. */
const SLAB_MIN_ROOM = 1024

/** The stage's description words: committed words, committed bytes, region generation. */
const COMMITTED_WORDS = 0
const COMMITTED_BYTES = 1
const GENERATION = 2

/**
 * A PUSH's send stage: accepted messages written into memory the addon owns and committed
 * one by one, so that they are delivered even if this thread ends before the next flush.
 * Frames are copied in (the one copy a sent message costs), so a buffer may be reused
 * once send() returned.
 */
export class SendStage {
  readonly #native: NativeSocket
  #region: Buffer | null = null
  #meta: Int32Array | null = null
  #generation = 0
  #bytes = 0
  #words = STAGE_META_HEAD
  /** Messages staged since the last flush. */
  count = 0

  constructor(native: NativeSocket) {
    this.#native = native
  }

  #view(): void {
    const region = this.#native.stageRegion()
    this.#region = Buffer.from(region.buffer, region.byteOffset, region.byteLength)
    this.#generation = this.#meta![GENERATION]!
  }

  /**
   * The bytes `frames` need in the stage (strings at their UTF-8 worst case), or -1 when
   * the message has more frames than the stage can describe.
   */
  need(frames: Frame[]): number {
    if (this.#meta === null) {
      this.#meta = this.#native.stageMeta()
      this.#view()
    }
    const n = frames.length
    if (n + 1 > this.#meta.length - STAGE_META_HEAD) return -1
    let need = 0
    for (let i = 0; i < n; i++) {
      const f = frames[i]!
      need += typeof f === 'string' ? f.length * 3 : f.byteLength
    }
    return need
  }

  /** Whether a message of `need` bytes and `n` frames fits what is left now. */
  fits(need: number, n: number): boolean {
    return this.#words + n + 1 <= this.#meta!.length && this.#bytes + need <= this.#region!.length
  }

  /** Writes and commits a message that fits. */
  write(frames: Frame[]): void {
    const region = this.#region!
    const meta = this.#meta!
    const n = frames.length
    meta[this.#words++] = n
    for (let i = 0; i < n; i++) {
      const f = frames[i]!
      let len: number
      if (typeof f === 'string') len = region.write(f, this.#bytes)
      else {
        region.set(f, this.#bytes)
        len = f.byteLength
      }
      this.#bytes += len
      meta[this.#words++] = len
    }
    // Committed: from here on the addon delivers it even if this thread ends first.
    meta[COMMITTED_WORDS] = this.#words - STAGE_META_HEAD
    meta[COMMITTED_BYTES] = this.#bytes
    this.count++
  }

  /**
   * Hands everything staged to the addon, leaving room for `room` more bytes (a large
   * message next); returns the room the socket has left. A region the addon took over
   * whole is replaced before anything is written again.
   */
  flush(room = 0): number {
    this.#bytes = 0
    this.#words = STAGE_META_HEAD
    this.count = 0
    const credit = this.#native.flush(room)
    if (this.#meta![GENERATION] !== this.#generation) this.#view()
    return credit
  }
}

/** A frame kept by a waiting send: copied now, as an accepted one is. */
export const holdFrame = (f: Frame): Frame => (typeof f === 'string' ? f : copyBytes(f))

/**
 * A receive slab: a SharedArrayBuffer, so that a received message can never be detached
 * (transferring one to a worker fails with a clear error for that call, sharing it works):
 * the slab also holds the rest of its batch.
 */
function newSlab(size: number): Buffer {
  return Buffer.from(new SharedArrayBuffer(size))
}

/** A PULL's receive batches: fetched from the addon into slabs, read out message by message. */
export class ReceiveBatches {
  readonly #native: NativeSocket
  #slab: Buffer | null = null
  #slabAt = 0
  // The current batch: the read positions in its length words and its bytes, messages
  // left, and its own-buffer frames (fetched at the first one) with the next index.
  #word = 0
  #byte = 0
  #left = 0
  #own: (Buffer | undefined)[] | null = null
  #ownAt = 0

  constructor(native: NativeSocket) {
    this.#native = native
  }

  /** Messages of the current batch not yet handed out. */
  get buffered(): number {
    return this.#left
  }

  /** Forgets the current batch (the socket closed). */
  drop(): void {
    this.#slab = null
    this.#own = null
    this.#left = 0
  }

  #fetch(): boolean {
    if (this.#slab === null || this.#slab.length - this.#slabAt < SLAB_MIN_ROOM) {
      this.#slab = newSlab(RECEIVE_SLAB_BYTES)
      this.#slabAt = 0
    }
    let used = this.#native.tryReceive(RECEIVE_BATCH_MESSAGES, this.#slab, this.#slabAt)
    if (used === 0) return false
    if (used < 0) {
      // The next message needs more than this slab has left.
      this.#slab = newSlab(Math.max(RECEIVE_SLAB_BYTES, -used))
      this.#slabAt = 0
      used = this.#native.tryReceive(RECEIVE_BATCH_MESSAGES, this.#slab, 0)
    }
    const slab = this.#slab
    const base = this.#slabAt
    this.#left = slab.readUInt32LE(base)
    this.#byte = base + slab.readUInt32LE(base + 4)
    this.#word = base + 8
    this.#own = null
    this.#ownAt = 0
    this.#slabAt = (base + used + 3) & ~3
    return true
  }

  /** The next received message, or undefined; one native call per batch. */
  next(): Buffer[] | undefined {
    if (this.#left === 0 && !this.#fetch()) return undefined
    const slab = this.#slab!
    const n = slab.readUInt32LE(this.#word)
    this.#word += 4
    const msg = new Array<Buffer>(n)
    for (let i = 0; i < n; i++) {
      const len = slab.readUInt32LE(this.#word)
      this.#word += 4
      if (len === OWN_BUFFER) {
        if (this.#own === null) this.#own = this.#native.takeOwnBuffers()
        msg[i] = this.#own[this.#ownAt]!
        // Cleared so the batch does not keep a large frame alive once it was handed out.
        this.#own[this.#ownAt++] = undefined
      } else {
        msg[i] = slab.subarray(this.#byte, this.#byte + len)
        this.#byte += len
      }
    }
    if (--this.#left === 0) this.#own = null
    return msg
  }
}
