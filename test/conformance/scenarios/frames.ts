/**
 * Building blocks of the scenario tables: hub protocol frames as the bytes a client sends, and the step sequences
 * most scenarios start with.
 */
import type { KnownDifference, Observation, Scenario, Step } from '../engine/scenario';

/** The JSON record separator. */
export const RS = '\u001e';

/** The handshake the official client sends for JSON (docs/protocol.md §2.2). */
export const HANDSHAKE = `{"protocol":"json","version":1}${RS}`;

/** A client Ping. */
export const PING = `{"type":6}${RS}`;

/** A client Close, as the official client sends it on `stop()` (since .NET 8). */
export const CLOSE = `{"type":7}${RS}`;

/** A record: JSON text and its separator. */
export function record(json: string): string {
  return json + RS;
}

/**
 * An Invocation of `target` as the bytes a client sends, with `.NET`'s property order; `invocationId` `undefined`
 * for a non-blocking one. Arguments are written with `JSON.stringify`; use {@link record} for exact literals.
 */
export function invoke(invocationId: string | undefined, target: string, ...args: unknown[]): string {
  const id = invocationId === undefined ? '' : `"invocationId":${JSON.stringify(invocationId)},`;
  return record(`{"type":1,${id}"target":${JSON.stringify(target)},"arguments":${JSON.stringify(args)}}`);
}

/**
 * Opens a WebSocket without negotiate (the `skipNegotiation` path) and completes the JSON handshake: the first
 * observations are `{ open, accepted }` and the `{}` answer.
 */
export function connected(query = ''): Step[] {
  return [{ open: query }, { send: HANDSHAKE }, { receive: 1 }];
}

/** Negotiates (v1), opens the WebSocket with the token and completes the handshake; `{{id}}` is the connection id. */
export function negotiatedAndConnected(query = ''): Step[] {
  const extra = query === '' ? '' : `&${query}`;
  return [{ negotiate: '?negotiateVersion=1' }, { open: `?id={{token}}${extra}` }, { send: HANDSHAKE }, { receive: 1 }];
}

/** What {@link connected} observes: the socket opens and the handshake is answered `{}`. */
export const CONNECTED: Observation = [
  { open: '', accepted: true },
  { receive: 1, messages: ['{}'], frames: 'text' },
];

/**
 * Marks `scenario` with the `KNOWN-DIFFERENCES.md` entry `entry` and each server's own observation (both written
 * out in full, so the difference stays exactly the documented one).
 */
export function differs(
  scenario: Scenario,
  entry: KnownDifference['entry'],
  reference: Observation,
  ours: Observation,
): Scenario {
  return { ...scenario, knownDifference: { entry, reference, ours } };
}

/** Marks `scenario` as one that sends to every connection of its server, so it runs alone (see `Scenario.exclusive`). */
export function alone(scenario: Scenario): Scenario {
  return { ...scenario, exclusive: true };
}
