// The native addon as the JS layer uses it: the generated loader (binding.js, typed by
// binding.d.ts) and what the process does at exit.

import * as binding from '../binding.js'

export const {
  NativeSocket,
  optionSpecs,
  lingerAllSockets,
  READABLE,
  WRITABLE,
  EVENTS,
  PEERS,
  CLOSED,
  AUTH,
  MAX_QUEUED_EVENTS,
} = binding
export type NativeSocket = binding.NativeSocket
export type NativeEvent = binding.NativeEvent
export type NativePeer = binding.NativePeer

// A thread or process that ends normally (the end of the script, process.exit(), a
// worker's own exit) first delivers what its sends resolved for, each socket within its
// linger, as libzmq's context termination does. A worker terminated from outside gets the
// same from the addon's environment cleanup hook.
process.once('exit', () => lingerAllSockets())
