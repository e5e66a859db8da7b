// The `zeropipe` command-line tool (the package's `bin`, started by bin/zeropipe.js):
// `push`, `pull` and `relay` over the package's own Push and Pull. The README's
// "Command-line tool" section is its manual; `zeropipe <command> --help` its summary.
//
// Choices a script depends on, and why:
// - Defaults follow the module API (`push()` binds, `pull()` connects, same default
//   endpoint), so `zeropipe pull` taps a program that calls `push()`, and `zeropipe push`
//   feeds one that calls `pull()`. A relay binds both sides: it is the stable middle of a
//   pipeline, as libzmq's streamer device is.
// - Input and output are bytes, never decoded: a line is a message however it is encoded.
// - Every send is awaited: a full queue (the high-water mark) stops reading stdin, and a
//   slow stdout stops receiving, so memory stays bounded both ways.
// - The first SIGINT/SIGTERM stops input and closes the sockets, flushing within linger; a
//   second one drops what is left. Either way the process then ends by that signal (the
//   shell's 130/143), as a C tool's default handler would, so a calling script or loop
//   sees an interruption, not a success.

import { readFile } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { CurveConfig, curveKeyPair, type CurveOptions } from './curve'
import type { CodedError } from './errors'
import type { AllSocketOptions } from './generated'
import { DEFAULT_ENDPOINT } from './module-api'
import { optionsFor, resolveOptions } from './options'
import { Pull } from './pull'
import { Push } from './push'
import type { Socket } from './socket'

/** Exit statuses (README, "Command-line tool"). Signals end the process by the signal itself. */
export const EXIT = {
  OK: 0,
  /** A runtime failure: address in use, unreadable file, a socket error. */
  ERROR: 1,
  /** Bad command line: unknown flag, missing or malformed endpoint, bad value. */
  USAGE: 2,
  /** `--timeout` ran out: no peer (push), nothing (more) arrived (pull). */
  TIMEOUT: 3,
  /** push/relay ended with messages still queued for a peer that never came within linger. */
  UNDELIVERED: 4,
} as const

class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message)
  }
}

const usageError = (message: string) => new CliError(message, EXIT.USAGE)

// ---------------------------------------------------------------------------------------
// Help

const COMMON_HELP = `
Socket options:
  --linger <ms>          flush queued messages this long on exit (default 30000; -1 = until sent)
  --hwm <n>              high-water mark, messages queued per peer (default 1000; 0 = none)
  -o, --option <k=v>     any socket option by its zeromq.js name, e.g. -o heartbeatInterval=1000
  -v, --verbose          print connection events to stderr
  -h, --help             this help

CURVE (encryption; keys as 40 Z85 characters, see 'zeropipe keygen'):
  --curve-server         be the CURVE server (needs --curve-secret-key)
  --curve-secret-key <k> this side's secret key (default $ZEROPIPE_CURVE_SECRET_KEY: better
                         than the flag, which other users can see in the process list)
  --curve-public-key <k> this side's public key (default: derived from the secret key)
  --curve-server-key <k> be a CURVE client of the server with this public key (default
                         $ZEROPIPE_CURVE_SERVER_KEY); a client without a secret key makes
                         a fresh key pair
  --curve-allow <k>      a server: let in only the clients with these public keys
                         (repeatable; default $ZEROPIPE_CURVE_ALLOW, comma-separated)

Endpoints: tcp://host:port, ipc:///path, ipc://@abstract. A leading @ binds and a leading >
connects that endpoint (CZMQ's notation), whatever the default.

Exit status: 0 done, 1 runtime error, 2 usage error, 3 timeout, 4 undelivered (linger ran
out with messages queued for an absent peer), 130/143 interrupted (SIGINT/SIGTERM).`

