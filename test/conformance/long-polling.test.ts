/** long polling over raw HTTP and frames against ASP.NET Core and fastify-signalr (scenarios in `scenarios/long-polling.ts`). */
import { conformanceSuite } from './engine/suite';
import { longPollingScenarios } from './scenarios/long-polling';

conformanceSuite('long polling', longPollingScenarios);
