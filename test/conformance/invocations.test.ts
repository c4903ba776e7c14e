/** Invocation outcomes against ASP.NET Core and fastify-signalr (scenarios in `scenarios/invocations.ts`). */
import { conformanceSuite } from './engine/suite';
import { invocationScenarios } from './scenarios/invocations';

conformanceSuite('invocation outcomes', invocationScenarios);
