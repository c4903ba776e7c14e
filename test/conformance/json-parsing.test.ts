/** Reading JSON hub messages against ASP.NET Core and fastify-signalr (scenarios in `scenarios/json-parsing.ts`). */
import { conformanceSuite } from './engine/suite';
import { jsonParsingScenarios } from './scenarios/json-parsing';

conformanceSuite('JSON parsing', jsonParsingScenarios);
