// The PUSH socket: sends accepted in JS within the room the peers have under their
// high-water marks, staged and handed to the addon in batches.

import { holdFrame, SendStage } from './batch'
import { closedError, codedError } from './errors'
import { toFrames, type Frame, type MessageLike } from './frames'
import type { PushOptionProperties, PushOptions } from './generated'
import { binding, WRITABLE } from './native'
import { defineOptionProperties } from './options'
import { defineCurveProperties, serve, Socket } from './socket'
import { WaitQueue, type Waiter } from './wait-queue'

const { LARGE_FRAME } = binding

/** Every successful send resolves with this one promise: nothing to allocate per message. */
const SENT = Promise.resolve()

/** Messages per batch: big enough to amortise the native call, small enough that the I/O
 * thread starts writing while JS is still producing. */
const BATCH_MESSAGES = 128

interface SendWaiter extends Waiter<void> {
  /** The message, copied when send() was called: its frames, or the id of a large one the addon holds. */
  frames: Frame[] | number
}

/**
 * A ZeroMQ PUSH socket: round-robins messages over its peers, skipping full ones.
 *
 * Sends are accepted in JS up to the room the addon last reported (the free slots under
 * the peers' high-water marks), and handed over in batches: one native call per batch. A
 * batch goes out when it is full, when the room is used up, and at the latest on the next
 * tick, so a lone message waits for nothing but the code already running.
 */
export class Push extends Socket {
  #credit = 0
  readonly #stage: SendStage
  #tickScheduled = false
  readonly #queue = new WaitQueue<SendWaiter>()

  constructor(options?: PushOptions) {
    super('push', 'Push', options)
    this.#stage = new SendStage(this.native)
  }

  /**
   * @internal Queues a message for one peer (an id from a `handshake` event), copying its
   * frames now: how a pool hands a job to the worker it chose. Throws `EHOSTUNREACH` if the
   * peer is gone, `EAGAIN` at its high-water mark; nothing is queued then.
   */
  _sendTo(peer: number, frames: Frame[]): void {
    if (this.closing !== null) throw closedError()
    this.native.sendTo(peer, frames)
  }

