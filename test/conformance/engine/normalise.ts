/**
 * Normalisation of observations: values that are random by design (connection ids and tokens, server-chosen
 * invocation ids, the current date) are replaced by placeholders, so two servers' observations compare equal when
 * they behave alike. Everything else is compared byte for byte.
 *
 * Placeholders are numbered in order of first appearance within one scenario run, so "the same id twice" and "two
 * different ids" stay distinguishable.
 */

/** The fixed `Expires` date .NET sends on long polls; it is meaningful, not random, so it is kept. */
const EPOCH_DATE = 'Thu, 01 Jan 1970 00:00:00 GMT';
const HTTP_DATE = /\b(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT\b/g;
const CONNECTION_KEY = /^[A-Za-z0-9_-]{22}$/;
/** A connection id or token the scenario did not save: 16 random bytes in Base64Url (docs/protocol.md §1.3). */
const UNSAVED_CONNECTION_KEY = /"(connectionId|connectionToken)":"([A-Za-z0-9_-]{22})"/g;
/** The invocation id of an Invocation the server sends (a client-result request); each server numbers its own. */
const SERVER_INVOCATION_ID = /^(\{"type":1,(?:"headers":\{[^}]*\},)?"invocationId":")([^"]+)(")/;

/** A server-chosen invocation id quoted in an error text (`… is not valid for invocation ID 's2'.`). */
const QUOTED_INVOCATION_ID = /(invocation ID ')([^']+)(')/g;

/** Replaces random values by placeholders; one instance per scenario run. */
export class Normaliser {
  /** Known random value → its placeholder. */
  private readonly known = new Map<string, string>();
  /** Server-chosen invocation ids → placeholders; kept apart because short ids like `s1` must not be replaced
   * inside other text. */
  private readonly invocationIds = new Map<string, string>();
  private unnamed = 0;

  /**
   * Registers a connection id or token saved by a step, e.g. the token as `<token>`; later occurrences anywhere
   * become that. A value that is not 16 bytes of Base64Url (docs/protocol.md §1.3) gets a placeholder saying so, so a
   * server with ids of another shape does not compare equal.
   */
  remember(value: string, name: string): void {
    if (value === '' || this.known.has(value)) return;
    const shape = CONNECTION_KEY.test(value) ? '' : ` (${value.length} chars, not 22 of Base64Url)`;
    this.known.set(value, `<${name}${shape}>`);
  }

  /** The text with every known random value and every recognisable unknown one replaced. */
  text(input: string): string {
    let output = input;
    for (const [value, placeholder] of this.known) output = output.split(value).join(placeholder);
    output = output.replace(UNSAVED_CONNECTION_KEY, (_match, property: string, value: string) => {
      if (!this.known.has(value)) this.known.set(value, `<random-${++this.unnamed}>`);
      return `"${property}":"${this.known.get(value)}"`;
    });
    output = output.replace(SERVER_INVOCATION_ID, (_match, before: string, id: string, after: string) => {
      if (!this.invocationIds.has(id)) this.invocationIds.set(id, `<server-invocation-${this.invocationIds.size + 1}>`);
      return `${before}${this.invocationIds.get(id)}${after}`;
    });
    // Only ids seen in an earlier Invocation: the number a server gives its n-th question depends on the scenarios
    // that ran on it before.
    output = output.replace(QUOTED_INVOCATION_ID, (match, before: string, id: string, after: string) => {
      const placeholder = this.invocationIds.get(id);
      return placeholder === undefined ? match : `${before}${placeholder}${after}`;
    });
    return output.replace(HTTP_DATE, (date) => (date === EPOCH_DATE ? date : '<date>'));
  }

  /** Applies {@link text} to every string in a JSON-like value. */
  value<T>(input: T): T {
    if (typeof input === 'string') return this.text(input) as T;
    if (Array.isArray(input)) return input.map((item: unknown) => this.value(item)) as T;
    if (typeof input === 'object' && input !== null) {
      const output: Record<string, unknown> = {};
      for (const [key, item] of Object.entries(input)) output[key] = this.value(item);
      return output as T;
    }
    return input;
  }
}
