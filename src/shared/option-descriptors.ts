/**
 * One descriptor per plugin option: the single source of its default, its validation, its environment variable (when
 * the server process reads it from one) and its README row. The option interfaces (`HubConnectionOptions`,
 * `HttpDispatcherOptions`, `RedisBackplaneOptions`, `SignalROptions`) carry the TSDoc; each descriptor table is
 * typed against its interface, and a test holds the interfaces' `@default` tags and the README tables to the
 * descriptors. A leaf: it imports nothing of ours, so every layer can describe its options here without importing
 * another layer.
 */
import { z } from 'zod';

/**
 * How the environment writes an option, when a server process reads it from a variable (`src/config.ts`
 * turns this into a configuration option).
 */
export type EnvironmentForm =
  /** A decimal integer within a range. */
  | { readonly type: 'integer'; readonly min: number; readonly max?: number }
  /** An integer, or `none` for `null` (no limit). */
  | { readonly type: 'limit'; readonly min: number }
  /** `true`/`false` (or `1`/`0`, `yes`/`no`, `on`/`off`). */
  | { readonly type: 'boolean' }
  /** A comma-separated list of distinct words among `values`; `noun` names them in messages. */
  | { readonly type: 'list'; readonly values: readonly [string, ...string[]]; readonly noun: string };

/** The environment variable of an option. */
export interface EnvironmentBinding {
  /** The variable's name, e.g. `SIGNALR_KEEP_ALIVE_INTERVAL_MS`. */
  readonly variable: string;
  readonly form: EnvironmentForm;
}

/** Where a plugin option may be set. */
export type OptionScope =
  /** At the top level, for every hub, and per hub in `hubs: [{ … }]`. */
  | 'every hub'
  /** At the top level only. */
  | 'top level'
  /** Per hub only. */
  | 'per hub';

/**
 * One option: what it does, its default and how it is validated. Invariant in `T`, so a table typed
 * {@link DescriptorsOf} an interface proves each descriptor has exactly its property's type.
 */
export interface OptionDescriptor<in out T> {
  /** What the option does: the README row's text, a fragment (lower case, no final period). */
  readonly description: string;
  /** Validates a value given for the option (not `undefined`: every option may be left out). */
  readonly schema: z.ZodType<T>;
  /** The value the option takes when left out; absent when leaving it out turns the feature off. */
  readonly default?: T;
  /** Whether the option must be given (it then has no default). */
  readonly required?: true;
  /**
   * The default as documentation writes it, for a default that is not a plain value (a function, a computed value,
   * or none). Plain values are written from `default` itself.
   */
  readonly defaultText?: string;
  /** @default 'every hub' */
  readonly scope?: OptionScope;
  /** The environment variable that sets the option in a server process; absent when there is none. */
  readonly env?: EnvironmentBinding;
}

/** A descriptor for each property of `T`, of that property's type. */
export type DescriptorsOf<T> = { readonly [K in keyof T]-?: OptionDescriptor<Exclude<T[K], undefined>> };

/** A table of descriptors by option name. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type DescriptorTable = Readonly<Record<string, OptionDescriptor<any>>>;

/** The defaults of a table whose every option has one. */
export function defaultsOf<T>(table: DescriptorsOf<T>): T {
  const defaults: Record<string, unknown> = {};
  for (const [key, descriptor] of Object.entries(table as DescriptorTable)) {
    if (!('default' in descriptor)) throw new Error(`option ${key} has no default`);
    defaults[key] = descriptor.default;
  }
  return Object.freeze(defaults) as T;
}

/** The zod shape of a table: each option optional, validated by its schema (put a required one in by its schema). */
export function optionalShape<T extends DescriptorTable>(
  table: T,
): { readonly [K in keyof T]: z.ZodOptional<T[K]['schema']> } {
  const shape: Record<string, z.ZodOptional<z.ZodType>> = {};
  for (const [key, descriptor] of Object.entries(table)) shape[key] = descriptor.schema.optional();
  return shape as { readonly [K in keyof T]: z.ZodOptional<T[K]['schema']> };
}

/** A default written as TypeScript writes the value: `15000`, `null`, `'access_token'`, `['a', 'b']`. */
export function formatValue(value: unknown): string {
  if (typeof value === 'string') return `'${value}'`;
  if (Array.isArray(value)) return `[${value.map(formatValue).join(', ')}]`;
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  throw new Error(`a default of type ${typeof value} needs a defaultText`);
}