const HELP: Record<string, string> = {
  main: `Usage: zeropipe <command> [options] [endpoint ...]

ZeroMQ PUSH/PULL from the shell, wire-compatible with libzmq peers.

Commands:
  push [endpoint ...]              send lines of stdin, files or --data as messages
  pull [endpoint ...]              print received messages (text, json, hex, base64)
  relay <pull-endpoint> <push-endpoint>
                                   forward messages from a PULL to a PUSH (a streamer)
  keygen                           print a new CURVE key pair (Z85), as environment lines

The endpoint defaults to $ZEROPIPE_ENDPOINT, else ${DEFAULT_ENDPOINT}.
Run 'zeropipe <command> --help' for a command's options.

Exit status: 0 done, 1 runtime error, 2 usage error, 3 timeout, 4 undelivered,
130/143 interrupted.`,

  push: `Usage: zeropipe push [options] [endpoint ...]

Sends one message per line of stdin (or per --data, or per --file) through a PUSH socket,
waiting whenever every peer's queue is full. Binds by default (as push() does).

Input:
  -d, --data <text>      a message (repeatable); stdin is not read
  -f, --file <path>      a file's bytes as one message (repeatable); stdin is not read
  -m, --multipart        split each line or --data at the frame delimiter into frames;
                         with --file, all files together are one multipart message
  --delimiter <s>        message delimiter on stdin (default \\n; escapes \\n \\t \\0 \\xHH)
  --frame-delimiter <s>  frame delimiter for --multipart (default \\t)

Sending:
  -b, --bind             bind the endpoints (default)
  -c, --connect          connect to the endpoints
  -n, --count <n>        stop after n messages; --data/--file are repeated to reach n
  -r, --rate <n>         at most n messages per second
  -w, --wait-peers <n>   wait for n peers to connect before the first send (so that round-
                         robin spreads from the first message, not to the first comer)
  -t, --timeout <ms>     give up (exit 3) when no peer connects or takes a message for ms
  --stats                print the number of messages sent on exit
${COMMON_HELP}

Examples:
  printf 'a\\nb\\n' | zeropipe push tcp://127.0.0.1:5555
  zeropipe push -c tcp://worker:5555 -d job -n 1000 -r 100
  printf 'key\\tvalue\\n' | zeropipe push -m ipc:///tmp/jobs`,

  pull: `Usage: zeropipe pull [options] [endpoint ...]

Prints each message received on a PULL socket, one per line. Connects by default (as
pull() does).

Output:
  --format <f>           text (default): the frames' bytes as they are
                         json: a JSON array per line, a frame as a string if it is valid
                               UTF-8, else as {"base64": "..."}
                         hex, base64: each frame encoded
  --delimiter <s>        after each message (default \\n; not for json)
  --frame-delimiter <s>  between frames of a multipart message (default \\t; not for json)

Receiving:
  -b, --bind             bind the endpoints
  -c, --connect          connect to the endpoints (default)
  -n, --count <n>        exit 0 after n messages
  -t, --timeout <ms>     exit when nothing arrives for ms: status 3 if fewer than --count
                         messages (without --count: none at all) arrived, else 0
  --stats                print the number of messages received on exit
${COMMON_HELP}

Examples:
  zeropipe pull tcp://127.0.0.1:5555 --format json | jq .
  zeropipe pull -b tcp://*:5558 -n 100 -t 5000 > results.txt`,

  relay: `Usage: zeropipe relay [options] <pull-endpoint> <push-endpoint>

Receives on a PULL socket and sends every message, all its frames, on a PUSH socket (libzmq's
streamer device, zmq_proxy between PULL and PUSH). Binds both sides by default: producers
and workers connect to it. Waits when the PUSH side is full, which stops reading the PULL
side, so backpressure reaches the producers.

  --pull-connect         connect the PULL side instead of binding it
  --push-connect         connect the PUSH side instead of binding it
  -n, --count <n>        stop after forwarding n messages
  --stats                print the number of messages forwarded on exit
${COMMON_HELP}

Example:
  zeropipe relay tcp://*:5557 tcp://*:5558 --stats`,
}

// ---------------------------------------------------------------------------------------
// Arguments

type Values = Record<string, string | boolean | string[] | undefined>

// Flags every command takes.
const SOCKET_FLAGS = {
  linger: { type: 'string' },
  hwm: { type: 'string' },
  option: { type: 'string', short: 'o', multiple: true },
  verbose: { type: 'boolean', short: 'v' },
  help: { type: 'boolean', short: 'h' },
  count: { type: 'string', short: 'n' },
  stats: { type: 'boolean' },
  'curve-server': { type: 'boolean' },
  'curve-secret-key': { type: 'string' },
  'curve-public-key': { type: 'string' },
  'curve-server-key': { type: 'string' },
  'curve-allow': { type: 'string', multiple: true },
} as const

// Flags of the commands with one socket, whose messages are lines of stdin or stdout.
const STREAM_FLAGS = {
  ...SOCKET_FLAGS,
  delimiter: { type: 'string' },
  'frame-delimiter': { type: 'string' },
  bind: { type: 'boolean', short: 'b' },
  connect: { type: 'boolean', short: 'c' },
  timeout: { type: 'string', short: 't' },
} as const

const FLAGS = {
  push: {
    ...STREAM_FLAGS,
    data: { type: 'string', short: 'd', multiple: true },
    file: { type: 'string', short: 'f', multiple: true },
    multipart: { type: 'boolean', short: 'm' },
    rate: { type: 'string', short: 'r' },
    'wait-peers': { type: 'string', short: 'w' },
  },
  pull: { ...STREAM_FLAGS, format: { type: 'string' } },
  relay: {
    ...SOCKET_FLAGS,
    'pull-connect': { type: 'boolean' },
    'push-connect': { type: 'boolean' },
  },
} as const

