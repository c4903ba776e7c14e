/**
 * The scenario tables, and the scenarios that can run again over MessagePack: those whose steps are all the official
 * client's (with HTTP requests of the server's own routes), since raw frames and event streams are JSON text.
 */
import type { Scenario, Step } from './scenario';
import { clientResultScenarios } from '../scenarios/client-results';
import { corsScenarios } from '../scenarios/cors';
import { handshakeScenarios } from '../scenarios/handshake';
import { invocationScenarios } from '../scenarios/invocations';
import { jsonParsingScenarios } from '../scenarios/json-parsing';
import { longPollingScenarios } from '../scenarios/long-polling';
import { messagePackFrameScenarios } from '../scenarios/messagepack-frames';
import { negotiateScenarios } from '../scenarios/negotiate';
import { officialClientScenarios } from '../scenarios/official-client';
import { pingCloseKeepAliveScenarios } from '../scenarios/ping-close-keep-alive';
import { serverSentEventsScenarios } from '../scenarios/server-sent-events';
import { statefulReconnectScenarios } from '../scenarios/stateful-reconnect';
import { streamingScenarios } from '../scenarios/streaming';
import { webSocketTransportScenarios } from '../scenarios/websocket-transport';

/** Every scenario table, by the name of its file in `scenarios/` (and of its `*.test.ts`). */
export const TABLES: Record<string, readonly Scenario[]> = {
  negotiate: negotiateScenarios,
  'websocket-transport': webSocketTransportScenarios,
  handshake: handshakeScenarios,
  'json-parsing': jsonParsingScenarios,
  invocations: invocationScenarios,
  'client-results': clientResultScenarios,
  'ping-close-keep-alive': pingCloseKeepAliveScenarios,
  'server-sent-events': serverSentEventsScenarios,
  'long-polling': longPollingScenarios,
  streaming: streamingScenarios,
  'stateful-reconnect': statefulReconnectScenarios,
  cors: corsScenarios,
  'official-client': officialClientScenarios,
  'messagepack-frames': messagePackFrameScenarios,
};

/** Steps of the official client, and waits: they do not depend on the hub protocol the client speaks. */
const CLIENT_STEPS = ['start', 'call', 'events', 'requests', 'stop', 'clientClosed', 'wait'];

function protocolNeutral(step: Step): boolean {
  // A request of the server's own routes (`GET /ask/{id}`) carries no hub messages; one of the hub's may.
  if ('http' in step) return step.root === true && step.background === undefined;
  return Object.keys(step).some((key) => CLIENT_STEPS.includes(key));
}

/**
 * The scenarios of every table that an official client could run over MessagePack: it starts a client, every step is
 * protocol-neutral, and no client uses Server-Sent Events (a text transport, which MessagePack cannot use). Named
 * `<table>: <scenario>`.
 */
export function messagePackScenarios(): Scenario[] {
  return Object.entries(TABLES).flatMap(([table, scenarios]) =>
    scenarios
      .filter(
        (scenario) =>
          scenario.steps.some((step) => 'start' in step) &&
          scenario.steps.every(protocolNeutral) &&
          !scenario.steps.some((step) => 'start' in step && step.start === 'ServerSentEvents'),
      )
      .map((scenario) => ({ ...scenario, name: `${table}: ${scenario.name}` })),
  );
}
