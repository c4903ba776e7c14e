/**
 * The Redis backplane wire of ASP.NET Core's `Microsoft.AspNetCore.SignalR.StackExchangeRedis`: channel names and
 * payloads, byte for byte, so .NET and Node servers share one Redis. Pure code (no Redis client, no timers); the
 * golden tests in `test/protocol` replay what real .NET servers published.
 *
 * Spec: docs/protocol.md §3.
 */
export * from './channels';
export * from './backplane-protocol';