/** How documentation (TSDoc `@default`, the README) writes an option's default. */
export function documentedDefault(descriptor: OptionDescriptor<unknown>): string {
  if (descriptor.required === true) return '(required)';
  if (descriptor.defaultText !== undefined) return descriptor.defaultText;
  if (!('default' in descriptor)) throw new Error('an option without a default needs a defaultText');
  return formatValue(descriptor.default);
}

// -- builders -----------------------------------------------------------------------------------------------------
// Each builds the plugin's schema exactly as the options were always validated (zod's own messages name the
// option in `SignalROptionsError`), and the environment form from the same bounds.

/** Extra parts of a descriptor a builder does not decide. */
export interface DescriptorExtras {
  readonly scope?: OptionScope;
  readonly defaultText?: string;
  /** The environment variable; its form follows from the builder. */
  readonly env?: string;
}

function environment(extras: DescriptorExtras | undefined, form: EnvironmentForm): EnvironmentBinding | undefined {
  return extras?.env === undefined ? undefined : { variable: extras.env, form };
}

function describe<T>(
  description: string,
  schema: z.ZodType<T>,
  defaultValue: { value: T } | undefined,
  extras: DescriptorExtras | undefined,
  form: EnvironmentForm | undefined,
): OptionDescriptor<T> {
  const env = form === undefined ? undefined : environment(extras, form);
  return Object.freeze({
    description,
    schema,
    ...(defaultValue !== undefined && { default: defaultValue.value }),
    ...(extras?.defaultText !== undefined && { defaultText: extras.defaultText }),
    ...(extras?.scope !== undefined && { scope: extras.scope }),
    ...(env !== undefined && { env }),
  });
}

function integerSchema(min: number): z.ZodNumber {
  return min === 1 ? z.number().int().positive() : z.number().int().min(min);
}

/** An integer of at least `min` (1 unless given). */
export function integerDescriptor(
  description: string,
  defaultValue: number,
  extras?: DescriptorExtras & { readonly min?: number },
): OptionDescriptor<number> {
  const min = extras?.min ?? 1;
  return describe(description, integerSchema(min), { value: defaultValue }, extras, { type: 'integer', min });
}

/** A positive integer bound, or `null` for none. */
export function limitDescriptor(
  description: string,
  defaultValue: number | null,
  extras?: DescriptorExtras,
): OptionDescriptor<number | null> {
  return describe(description, integerSchema(1).nullable(), { value: defaultValue }, extras, { type: 'limit', min: 1 });
}

/** `true` or `false`. */
export function booleanDescriptor(
  description: string,
  defaultValue: boolean,
  extras?: DescriptorExtras,
): OptionDescriptor<boolean> {
  return describe(description, z.boolean(), { value: defaultValue }, extras, { type: 'boolean' });
}

/** A list of distinct words among `values`, in any order and any subset but the empty one. */
export function subsetDescriptor<const T extends readonly [string, ...string[]]>(
  description: string,
  values: T,
  defaultValue: readonly T[number][],
  noun: string,
  extras?: DescriptorExtras,
): OptionDescriptor<readonly T[number][]> {
  const schema = z
    .array(z.enum(values as unknown as [T[number], ...T[number][]]))
    .refine((list) => new Set(list).size === list.length, `lists a ${noun.replace(/s$/, '')} twice`);
  return describe(description, schema as unknown as z.ZodType<readonly T[number][]>, { value: defaultValue }, extras, {
    type: 'list',
    values,
    noun,
  });
}

/** A function; `defaultText` says what the default one does. */
export function functionDescriptor<T extends (...args: never[]) => unknown>(
  description: string,
  defaultValue: T,
  defaultText: string,
  extras?: Omit<DescriptorExtras, 'defaultText' | 'env'>,
): OptionDescriptor<T> {
  return describe(
    description,
    z.custom<T>((value) => typeof value === 'function', 'must be a function'),
    { value: defaultValue },
    { ...extras, defaultText },
    undefined,
  );
}

/**
 * Any other option: its own schema, and its default — or `defaultText` alone for an option that is off, or whose
 * default is computed, when left out; or `required` for one that must be given.
 */
export function customDescriptor<T>(
  description: string,
  schema: z.ZodType<T>,
  defaults:
    | { readonly default: T; readonly defaultText?: string }
    | { readonly defaultText: string }
    | { readonly required: true },
  extras?: Omit<DescriptorExtras, 'defaultText' | 'env'>,
): OptionDescriptor<T> {
  if ('required' in defaults)
    return Object.freeze({ ...describe(description, schema, undefined, extras, undefined), required: true });
  return describe(
    description,
    schema,
    'default' in defaults ? { value: defaults.default } : undefined,
    { ...extras, ...(defaults.defaultText !== undefined && { defaultText: defaults.defaultText }) },
    undefined,
  );
}
