/**
 * PENDING — not executed yet: the client-results work in `src/hub/` does not yet treat an answer that is not a
 * valid result as .NET does. When it does, move these scenarios to `client-results.ts`.
 *
 * - A Completion with neither `result` nor `error`: .NET fails the call with a `HubException` (its default message,
 *   "Exception of type 'Microsoft.AspNetCore.SignalR.HubException' was thrown."); we complete it with `null`.
 * - A `result` that does not convert to the type the hub asked for (`InvokeAsync<string>` answered with 42): .NET
 *   fails the call ("Error trying to deserialize result to String. …"); we return the value unchecked.
 */
import type { Scenario, ServerSettings } from '../engine/scenario';
import { invoke, negotiatedAndConnected, record } from './frames';

/** Negotiate shows only WebSockets on both servers, so its body compares equal. */
const WEBSOCKETS_ONLY: ServerSettings = { transports: ['WebSockets'] };

export const pendingClientResultScenarios: Scenario[] = [
  {
    name: 'a client that answers without a result',
    settings: WEBSOCKETS_ONLY,
    steps: [
      ...negotiatedAndConnected(),
      { send: invoke('1', 'AskClient', '{{id}}') },
      { receive: 1, save: { call: 'invocationId' } },
      { send: record('{"type":3,"invocationId":"{{call}}"}') },
      { receive: 1 },
    ],
  },
  {
    name: 'an answer of the wrong type',
    settings: WEBSOCKETS_ONLY,
    steps: [
      ...negotiatedAndConnected(),
      { send: invoke('1', 'AskClient', '{{id}}') },
      { receive: 1, save: { call: 'invocationId' } },
      { send: record('{"type":3,"invocationId":"{{call}}","result":42}') },
      { receive: 1 },
    ],
  },
];
