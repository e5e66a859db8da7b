// zeropipe: ZeroMQ PUSH/PULL sockets for Node.js, owned by Rust. This is the package's entry:
// exactly what `import … from "zeropipe"` and `require("zeropipe")` give. Each concern lives
// in a file of its own under lib/ (see the README's Layout section).

export { Push } from './lib/push'
export { Pull } from './lib/pull'
export { JobStream, Channel, channel, push, pull, configure, close, DEFAULT_ENDPOINT } from './lib/module-api'
export type { BindSide, ChannelSettings } from './lib/module-api'
export { Pool } from './lib/pool'
export type { PoolOptions, PoolStats, RunOptions } from './lib/pool'
export { serve, Worker } from './lib/serve'
export type { JobHandler, ServeOptions } from './lib/serve'
export { curveKeyPair, z85 } from './lib/curve'
export type { AuthRequest, AuthStatus, AuthVerdict, Authenticate, CurveKey, CurveOptions, CurveOptionProperties } from './lib/curve'
export type { MessageLike } from './lib/frames'
export type { CodedError } from './lib/errors'
export type { Observer, SocketEvent, EventType } from './lib/observer'
export type {
  SocketOptions,
  PushOptions,
  PullOptions,
  AllSocketOptions,
  SocketOptionProperties,
  PushOptionProperties,
  PullOptionProperties,
  SocketEventMap,
} from './lib/generated'