  /** A message can be queued now without waiting (ZMQ_EVENTS & ZMQ_POLLOUT). */
  get writable(): boolean {
    if (this.closed || this.#queue.length > 0) return false
    // Asked afresh rather than trusting the credit, which a departed peer may have left stale.
    try {
      return this.#refreshCredit()
    } catch {
      return false
    }
  }

  /**
   * Queues a message (a frame, or an array of frames = one multipart message). Resolves at
   * once while a peer has room under the high-water mark; otherwise waits, behind earlier
   * sends, up to `sendTimeout`, then rejects with `EAGAIN`. Unlike zeromq.js, concurrent
   * calls queue instead of throwing `EBUSY`. Invalid frames reject with a `TypeError` and
   * nothing is sent. Every frame is copied by the call itself: the buffer may be reused,
   * modified or transferred as soon as `send()` returns. Once it resolved, the message is
   * delivered even if the thread or process ends normally (within `linger`).
   */
  send(message: MessageLike | MessageLike[]): Promise<void> {
    let frames: Frame[]
    try {
      frames = toFrames(message)
    } catch (err) {
      return Promise.reject(err)
    }
    if (this.closing !== null) return Promise.reject(closedError())
    if (this.#queue.length === 0) {
      try {
        if (this.#credit > 0 || this.#refreshCredit()) {
          this.#accept(frames)
          return SENT
        }
      } catch (err) {
        return Promise.reject(err)
      }
    }
    // Also behind earlier sends still waiting: 0 means never wait.
    if (this._options().sendTimeout === 0) {
      return Promise.reject(codedError('EAGAIN', 'Socket is not writable: no peer has room (sendTimeout 0)'))
    }
    // A waiting send copies its frames now, as an accepted one does: a large message into
    // memory the addon owns and reuses (a JS copy would be zero-filled first, and given
    // back only by the garbage collector).
    let held: Frame[] | number
    try {
      const need = this.#stage.need(frames)
      held = need >= LARGE_FRAME ? this.native.hold(frames) : frames.map(holdFrame)
    } catch (err) {
      return Promise.reject(err)
    }
    return new Promise<void>((resolve, reject) => {
      const release = (err: unknown) => {
        if (typeof held === 'number') {
          try {
            this.native.releaseHeld(held)
          } catch {
            // The native socket is gone, and the message with it.
          }
        }
        reject(err)
      }
      const entry: SendWaiter = { frames: held, resolve, reject: release, timer: null, cancelled: false, served: false }
      this.enqueue(this.#queue, entry, this._options().sendTimeout, 'send', WRITABLE)
    })
  }

  /** Hands what is staged to the addon and learns the room left; true if there is some. */
  #refreshCredit(): boolean {
    this.#credit = this.#stage.count > 0 ? this.#stage.flush() : this.native.room()
    return this.#credit > 0
  }

  /** Accepts a message (the caller checked the credit). */
  #accept(frames: Frame[]): void {
    const stage = this.#stage
    const need = stage.need(frames)
    if (need < 0 || need >= LARGE_FRAME) {
      // More frames than the stage can describe, or a large message (written to the
      // socket from this memory if the peer's connection is idle, else copied by the
      // addon into a buffer it reuses rather than into stage memory that only the
      // garbage collector gives back): on its own.
      this.#sendAlone(() => this.native.sendNow(frames))
      return
    }
    if (!stage.fits(need, frames.length)) this.#credit = stage.flush(need)
    stage.write(frames)
    this.#credit--
    if (stage.count >= BATCH_MESSAGES) this.#credit = stage.flush()
    else if (!this.#tickScheduled) {
      this.#tickScheduled = true
      process.nextTick(flushOnTick, this)
    }
  }

  /** Sends one message past the stage, after what is staged (sends keep their order). */
  #sendAlone(send: () => number): void {
    if (this.#stage.count > 0) this.#stage.flush()
    this.#credit = send()
  }

  /** @internal */
  _flushOnTick(): void {
    this.#tickScheduled = false
    if (this.closing === null) this.#flushAccepted()
  }

  #flushAccepted(): void {
    if (this.#stage.count === 0) return
    try {
      this.#credit = this.#stage.flush()
    } catch {
      // The native socket is already gone (its environment is shutting down): there is
      // nowhere left to deliver them.
    }
  }

  /** @internal */
  protected beforeClose(err: Error): void {
    // Messages already accepted (their send resolved) go to the native queue first, so
    // that linger flushes them like any other queued message.
    this.#flushAccepted()
    for (const s of this.#queue.drain()) serve(s, () => s.reject(err))
  }

  /** @internal */
  protected waiting(): boolean {
    return this.#queue.length > 0
  }

  /** @internal */
  protected ready(bits: number): void {
    if (!(bits & WRITABLE)) return
    const q = this.#queue
    for (let head = q.peek(); head !== undefined; head = q.peek()) {
      try {
        if (!(this.#credit > 0 || this.#refreshCredit())) break
        const held = head.frames
        if (typeof held === 'number') this.#sendAlone(() => this.native.sendHeld(held))
        else this.#accept(held)
      } catch (err) {
        q.shift()
        serve(head, () => head.reject(err))
        continue
      }
      q.shift()
      serve(head, () => head.resolve())
    }
    if (q.length) this.arm(WRITABLE)
    this._updateRef()
  }
}

function flushOnTick(push: Push): void {
  push._flushOnTick()
}

// The options as properties, typed and documented from the engine's table.
// eslint-disable-next-line @typescript-eslint/no-empty-interface
export interface Push extends PushOptionProperties {}
defineOptionProperties(Push, 'Push')
defineCurveProperties(Push)
