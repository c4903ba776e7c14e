/** The WebSockets transport and its endpoint against ASP.NET Core and fastify-signalr (scenarios in `scenarios/websocket-transport.ts`). */
import { conformanceSuite } from './engine/suite';
import { webSocketTransportScenarios } from './scenarios/websocket-transport';

conformanceSuite('WebSockets transport', webSocketTransportScenarios);
