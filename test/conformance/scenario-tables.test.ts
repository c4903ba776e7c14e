/**
 * The scenario tables themselves: names are unique (they are the test names), every known difference a scenario
 * names is explained in KNOWN-DIFFERENCES.md, and every entry there is still shown by an executed scenario.
 * Pending tables are checked here but never run.
 */
import type { Scenario } from './engine/scenario';
import { knownDifferenceEntries } from './engine/suite';
import { clientResultScenarios } from './scenarios/client-results';
import { handshakeScenarios } from './scenarios/handshake';
import { invocationScenarios } from './scenarios/invocations';
import { jsonParsingScenarios } from './scenarios/json-parsing';
import { negotiateScenarios } from './scenarios/negotiate';
import { officialClientScenarios } from './scenarios/official-client';
import { corsScenarios } from './scenarios/cors';
import { longPollingScenarios } from './scenarios/long-polling';
import { messagePackScenarios } from './scenarios/pending-messagepack';
import { serverSentEventsScenarios } from './scenarios/server-sent-events';
import { statefulReconnectScenarios } from './scenarios/stateful-reconnect';
import { streamingScenarios } from './scenarios/streaming';
import { pingCloseKeepAliveScenarios } from './scenarios/ping-close-keep-alive';
import { webSocketTransportScenarios } from './scenarios/websocket-transport';

const EXECUTED: Record<string, readonly Scenario[]> = {
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
};

const PENDING: Record<string, readonly Scenario[]> = {
  'pending-messagepack': messagePackScenarios,
};

const ALL = { ...EXECUTED, ...PENDING };

test.each(Object.entries(ALL))('scenario names in %s are unique', (_table, scenarios) => {
  const names = scenarios.map((scenario) => scenario.name);
  expect(names.filter((name, index) => names.indexOf(name) !== index)).toEqual([]);
});

test('every known difference a scenario names is explained in KNOWN-DIFFERENCES.md', () => {
  const entries = knownDifferenceEntries();
  const named = Object.values(ALL)
    .flat()
    .flatMap((scenario) => (scenario.knownDifference ? [scenario.knownDifference.entry] : []));
  expect(named.filter((entry) => !entries.has(entry))).toEqual([]);
});

test('every entry of KNOWN-DIFFERENCES.md is shown by an executed scenario', () => {
  const shown = new Set(
    Object.values(EXECUTED)
      .flat()
      .flatMap((scenario) => (scenario.knownDifference ? [scenario.knownDifference.entry] : [])),
  );
  expect([...knownDifferenceEntries()].filter((entry) => !shown.has(entry))).toEqual([]);
});
