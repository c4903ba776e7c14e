/**
 * The method table of a hub class: which names clients may invoke, found once at registration.
 *
 * Lookup is case-insensitive, as ASP.NET Core's (`Dictionary` with `OrdinalIgnoreCase`; docs/protocol.md §2.6), so a
 * client calling `SendMessage` reaches a TypeScript method `sendMessage`. Whether a method streams its result and which
 * parameters are client-to-server streams is decided here too, as .NET's `HubMethodDescriptor` does from the
 * method's signature (docs/protocol.md §2.9).
 */
import {
  Hub,
  isClientStreamParameter,
  type ArgumentSchema,
  type HubClass,
  type HubParameterSchema,
  type MethodAuthorization,
} from './hub';
import type { SignalRErrorCode } from '../shared/errors';

/** One invokable hub method. */
export interface HubMethod {
  /** The method's name as declared. */
  readonly name: string;
  /** The implementation, called with the hub instance as `this`. */
  readonly implementation: (...args: unknown[]) => unknown;
  /**
   * Arguments a client must send in `arguments`: the schema count without stream parameters, else the declared
   * parameter count.
   */
  readonly parameterCount: number;
  /** Schemas of the `arguments`, in order, when the hub declares them. */
  readonly schemas: readonly ArgumentSchema[] | undefined;
  /**
   * The client-to-server stream parameters, in parameter order, or `undefined` when there are none. A method with
   * stream parameters is a "stream call": it runs beside other invocations, outside the invocation limit.
   */
  readonly streamParameters: readonly StreamParameter[] | undefined;
  /** Whether the method streams its result: clients must call it with StreamInvocation (`connection.stream`). */
  readonly streaming: boolean;
  /** Who may call it, when the hub restricts it (`static authorize`). */
  readonly authorize: MethodAuthorization | undefined;
}

/** Where a client-to-server stream goes in a method's parameter list. */
export interface StreamParameter {
  /** Position among all parameters. */
  readonly position: number;
  /** Checks each item, if declared. */
  readonly itemSchema: ArgumentSchema | undefined;
}

/** Names on every hub that are lifecycle hooks or infrastructure, never invokable. */
const RESERVED = new Set(['constructor', 'onconnected', 'ondisconnected']);

/** Thrown at registration for a hub class clients could not call unambiguously. */
export class HubDefinitionError extends Error {
  override readonly name = 'HubDefinitionError';
  /** The stable code of this error ({@link errorCodes}). */
  readonly code: SignalRErrorCode = 'SIGNALR_ERR_HUB_DEFINITION';
}

// The constructors of generator functions are not globals; reach them through a function of each kind.
const AsyncGeneratorFunction = Object.getPrototypeOf(async function* () {}).constructor as unknown;
const GeneratorFunction = Object.getPrototypeOf(function* () {}).constructor as unknown;

/** Whether a function is an `async *` or `*` generator: calling it returns an iterator of its items. */
function isGeneratorFunction(fn: unknown): boolean {
  if (typeof fn !== 'function') return false;
  const constructor = Object.getPrototypeOf(fn)?.constructor as unknown;
  return constructor === AsyncGeneratorFunction || constructor === GeneratorFunction;
}

/**
 * Collects the invokable methods of a hub class and its ancestors below {@link Hub}, keyed by lower-cased name.
 * Throws when two methods differ only in case (.NET: overloading is not supported), or when `schemas` or
 * `streamingMethods` name a method the class does not have.
 */
export function discoverHubMethods(hubClass: HubClass): ReadonlyMap<string, HubMethod> {
  if (!(hubClass.prototype instanceof Hub)) {
    throw new HubDefinitionError(`${hubClass.name || 'The hub class'} must extend Hub.`);
  }
  const statics = hubClass as unknown as typeof Hub;
  const schemas = statics.schemas ?? {};
  const streamingNames = new Set(statics.streamingMethods ?? []);
  const authorization = statics.authorize ?? {};
  const methods = new Map<string, HubMethod>();
  for (
    let proto = hubClass.prototype;
    proto !== Hub.prototype && proto !== null;
    proto = Object.getPrototypeOf(proto)
  ) {
    for (const name of Object.getOwnPropertyNames(proto)) {
      const key = name.toLowerCase();
      if (RESERVED.has(key) || name.startsWith('_')) continue;
      const descriptor = Object.getOwnPropertyDescriptor(proto, name);
      if (descriptor === undefined || typeof descriptor.value !== 'function') continue;
      const existing = methods.get(key);
      if (existing !== undefined) {
        // A subclass override of the same name shadows its ancestor; two spellings in one class are ambiguous.
        if (existing.name !== name) {
          throw new HubDefinitionError(`Duplicate definitions of '${name}'. Overloading is not supported.`);
        }
        continue;
      }
      const implementation = descriptor.value as (...args: unknown[]) => unknown;
      methods.set(key, {
        name,
        implementation,
        ...parameterLayout(schemas[name], implementation.length),
        streaming: streamingNames.has(name) || isGeneratorFunction(implementation),
        authorize: authorization[name],
      });
    }
  }
  for (const name of Object.keys(schemas)) {
    if (!methods.has(name.toLowerCase())) {
      throw new HubDefinitionError(`Schemas are declared for '${name}', which is not a method of ${hubClass.name}.`);
    }
  }
  for (const name of Object.keys(authorization)) {
    if (!methods.has(name.toLowerCase())) {
      throw new HubDefinitionError(
        `Authorization is declared for '${name}', which is not a method of ${hubClass.name}.`,
      );
    }
  }
  for (const name of streamingNames) {
    if (!methods.has(name.toLowerCase())) {
      throw new HubDefinitionError(`'${name}' is listed in streamingMethods but is not a method of ${hubClass.name}.`);
    }
  }
  return methods;
}

/** Splits a declared parameter list into the argument schemas and the stream parameters. */
function parameterLayout(
  declared: readonly HubParameterSchema[] | undefined,
  declaredLength: number,
): Pick<HubMethod, 'parameterCount' | 'schemas' | 'streamParameters'> {
  if (declared === undefined)
    return { parameterCount: declaredLength, schemas: undefined, streamParameters: undefined };
  const schemas: ArgumentSchema[] = [];
  const streams: StreamParameter[] = [];
  declared.forEach((entry, position) => {
    if (isClientStreamParameter(entry)) streams.push({ position, itemSchema: entry.itemSchema });
    else schemas.push(entry);
  });
  return {
    parameterCount: schemas.length,
    schemas,
    streamParameters: streams.length === 0 ? undefined : streams,
  };
}
