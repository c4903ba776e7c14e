/** streaming over raw HTTP and frames against ASP.NET Core and fastify-signalr (scenarios in `scenarios/streaming.ts`). */
import { conformanceSuite } from './engine/suite';
import { streamingScenarios } from './scenarios/streaming';

conformanceSuite('streaming', streamingScenarios);
