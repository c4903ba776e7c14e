/** Query-string access with ASP.NET Core's rules. */

/**
 * A query value looked up case-insensitively, as ASP.NET Core's query collection does; repeated keys are joined
 * with commas (how `StringValues` turns into a string).
 *
 * Several lookups run on every negotiate and transport request (`id`, `negotiateVersion`, the access token), so
 * this walks the keys without building entries or arrays, and lower-cases only keys not spelled as asked.
 */
export function queryValue(query: unknown, name: string): string | undefined {
  if (typeof query !== 'object' || query === null) return undefined;
  const record = query as Record<string, unknown>;
  const wanted = name.toLowerCase();
  let found: string | undefined;
  for (const key of Object.keys(record)) {
    if (key !== name && key.toLowerCase() !== wanted) continue;
    const value = record[key];
    let text: string;
    if (Array.isArray(value)) {
      if (value.length === 0) continue;
      text = value.map(String).join(',');
    } else if (value !== undefined) text = String(value);
    else continue;
    found = found === undefined ? text : `${found},${text}`;
  }
  return found;
}