type Command = keyof typeof FLAGS

function parse(command: Command, args: string[]): { values: Values; endpoints: string[] } {
  try {
    const { values, positionals } = parseArgs({ args, options: FLAGS[command], allowPositionals: true, strict: true })
    return { values: values as Values, endpoints: positionals }
  } catch (err) {
    // parseArgs' first sentence names the flag ("Unknown option '--x'"); its advice on
    // positionals that start with '-' does not apply to endpoints.
    throw usageError((err as Error).message.replace(/\. To specify a positional.*$/s, ''))
  }
}

function str(values: Values, name: string): string | undefined {
  const v = values[name]
  return typeof v === 'string' ? v : undefined
}

/** An integer flag within [min, max], or undefined when not given. */
function int(values: Values, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const text = str(values, name)
  if (text === undefined) return undefined
  const n = /^-?\d+$/.test(text.trim()) ? Number(text) : NaN
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw usageError(`--${name} takes an integer${max === Number.MAX_SAFE_INTEGER ? ` of at least ${min}` : ` from ${min} to ${max}`}, got "${text}"`)
  }
  return n
}

/** A delimiter with the escapes a shell makes awkward to type: \n \r \t \0 \\ \xHH. */
function unescapeDelimiter(text: string, flag: string): Buffer {
  const bytes: number[] = []
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (c !== '\\' || i + 1 === text.length) {
      bytes.push(...Buffer.from(c, 'utf8'))
      continue
    }
    const e = text[++i]!
    if (e === 'n') bytes.push(10)
    else if (e === 'r') bytes.push(13)
    else if (e === 't') bytes.push(9)
    else if (e === '0') bytes.push(0)
    else if (e === '\\') bytes.push(92)
    else if (e === 'x' && /^[0-9a-fA-F]{2}$/.test(text.slice(i + 1, i + 3))) {
      bytes.push(parseInt(text.slice(i + 1, i + 3), 16))
      i += 2
    } else throw usageError(`--${flag}: unknown escape "\\${e}" (known: \\n \\r \\t \\0 \\\\ \\xHH)`)
  }
  if (bytes.length === 0) throw usageError(`--${flag} must not be empty`)
  return Buffer.from(bytes)
}

/**
 * The CURVE options the flags and the environment give (flags win). A client without a
 * secret key gets a fresh pair: enough unless the server checks who connects.
 */
function curveOptions(values: Values): CurveOptions {
  const env = process.env
  const server = values['curve-server'] === true
  const secretKey = str(values, 'curve-secret-key') ?? (env.ZEROPIPE_CURVE_SECRET_KEY?.trim() || undefined)
  const publicKey = str(values, 'curve-public-key') ?? (env.ZEROPIPE_CURVE_PUBLIC_KEY?.trim() || undefined)
  const serverKey = str(values, 'curve-server-key') ?? (env.ZEROPIPE_CURVE_SERVER_KEY?.trim() || undefined)
  const allowFlag = values['curve-allow'] as string[] | undefined
  const allow = allowFlag ?? env.ZEROPIPE_CURVE_ALLOW?.split(/[\s,]+/).filter(Boolean)
  if (!server && serverKey === undefined) {
    if (str(values, 'curve-secret-key') !== undefined || str(values, 'curve-public-key') !== undefined || allowFlag) {
      throw usageError('CURVE keys given without a role: add --curve-server, or --curve-server-key to be a client')
    }
    return {}
  }
  if (server && secretKey === undefined) throw usageError('--curve-server needs --curve-secret-key (or $ZEROPIPE_CURVE_SECRET_KEY)')
  const own = secretKey === undefined ? curveKeyPair() : null
  const out: CurveOptions = server
    ? { curveServer: true, curveSecretKey: secretKey, curvePublicKey: publicKey, curveAllow: allow?.length ? allow : undefined }
    : { curveServerKey: serverKey, curveSecretKey: own ? own.secretKey : secretKey, curvePublicKey: own ? own.publicKey : publicKey }
  try {
    // The library's own checks (key lengths, Z85), with its messages.
    const check = new CurveConfig()
    for (const [name, value] of Object.entries(out)) if (value !== undefined) check.set(name as keyof CurveOptions, value)
  } catch (err) {
    throw usageError((err as Error).message)
  }
  return Object.fromEntries(Object.entries(out).filter(([, v]) => v !== undefined))
}

