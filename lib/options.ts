// The socket options at run time: their table comes from the engine (optionSpecs()), their
// types and docs from lib/generated.ts, made from the same table; this file checks, fills in
// defaults, and defines the option properties of Push and Pull.

import type { CurveOptions } from './curve'
import { OPTION_NAMES, type AllSocketOptions } from './generated'
import { optionSpecs } from './native'

export type OptionName = (typeof OPTION_NAMES)[number]
/** The options of the engine's table (the CURVE options are lib/curve.ts's). */
export type EngineOptions = Omit<AllSocketOptions, keyof CurveOptions>
export type OptionValues = Required<EngineOptions>
/** Who is setting options: a socket type, or the module API's configure(). */
export type Owner = 'Push' | 'Pull' | 'configure()'

// Fails to compile if the generated types and the option list ever disagree.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : never) : never
const typesAgree: Same<keyof EngineOptions, OptionName> = true
void typesAgree

interface Spec {
  name: OptionName
  boolean: boolean
  default: number | boolean
  min: number
  max: number
  only?: 'Push' | 'Pull'
}

const SPECS: Spec[] = optionSpecs().map((s) => ({
  name: s.name as OptionName,
  boolean: s.kind === 'boolean',
  default: s.kind === 'boolean' ? s.defaultValue !== 0 : s.defaultValue,
  min: s.min,
  max: s.max,
  only: (s.only ?? undefined) as Spec['only'],
}))
if (SPECS.length !== OPTION_NAMES.length || SPECS.some((s, i) => s.name !== OPTION_NAMES[i])) {
  throw new Error('zeropipe: the addon and lib/generated.ts list different options; rebuild with `npm run build`')
}
const BY_NAME = new Map(SPECS.map((s) => [s.name as string, s]))

/** Whether `name` means something for `owner` (configure() takes every option). */
export function appliesTo(owner: Owner, name: OptionName): boolean {
  const only = BY_NAME.get(name)?.only
  return owner === 'configure()' || only === undefined || only === owner
}

/** Checks one option: `TypeError` for an unknown name or a wrong type, `RangeError` out of range. */
export function checkOption(owner: Owner, name: string, value: unknown): void {
  const spec = BY_NAME.get(name)
  if (!spec) {
    throw new TypeError(`Unknown option "${name}" for ${owner}; known options: ${OPTION_NAMES.join(', ')}`)
  }
  if (!appliesTo(owner, spec.name)) {
    throw new TypeError(`Option "${name}" applies to ${spec.only} sockets, not ${owner}`)
  }
  if (spec.boolean) {
    if (typeof value !== 'boolean') throw new TypeError(`Option "${name}" must be a boolean, got ${typeof value}`)
    return
  }
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new TypeError(`Option "${name}" must be an integer, got ${typeof value === 'number' ? value : typeof value}`)
  }
  if (value < spec.min || value > spec.max) {
    throw new RangeError(`Option "${name}" must be between ${spec.min} and ${spec.max}, got ${value}`)
  }
}

/** Every option's value: the defaults, overridden by `options` (each checked). */
export function resolveOptions(owner: Owner, options: unknown): OptionValues {
  if (options === undefined || options === null) options = {}
  if (typeof options !== 'object') throw new TypeError(`${owner} options must be an object, got ${typeof options}`)
  const out = {} as Record<string, unknown>
  for (const s of SPECS) out[s.name] = s.default
  for (const [name, value] of Object.entries(options as object)) {
    checkOption(owner, name, value)
    out[name] = value
  }
  return out as OptionValues
}

/** The values in the order the addon takes them. */
export function nativeValues(values: OptionValues): number[] {
  return SPECS.map((s) => Number(values[s.name]))
}

/** The options of `values` that apply to sockets of type `owner`. */
export function optionsFor(owner: 'Push' | 'Pull', values: AllSocketOptions): AllSocketOptions {
  const out: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(values)) if (appliesTo(owner, name as OptionName)) out[name] = value
  return out as AllSocketOptions
}

/** What a class needs to have option properties. */
export interface HasOptions {
  readonly closed: boolean
  /** @internal */
  _options(): OptionValues
  /** @internal */
  _setOptions(values: OptionValues): void
}

/**
 * The options as properties (`push.linger = 0`), defined once on each prototype: accessors
 * defined per instance would turn every socket into a slow dictionary-mode object, and
 * every field read on the hot path into a generic lookup (5% of a 16 B run in `perf`).
 */
export function defineOptionProperties(cls: { prototype: HasOptions }, owner: 'Push' | 'Pull'): void {
  for (const s of SPECS) {
    if (!appliesTo(owner, s.name)) continue
    Object.defineProperty(cls.prototype, s.name, {
      get(this: HasOptions) {
        return this._options()[s.name]
      },
      set(this: HasOptions, value: unknown) {
        checkOption(owner, s.name, value)
        this._setOptions({ ...this._options(), [s.name]: value })
      },
    })
  }
}
