// Public types of zeropipe: exactly what `import … from "zeropipe"` and `require("zeropipe")`
// give you. The generated `binding.d.ts` describes the internal native layer.

/// <reference types="node" />

/**
 * One frame of a message: a `string` (sent as UTF-8), a `Buffer`, any TypedArray or
 * `DataView` (its bytes), an `ArrayBuffer` or `SharedArrayBuffer` (its bytes), a `number`
 * (sent as decimal text, as zeromq.js does) or `null` (an empty frame). An array of these
 * is one multipart message, delivered atomically.
 */
export type MessageLike =
  | string
  | Buffer
  | ArrayBufferView
  | ArrayBuffer
  | SharedArrayBuffer
  | number
  | null

/** Options shared by `Push` and `Pull`. Times are milliseconds. */
export interface SocketOptions {
  /** ZMQ_LINGER: how long `close()` keeps flushing queued messages; -1 = until sent. The default value is 30000 (libzmq: -1). */
  linger?: number
  /** ZMQ_IMMEDIATE: queue messages only on completed connections. The default value is false. */
  immediate?: boolean
  /** ZMQ_RECONNECT_IVL: delay before reconnecting; -1 = never reconnect. The default value is 100. */
  reconnectInterval?: number
  /** ZMQ_RECONNECT_IVL_MAX: upper bound of the exponential reconnect backoff; 0 = no backoff. The default value is 0. */
  reconnectMaxInterval?: number
  /** ZMQ_MAXMSGSIZE: largest whole message accepted from a peer, in bytes (frames plus 512 bytes per extra frame, about what a frame costs in memory once it is a JS Buffer); -1 = unlimited. A peer exceeding it is disconnected. The default value is 268435456 (256 MiB; libzmq: -1). */
  maxMessageSize?: number
  /** ZMQ_HANDSHAKE_IVL: a connection must complete the ZMTP handshake within this; 0 = no limit. The default value is 30000. */
  handshakeInterval?: number
  /** ZMQ_HEARTBEAT_IVL: send a ZMTP PING this often; 0 = no heartbeats. The default value is 0. */
  heartbeatInterval?: number
  /** ZMQ_HEARTBEAT_TIMEOUT: close a connection that stays silent this long after a PING; 0 = `heartbeatInterval`. The default value is 0. */
  heartbeatTimeout?: number
  /** ZMQ_HEARTBEAT_TTL: ask the peer to close us after this much silence (sent in tenths of a second, at most 6553500). The default value is 0. */
  heartbeatTimeToLive?: number
  /** ZMQ_CONNECT_TIMEOUT: give up one TCP connect attempt after this; 0 = the OS default. The default value is 0. */
  connectTimeout?: number
}

/** Options of a `Push` socket. */
export interface PushOptions extends SocketOptions {
  /** ZMQ_SNDHWM: messages queued per peer before `send()` waits; 0 = no limit. The default value is 1000. */
  sendHighWaterMark?: number
  /** ZMQ_SNDTIMEO: how long `send()` waits for room before rejecting with `EAGAIN`; -1 = forever, 0 = never wait. The default value is -1. */
  sendTimeout?: number
}

/** Options of a `Pull` socket. */
export interface PullOptions extends SocketOptions {
  /** ZMQ_RCVHWM: messages queued per peer before we stop reading it (TCP then pushes back). The default value is 1000. */
  receiveHighWaterMark?: number
  /** ZMQ_RCVTIMEO: how long `receive()` waits before rejecting with `EAGAIN`; -1 = forever, 0 = never wait. The default value is -1. */
  receiveTimeout?: number
}

/** Every option, as accepted by `configure()`. */
export type AllSocketOptions = PushOptions & PullOptions

/** The event types reported by `socket.events`, with zeromq.js's names. */
export type EventType =
  | 'accept'
  | 'accept:error'
  | 'bind'
  | 'bind:error'
  | 'connect'
  | 'connect:delay'
  | 'connect:retry'
  | 'close'
  | 'disconnect'
  | 'handshake'
  | 'handshake:error'
  | 'handshake:error:protocol'
  | 'handshake:error:other'
  | 'unbind'
  | 'end'

/** A socket event. `error` is set for error events, `interval` for `connect:retry`. */
export interface SocketEvent {
  type: Exclude<EventType, 'handshake:error'>
  address: string
  interval?: number
  error?: Error & { code: string }
}

/**
 * zeromq.js's event observer. Listen with `on(type, fn)`; `handshake:error` hears every
 * `handshake:error:*`. Observing never keeps the process alive; a pending `receive()` does.
 */
export interface Observer extends AsyncIterable<SocketEvent> {
  readonly closed: boolean
  on(type: EventType, listener: (event: SocketEvent) => void): this
  off(type: EventType, listener: (event: SocketEvent) => void): this
  receive(): Promise<SocketEvent>
  close(): void
}