/** The socket options the flags give: --linger, --hwm, -o name=value, and CURVE's. */
function socketOptions(values: Values): AllSocketOptions {
  const out: Record<string, number | boolean> = {}
  for (const item of (values.option as string[] | undefined) ?? []) {
    const eq = item.indexOf('=')
    if (eq <= 0) throw usageError(`--option takes name=value, got "${item}"`)
    const raw = item.slice(eq + 1).trim()
    out[item.slice(0, eq).trim()] = raw === 'true' ? true : raw === 'false' ? false : /^-?\d+$/.test(raw) ? Number(raw) : NaN
  }
  const linger = int(values, 'linger', -1)
  if (linger !== undefined) out.linger = linger
  const hwm = int(values, 'hwm', 0)
  if (hwm !== undefined) {
    out.sendHighWaterMark = hwm
    out.receiveHighWaterMark = hwm
  }
  try {
    // The library's own checks, with its messages (unknown name, type, range).
    resolveOptions('configure()', out)
  } catch (err) {
    throw usageError((err as Error).message.replace(/^Option/, 'Socket option').replace(' for configure()', ''))
  }
  return { ...(out as AllSocketOptions), ...curveOptions(values) }
}

interface Endpoint {
  address: string
  bind: boolean
}

/** An endpoint argument: CZMQ's @ (bind) or > (connect) prefix, else the command's default. */
function endpoint(arg: string, bindByDefault: boolean): Endpoint {
  let address = arg
  let bind = bindByDefault
  if (arg.startsWith('@') || arg.startsWith('>')) {
    bind = arg[0] === '@'
    address = arg.slice(1)
  }
  if (!/^[a-z]+:\/\/./.test(address)) throw usageError(`"${arg}" is not an endpoint (tcp://host:port, ipc:///path)`)
  if (address.startsWith('inproc://')) {
    throw usageError(`${address}: inproc:// only reaches sockets of the same process; use ipc:// or tcp://`)
  }
  return { address, bind }
}

function defaultBind(values: Values, bindByDefault: boolean): boolean {
  if (values.bind && values.connect) throw usageError('--bind and --connect exclude each other (use @ and > per endpoint)')
  return values.bind ? true : values.connect ? false : bindByDefault
}

function endpoints(args: string[], bindByDefault: boolean): Endpoint[] {
  const list = args.length ? args : [process.env.ZEROPIPE_ENDPOINT || DEFAULT_ENDPOINT]
  return list.map((a) => endpoint(a, bindByDefault))
}

// ---------------------------------------------------------------------------------------
// A run: its sockets, its peers, its end

