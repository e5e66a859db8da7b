// ESM entry: the same objects as the CommonJS entry, so `import` and `require` users share
// the module-level push()/pull() sockets.
import zeropipe from './index.js'

export const { Push, Pull, JobStream, Channel, channel, push, pull, configure, close, DEFAULT_ENDPOINT, Pool, serve, Worker, curveKeyPair, z85 } =
  zeropipe
export default zeropipe