declare abstract class Socket {
  /** True once `close()` was called. */
  readonly closed: boolean
  /** ZMQ_LAST_ENDPOINT: the resolved address of the last bind (the real port of `tcp://host:0` or `:*`, the path of `ipc://*`), or null. */
  readonly lastEndpoint: string | null
  /** Socket events (bind, accept, connect, connect:retry, disconnect, handshake, …). */
  readonly events: Observer
  linger: number
  immediate: boolean
  reconnectInterval: number
  reconnectMaxInterval: number
  maxMessageSize: number
  handshakeInterval: number
  heartbeatInterval: number
  heartbeatTimeout: number
  heartbeatTimeToLive: number
  connectTimeout: number
  /**
   * Binds to `tcp://host:port` (`*` = all interfaces, port `0`/`*` = ephemeral),
   * `ipc:///path` (`ipc://*` = a fresh temp path, `ipc://@name` = Linux abstract) or
   * `inproc://name`. Rejects with `EADDRINUSE`, `EINVAL`, `EPROTONOSUPPORT`, `EBADF`.
   */
  bind(address: string): Promise<void>
  /** Stops listening on an address given to `bind()` (or its resolved form). */
  unbind(address: string): Promise<void>
  /** Connects in the background, reconnecting as needed. Throws `EINVAL`/`EPROTONOSUPPORT`/`EBADF`. */
  connect(address: string): void
  /** Stops connecting to an address and drops that connection. */
  disconnect(address: string): void
  /**
   * Closes the socket. Unlike zeromq.js this returns a Promise, settled once queued
   * messages are flushed (within `linger`). Pending sends and receives reject with `EBADF`.
   */
  close(): Promise<void>
}

/** A ZeroMQ PUSH socket: round-robins messages over its peers, skipping full ones. */
export declare class Push extends Socket {
  constructor(options?: PushOptions)
  sendHighWaterMark: number
  sendTimeout: number
  /** A message can be queued now without waiting. */
  readonly writable: boolean
  /**
   * Queues a message (a frame or an array of frames = one multipart message). Resolves at
   * once while a peer has room, otherwise waits (in call order) up to `sendTimeout`, then
   * rejects with `EAGAIN`. Unlike zeromq.js, concurrent calls queue instead of throwing
   * `EBUSY`. Invalid frames reject with a `TypeError` and nothing is sent. Smaller frames
   * are copied by the call itself, so their buffer may be reused at once; buffers of
   * 64 KiB or more are sent without a copy (as in zeromq.js): do not modify them afterwards.
   */
  send(message: MessageLike | MessageLike[]): Promise<void>
}

/** A ZeroMQ PULL socket: fair-queues messages from its peers. */
export declare class Pull extends Socket implements AsyncIterable<Buffer[]> {
  constructor(options?: PullOptions)
  receiveHighWaterMark: number
  receiveTimeout: number
  /** A message can be received now. */
  readonly readable: boolean
  /** Resolves with the next message, one Buffer per frame. Rejects with `EAGAIN` after `receiveTimeout`, `EBADF` once closed. */
  receive(): Promise<Buffer[]>
  /** `for await (const [msg] of pull)`; ends cleanly when the socket is closed. */
  [Symbol.asyncIterator](): AsyncIterator<Buffer[], undefined>
}

/**
 * The jobs arriving at the module's PULL socket: both an async iterator
 * (`for await (const [job] of pull())`) and promise-like (awaiting it, or calling
 * then/catch/finally, runs the handler for each job in turn and settles when the stream
 * closes; it rejects if the handler throws). Using one stream both ways throws.
 */
export declare class JobStream implements AsyncIterableIterator<Buffer[]>, PromiseLike<void> {
  private constructor()
  readonly closed: boolean
  next(): Promise<IteratorResult<Buffer[], undefined>>
  return(): Promise<IteratorResult<Buffer[], undefined>>
  [Symbol.asyncIterator](): this
  then<T = void, U = never>(
    onfulfilled?: ((value: void) => T | PromiseLike<T>) | null,
    onrejected?: ((reason: unknown) => U | PromiseLike<U>) | null,
  ): Promise<T | U>
  catch<U = never>(onrejected?: ((reason: unknown) => U | PromiseLike<U>) | null): Promise<void | U>
  finally(onfinally?: (() => void) | null): Promise<void>
  /** Ends this stream: iteration finishes and the promise resolves. */
  close(): void
}

/** `tcp://127.0.0.1:7777`: the module API's endpoint unless `ZEROPIPE_ENDPOINT` or `configure()` says otherwise. */
export declare const DEFAULT_ENDPOINT: string

/**
 * Sends a job through the module's PUSH socket, which binds to the configured endpoint on
 * first use. Resolves once the job is queued (at once while under the high-water mark);
 * waits while the queue is full or no worker is connected yet. Calls from anywhere in the
 * program are queued in call order.
 */
export declare function push(job: MessageLike | MessageLike[]): Promise<void>

/**
 * Returns a `JobStream` over the module's PULL socket, which connects to the configured
 * endpoint on first use. Without a handler, consuming it as a promise logs
 * `Received Job <job>` for each job.
 */
export declare function pull(handler?: (frames: Buffer[]) => unknown | Promise<unknown>): JobStream

/** Sets the module sockets' endpoint and options; only before the first push()/pull() or after close(). */
export declare function configure(settings: { endpoint?: string } & AllSocketOptions): void

/** Flushes (within linger) and closes the module's sockets so the process can exit; push()/pull() start afresh afterwards. */
export declare function close(): Promise<void>

// Only what is exported above exists at run time: keeps `Socket` (a base class index.js
// does not export) from being implicitly exported as a value by this declaration file.
export {}