const say = (command: string, text: string) => process.stderr.write(`zeropipe ${command}: ${text}\n`)
const plural = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`

/**
 * Counts a socket's peers from its events: a connection (accepted or connected) ends with
 * exactly one `disconnect`, after a `handshake` or a `handshake:error:*`; the peers are the
 * handshakes not yet ended.
 */
class Peers {
  count = 0
  /** Handshakes ever, to tell whether a peer came while we lingered. */
  handshakes = 0
  #waiters: { n: number; resolve: () => void }[] = []

  constructor(sock: Socket, command: string, verbose: boolean) {
    const ev = sock.events
    ev.on('handshake', ({ address }) => {
      this.count++
      this.handshakes++
      if (verbose) say(command, `peer connected on ${address} (${this.count} now)`)
      this.#waiters = this.#waiters.filter((w) => (this.count >= w.n ? (w.resolve(), false) : true))
    })
    ev.on('handshake:error', ({ address, error }) => {
      // Its `disconnect` follows: count it now so that one cancels out.
      this.count++
      if (verbose) say(command, `handshake failed on ${address}: ${error?.message ?? 'unknown error'}`)
    })
    ev.on('disconnect', ({ address }) => {
      this.count = Math.max(0, this.count - 1)
      if (verbose) say(command, `peer left ${address} (${this.count} now)`)
    })
    if (verbose) {
      for (const type of ['connect:delay', 'connect:retry', 'accept:error', 'bind:error'] as const) {
        ev.on(type, ({ address, error }) => say(command, `${type} ${address}${error ? `: ${error.message}` : ''}`))
      }
    }
  }

  /** Resolves once `n` peers are connected. */
  waitFor(n: number): Promise<void> {
    if (this.count >= n) return Promise.resolve()
    // Socket events do not keep Node alive by themselves (README, Behaviour); waiting does.
    const alive = setInterval(() => {}, 1 << 30)
    return new Promise<void>((resolve) => this.#waiters.push({ n, resolve })).finally(() => clearInterval(alive))
  }
}

/** Binds or connects `sock` to each endpoint; bad endpoints are usage errors. */
async function attach(sock: Socket, list: Endpoint[], command: string, verbose: boolean): Promise<void> {
  for (const ep of list) {
    try {
      if (ep.bind) {
        await sock.bind(ep.address)
        // An ephemeral address (port 0 or *, ipc://*) is otherwise unknowable.
        const real = sock.lastEndpoint
        if (verbose || (real && real !== ep.address)) say(command, `bound ${real ?? ep.address}`)
      } else {
        sock.connect(ep.address)
        if (verbose) say(command, `connecting to ${ep.address}`)
      }
    } catch (err) {
      const code = (err as Partial<CodedError>).code
      const bad = code === 'EINVAL' || code === 'EPROTONOSUPPORT'
      throw new CliError(`cannot ${ep.bind ? 'bind' : 'connect'} ${ep.address}: ${(err as Error).message}`, bad ? EXIT.USAGE : EXIT.ERROR)
    }
  }
}

/**
 * What a run needs to end well: one shutdown (closing its sockets within linger) shared by
 * the normal end and the signals.
 */
class Run {
  stopping: NodeJS.Signals | null = null
  readonly abort = new AbortController()
  #shutdown: (() => Promise<number>) | null = null
  #closing: Promise<number> | null = null

  constructor(readonly command: string) {}

  /** The run's shutdown: closes its sockets, resolves with the exit status it implies. */
  onShutdown(fn: () => Promise<number>): void {
    this.#shutdown = fn
  }

  shutdown(): Promise<number> {
    this.#closing ??= this.#shutdown ? this.#shutdown() : Promise.resolve(EXIT.OK)
    return this.#closing
  }

  listen(): void {
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => this.#interrupt(sig))
  }

  #interrupt(sig: NodeJS.Signals): void {
    if (this.stopping || this.#closing) {
      // A second signal, or one while the end of input already lingers (its message said
      // so): drop what is still queued, now.
      dieBy(sig)
      return
    }
    this.stopping = sig
    this.abort.abort()
    this.shutdown().then(
      () => dieBy(sig),
      () => dieBy(sig),
    )
  }
}

/** Ends the process by `sig` itself (its default action), as an interrupted C tool does. */
function dieBy(sig: NodeJS.Signals): void {
  process.removeAllListeners(sig)
  process.kill(process.pid, sig)
}

/**
 * Closes a PUSH, and says so once on stderr when that means waiting for a peer that is not
 * there (rather than hanging silently for up to linger). Resolves with UNDELIVERED when
 * the messages stayed queued through linger, else OK.
 */
async function closePush(sock: Push, peers: Peers, state: SendState, list: Endpoint[], run: Run): Promise<number> {
  const { command } = run
  const interrupted = run.stopping !== null
  const linger = sock.linger
  const where = list.map((e) => e.address).join(', ')
  const alone = peers.count === 0
  if (state.waiting) {
    // close() rejects the send that waits for room: its message is not sent.
    say(command, `${alone ? 'no peer on' : 'every peer full on'} ${where}: message ${state.accepted + 1} not sent`)
  }
  const handshakes = peers.handshakes
  const closing = sock.close()
  if (!alone || state.accepted === 0) {
    await closing
    return EXIT.OK
  }
  const what = state.queuedWhileAlone > 0 ? plural(state.queuedWhileAlone, 'message') : 'messages (their peer left)'
  if (linger === 0) {
    await closing
    if (state.queuedWhileAlone === 0) return EXIT.OK
    say(command, `no peer on ${where}: ${what} dropped (--linger 0)`)
    return EXIT.UNDELIVERED
  }
  // close() settles at once when nothing is queued; only a queue makes it linger.
  const quick = await Promise.race([closing.then(() => true), sleep(150, false)])
  if (quick) return EXIT.OK
  const wait = linger < 0 ? 'until a peer takes them' : `up to ${linger} ms (--linger) for a peer to take them`
  say(command, `no peer on ${where}: ${what} still queued; waiting ${wait}; Ctrl-C${interrupted ? ' again' : ''} drops them`)
  await closing
  return peers.handshakes > handshakes ? EXIT.OK : EXIT.UNDELIVERED
}

/** What a sending loop has done, for closePush's report. */
interface SendState {
  accepted: number
  /** Accepted while no peer was connected (queued for one to come); 0 again once one does. */
  queuedWhileAlone: number
  /** A send waits for room. */
  waiting: boolean
}

/** Sends one message and keeps the counts closePush reports. */
async function sendCounted(sock: Push, peers: Peers, state: SendState, frames: Buffer[]): Promise<void> {
  state.waiting = true
  try {
    await sock.send(frames)
  } finally {
    state.waiting = false
  }
  state.accepted++
  if (peers.count === 0) state.queuedWhileAlone++
  else state.queuedWhileAlone = 0
}

/** A send or receive that failed because the run is stopping is not an error. */
function rethrowUnlessStopping(run: Run, err: unknown): void {
  if (run.stopping || (err as Partial<CodedError>).code === 'EBADF') return
  throw err
}

// ---------------------------------------------------------------------------------------
// push

/** Messages from stdin, split at `delimiter` (a trailing delimiter ends the last one). */
async function* stdinMessages(delimiter: Buffer, signal: AbortSignal): AsyncGenerator<Buffer> {
  if (signal.aborted) return
  const input = process.stdin
  signal.addEventListener('abort', () => input.destroy(), { once: true })
  let rest: Buffer = Buffer.alloc(0)
  try {
    for await (const chunk of input as AsyncIterable<Buffer>) {
      let buf = rest.length ? Buffer.concat([rest, chunk]) : chunk
      let at: number
      while ((at = buf.indexOf(delimiter)) !== -1) {
        yield buf.subarray(0, at)
        buf = buf.subarray(at + delimiter.length)
      }
      rest = buf
    }
  } catch (err) {
    if (signal.aborted) return
    throw err
  }
  if (rest.length && !signal.aborted) yield rest
}

function split(buf: Buffer, delimiter: Buffer): Buffer[] {
  const frames: Buffer[] = []
  let at: number
  while ((at = buf.indexOf(delimiter)) !== -1) {
    frames.push(buf.subarray(0, at))
    buf = buf.subarray(at + delimiter.length)
  }
  frames.push(buf)
  return frames
}

/** Every message a push sends, as frames. */
async function* pushInput(values: Values, signal: AbortSignal): AsyncGenerator<Buffer[]> {
  const multipart = values.multipart === true
  const frameDelimiter = unescapeDelimiter(str(values, 'frame-delimiter') ?? '\\t', 'frame-delimiter')
  const data = values.data as string[] | undefined
  const files = values.file as string[] | undefined
  const count = int(values, 'count', 1)
  let fixed: Buffer[][] | null = null
  if (data) fixed = data.map((d) => (multipart ? split(Buffer.from(d), frameDelimiter) : [Buffer.from(d)]))
  else if (files) {
    const contents: Buffer[] = []
    for (const f of files) {
      try {
        contents.push(await readFile(f))
      } catch (err) {
        throw new CliError(`cannot read ${f}: ${(err as Error).message}`, EXIT.ERROR)
      }
    }
    fixed = multipart ? [contents] : contents.map((c) => [c])
  }
  if (fixed) {
    // Repeated to reach --count, as `nats pub --count` does.
    const total = count ?? fixed.length
    for (let i = 0; i < total; i++) yield fixed[i % fixed.length]!
    return
  }
  const delimiter = unescapeDelimiter(str(values, 'delimiter') ?? '\\n', 'delimiter')
  let n = 0
  for await (const line of stdinMessages(delimiter, signal)) {
    yield multipart ? split(line, frameDelimiter) : [line]
    if (count !== undefined && ++n >= count) return
  }
}

async function push(run: Run, values: Values, args: string[]): Promise<number> {
  const bindDefault = defaultBind(values, true)
  const list = endpoints(args, bindDefault)
  if (values.data && values.file) throw usageError('give --data or --file, not both')
  const rate = int(values, 'rate', 1)
  const waitPeers = int(values, 'wait-peers', 0) ?? 0
  const timeout = int(values, 'timeout', 1)
  int(values, 'count', 1)
  unescapeDelimiter(str(values, 'delimiter') ?? '\\n', 'delimiter')
  unescapeDelimiter(str(values, 'frame-delimiter') ?? '\\t', 'frame-delimiter')
  const options = optionsFor('Push', socketOptions(values))
  if (timeout !== undefined) options.sendTimeout = timeout

  const sock = new Push(options)
  // closePush reports a lingering close itself, with the exit code that goes with it.
  sock._warnOnLinger(false)
  const peers = new Peers(sock, run.command, values.verbose === true)
  const state: SendState = { accepted: 0, queuedWhileAlone: 0, waiting: false }
  run.onShutdown(async () => {
    const status = await closePush(sock, peers, state, list, run)
    if (values.stats) say(run.command, `sent ${plural(state.accepted, 'message')}`)
    return status
  })
  await attach(sock, list, run.command, values.verbose === true)

  try {
    if (waitPeers > 0) {
      const waited = peers.waitFor(waitPeers)
      const gaveUp = timeout === undefined ? null : sleep(timeout, 'timeout' as const, { signal: run.abort.signal })
      const outcome = await Promise.race([waited.then(() => 'ok' as const), ...(gaveUp ? [gaveUp] : []), aborted(run.abort.signal)])
      if (outcome === 'timeout') throw new CliError(`${peers.count} of ${waitPeers} peers connected within ${timeout} ms`, EXIT.TIMEOUT)
      if (outcome === 'aborted') return EXIT.OK
    }
    const started = Date.now()
    for await (const frames of pushInput(values, run.abort.signal)) {
      if (run.stopping) break
      if (rate !== undefined) {
        // Paced from the start, not per message, so a slow send does not lower the rate.
        const due = started + (state.accepted * 1000) / rate - Date.now()
        if (due > 0) await sleep(due, undefined, { signal: run.abort.signal })
      }
      await sendCounted(sock, peers, state, frames)
    }
  } catch (err) {
    if ((err as Partial<CodedError>).code === 'EAGAIN') {
      throw new CliError(`no peer took a message within ${timeout} ms (--timeout)`, EXIT.TIMEOUT)
    }
    if ((err as Error).name === 'AbortError') return EXIT.OK
    rethrowUnlessStopping(run, err)
  }
  return run.shutdown()
}

/** Settles never, or with 'aborted' once `signal` fires. */
function aborted(signal: AbortSignal): Promise<'aborted'> {
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve('aborted'), { once: true }))
}

// ---------------------------------------------------------------------------------------
// pull

type Format = 'text' | 'json' | 'hex' | 'base64'
const FORMATS: readonly Format[] = ['text', 'json', 'hex', 'base64']

const utf8 = new TextDecoder('utf-8', { fatal: true })

/** A frame for --format json: its text if it is valid UTF-8, else {"base64": …}. */
function jsonFrame(frame: Buffer): string | { base64: string } {
  try {
    return utf8.decode(frame)
  } catch {
    return { base64: frame.toString('base64') }
  }
}

/** How each received message is written to stdout. */
function formatter(format: Format, delimiter: Buffer, frameDelimiter: Buffer): (frames: Buffer[]) => Buffer {
  if (format === 'json') return (frames) => Buffer.from(JSON.stringify(frames.map(jsonFrame)) + '\n')
  const encode = format === 'text' ? (f: Buffer) => f : (f: Buffer) => Buffer.from(f.toString(format))
  return (frames) => {
    const parts: Buffer[] = []
    frames.forEach((f, i) => {
      if (i > 0) parts.push(frameDelimiter)
      parts.push(encode(f))
    })
    parts.push(delimiter)
    return Buffer.concat(parts)
  }
}

/** Writes to stdout, waiting while its buffer is full (so a slow reader slows receiving). */
async function writeOut(chunk: Buffer, signal: AbortSignal): Promise<void> {
  if (process.stdout.write(chunk)) return
  await Promise.race([new Promise((resolve) => process.stdout.once('drain', resolve)), aborted(signal)])
}

async function pull(run: Run, values: Values, args: string[]): Promise<number> {
  const list = endpoints(args, defaultBind(values, false))
  const format = (str(values, 'format') ?? 'text') as Format
  if (!FORMATS.includes(format)) throw usageError(`--format takes ${FORMATS.join(', ')}; got "${format}"`)
  const count = int(values, 'count', 1)
  const timeout = int(values, 'timeout', 1)
  const write = formatter(
    format,
    unescapeDelimiter(str(values, 'delimiter') ?? '\\n', 'delimiter'),
    unescapeDelimiter(str(values, 'frame-delimiter') ?? '\\t', 'frame-delimiter'),
  )
  const options = optionsFor('Pull', socketOptions(values))
  // The idle limit is the socket's own receive timeout: it runs only while we wait.
  if (timeout !== undefined) options.receiveTimeout = timeout

  const sock = new Pull(options)
  new Peers(sock, run.command, values.verbose === true)
  let received = 0
  run.onShutdown(async () => {
    await sock.close()
    if (values.stats) say(run.command, `received ${plural(received, 'message')}`)
    return EXIT.OK
  })
  // `| head -n 1`: the reader is gone, so is the point of receiving (a quiet end, as
  // `yes | head` is); any other write error is an error.
  const output: { error?: Error } = {}
  process.stdout.on('error', (err: CodedError) => {
    if (err.code !== 'EPIPE') output.error = err
    run.abort.abort()
    // Also ends a receive that waits: closing rejects it.
    void run.shutdown()
  })
  await attach(sock, list, run.command, values.verbose === true)

  while (count === undefined || received < count) {
    let frames: Buffer[]
    try {
      frames = await sock.receive()
    } catch (err) {
      if ((err as Partial<CodedError>).code === 'EAGAIN') {
        await run.shutdown()
        const short = count === undefined ? received === 0 : received < count
        if (short) say(run.command, `${received}${count === undefined ? '' : ` of ${count}`} messages received, then nothing for ${timeout} ms (--timeout)`)
        return short ? EXIT.TIMEOUT : EXIT.OK
      }
      rethrowUnlessStopping(run, err)
      break
    }
    received++
    await writeOut(write(frames), run.abort.signal)
    if (run.abort.signal.aborted) break
  }
  const status = await run.shutdown()
  if (output.error) throw new CliError(`cannot write to stdout: ${output.error.message}`, EXIT.ERROR)
  return status
}

// ---------------------------------------------------------------------------------------
// relay

async function relay(run: Run, values: Values, args: string[]): Promise<number> {
  if (args.length !== 2) throw usageError(`relay takes <pull-endpoint> <push-endpoint>, got ${args.length} endpoint${args.length === 1 ? '' : 's'}`)
  const inward = endpoint(args[0]!, values['pull-connect'] !== true)
  const outward = endpoint(args[1]!, values['push-connect'] !== true)
  const count = int(values, 'count', 1)
  const options = socketOptions(values)
  const verbose = values.verbose === true

  const source = new Pull(optionsFor('Pull', options))
  const sink = new Push(optionsFor('Push', options))
  sink._warnOnLinger(false)
  new Peers(source, `${run.command} (pull side)`, verbose)
  const peers = new Peers(sink, `${run.command} (push side)`, verbose)
  const state: SendState = { accepted: 0, queuedWhileAlone: 0, waiting: false }
  run.onShutdown(async () => {
    // Intake first: nothing new is taken on that the PUSH side would then have to flush.
    await source.close()
    const status = await closePush(sink, peers, state, [outward], run)
    if (values.stats) say(run.command, `forwarded ${plural(state.accepted, 'message')}`)
    return status
  })
  await attach(source, [inward], run.command, verbose)
  await attach(sink, [outward], run.command, verbose)

  try {
    while (count === undefined || state.accepted < count) {
      // Awaiting each send is the backpressure: a full PUSH side stops reading the PULL side.
      await sendCounted(sink, peers, state, await source.receive())
    }
  } catch (err) {
    rethrowUnlessStopping(run, err)
  }
  return run.shutdown()
}

// ---------------------------------------------------------------------------------------
// main

const COMMANDS: Record<Command, (run: Run, values: Values, args: string[]) => Promise<number>> = { push, pull, relay }

/** Runs the tool with `argv` (without node and the script) and exits the process. */
export async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    const topic = name === 'help' && rest[0] && rest[0] in HELP ? rest[0] : 'main'
    // Asked for: stdout and success; not asked for (no command): stderr and a usage error.
    ;(name === undefined ? process.stderr : process.stdout).write(HELP[topic] + '\n')
    process.exit(name === undefined ? EXIT.USAGE : EXIT.OK)
  }
  if (name === 'keygen') {
    if (rest.length && rest[0] !== '-h' && rest[0] !== '--help') {
      process.stderr.write(`zeropipe keygen: takes no arguments, got "${rest[0]}"\n`)
      process.exit(EXIT.USAGE)
    }
    // Single quotes are safe: Z85 has neither quotes nor backslashes, so the lines can be
    // sourced by a shell or read by a dotenv file as they are.
    const { publicKey, secretKey } = curveKeyPair()
    process.stdout.write(
      rest.length
        ? 'Usage: zeropipe keygen\n\nPrints a new CURVE key pair as ZEROPIPE_CURVE_PUBLIC_KEY and ZEROPIPE_CURVE_SECRET_KEY lines.\n' +
            "A server's public key is its clients' ZEROPIPE_CURVE_SERVER_KEY; keep the secret key secret.\n"
        : `ZEROPIPE_CURVE_PUBLIC_KEY='${publicKey}'\nZEROPIPE_CURVE_SECRET_KEY='${secretKey}'\n`,
    )
    process.exit(EXIT.OK)
  }
  if (name === '--version' || name === '-V') {
    const { version } = require('../package.json') as { version: string }
    process.stdout.write(`zeropipe ${version}\n`)
    process.exit(EXIT.OK)
  }
  if (!(name in COMMANDS)) {
    process.stderr.write(`zeropipe: unknown command "${name}"\nRun 'zeropipe --help' for the commands.\n`)
    process.exit(EXIT.USAGE)
  }
  const command = name as Command
  const run = new Run(command)
  let status: number
  try {
    const { values, endpoints: args } = parse(command, rest)
    if (values.help) {
      process.stdout.write(HELP[command] + '\n')
      process.exit(EXIT.OK)
    }
    run.listen()
    status = await COMMANDS[command](run, values, args)
  } catch (err) {
    if (run.stopping) return
    const cliErr = err instanceof CliError ? err : new CliError((err as Error).message ?? String(err), EXIT.ERROR)
    say(command, cliErr.message)
    if (cliErr.exitCode === EXIT.USAGE) process.stderr.write(`Run 'zeropipe ${command} --help' for usage.\n`)
    await run.shutdown().catch(() => undefined)
    status = cliErr.exitCode
  }
  // A signal's shutdown ends the process by the signal; nothing more to do here.
  if (run.stopping) return
  process.exit(status)
}
