/**
 * The two shape tests the hub runtime makes on values hub code returns: whether a value is a promise (or any
 * thenable) to wait for, and whether it is a stream (an async or sync iterable) to pull items from.
 */

/** An iterator of either kind: a streaming method may return an async or a sync iterable. */
export type AnyIterator = Iterator<unknown> | AsyncIterator<unknown>;

/** Whether `value` has a callable `then`: hub code may return a promise of any library. */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as PromiseLike<unknown>).then === 'function'
  );
}

/**
 * The iterator of an async or sync iterable (async preferred), or `undefined` when `value` is not a stream. A
 * string is iterable, but a method returning one did not mean to stream characters: it is not a stream here.
 */
export function iteratorOf(value: unknown): AnyIterator | undefined {
  if ((typeof value !== 'object' && typeof value !== 'function') || value === null) return undefined;
  const asyncIterate = (value as Partial<AsyncIterable<unknown>>)[Symbol.asyncIterator];
  if (typeof asyncIterate === 'function') return asyncIterate.call(value);
  const iterate = (value as Partial<Iterable<unknown>>)[Symbol.iterator];
  if (typeof iterate === 'function') return iterate.call(value);
  return undefined;
}
