// Errors the JS layer raises itself. Errors from the addon already carry their `code`
// (EADDRINUSE, EAGAIN, …): they pass through untouched.

/** An `Error` with a libzmq/errno-style `code`, as zeromq.js users match on. */
export type CodedError = Error & { code: string }

export function codedError(code: string, message: string): CodedError {
  const err = new Error(message) as CodedError
  err.code = code
  return err
}

export const closedError = (): CodedError => codedError('EBADF', 'Socket is closed')
