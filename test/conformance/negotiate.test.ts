/** Negotiate against ASP.NET Core and fastify-signalr (scenarios in `scenarios/negotiate.ts`). */
import { conformanceSuite } from './engine/suite';
import { negotiateScenarios } from './scenarios/negotiate';

conformanceSuite('negotiate', negotiateScenarios);
