/** Query-string access with ASP.NET Core's rules. */

/**
 * A query value looked up case-insensitively, as ASP.NET Core's query collection does; repeated keys are joined
 * with commas (how `StringValues` turns into a string).
 */
export function queryValue(query: unknown, name: string): string | undefined {
  if (typeof query !== 'object' || query === null) return undefined;
  const wanted = name.toLowerCase();
  const values: string[] = [];
  for (const [key, value] of Object.entries(query as Record<string, unknown>)) {
    if (key.toLowerCase() !== wanted) continue;
    if (Array.isArray(value)) values.push(...value.map(String));
    else if (value !== undefined) values.push(String(value));
  }
  return values.length === 0 ? undefined : values.join(',');
}
