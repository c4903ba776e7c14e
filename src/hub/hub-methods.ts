/**
 * The method table of a hub class: which names clients may invoke, found once at registration.
 *
 * Lookup is case-insensitive, as ASP.NET Core's (`Dictionary` with `OrdinalIgnoreCase`; spec §2.6), so a client
 * calling `SendMessage` reaches a TypeScript method `sendMessage`.
 */
import { Hub, type ArgumentSchema, type HubClass } from './hub';

/** One invokable hub method. */
export interface HubMethod {
  /** The method's name as declared. */
  readonly name: string;
  /** The implementation, called with the hub instance as `this`. */
  readonly implementation: (...args: unknown[]) => unknown;
  /** Arguments a client must send: the schema count, else the declared parameter count. */
  readonly parameterCount: number;
  /** Argument schemas, when the hub declares them. */
  readonly schemas: readonly ArgumentSchema[] | undefined;
}

/** Names on every hub that are lifecycle hooks or infrastructure, never invokable. */
const RESERVED = new Set(['constructor', 'onconnected', 'ondisconnected']);

/** Thrown at registration for a hub class clients could not call unambiguously. */
export class HubDefinitionError extends Error {
  override readonly name = 'HubDefinitionError';
}

/**
 * Collects the invokable methods of a hub class and its ancestors below {@link Hub}, keyed by lower-cased name.
 * Throws when two methods differ only in case (.NET: overloading is not supported).
 */
export function discoverHubMethods(hubClass: HubClass): ReadonlyMap<string, HubMethod> {
  if (!(hubClass.prototype instanceof Hub)) {
    throw new HubDefinitionError(`${hubClass.name || 'The hub class'} must extend Hub.`);
  }
  const schemas = (hubClass as unknown as typeof Hub).schemas ?? {};
  const methods = new Map<string, HubMethod>();
  for (let proto = hubClass.prototype; proto !== Hub.prototype && proto !== null; proto = Object.getPrototypeOf(proto)) {
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
      const methodSchemas = schemas[name];
      methods.set(key, {
        name,
        implementation: descriptor.value as (...args: unknown[]) => unknown,
        parameterCount: methodSchemas?.length ?? (descriptor.value as (...args: unknown[]) => unknown).length,
        schemas: methodSchemas,
      });
    }
  }
  for (const name of Object.keys(schemas)) {
    if (!methods.has(name.toLowerCase())) {
      throw new HubDefinitionError(`Schemas are declared for '${name}', which is not a method of ${hubClass.name}.`);
    }
  }
  return methods;
}
