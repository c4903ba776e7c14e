/** Server-Sent Events over raw HTTP and frames against ASP.NET Core and fastify-signalr (scenarios in `scenarios/server-sent-events.ts`). */
import { conformanceSuite } from './engine/suite';
import { serverSentEventsScenarios } from './scenarios/server-sent-events';

conformanceSuite('Server-Sent Events', serverSentEventsScenarios);
