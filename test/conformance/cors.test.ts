/** CORS over raw HTTP and frames against ASP.NET Core and fastify-signalr (scenarios in `scenarios/cors.ts`). */
import { conformanceSuite } from './engine/suite';
import { corsScenarios } from './scenarios/cors';

conformanceSuite('CORS', corsScenarios);
