/** Client results over raw frames against ASP.NET Core and fastify-signalr (scenarios in `scenarios/client-results.ts`). */
import { conformanceSuite } from './engine/suite';
import { clientResultScenarios } from './scenarios/client-results';

conformanceSuite('client results', clientResultScenarios);
