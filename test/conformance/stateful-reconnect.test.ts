/** stateful reconnect over raw HTTP and frames against ASP.NET Core and fastify-signalr (scenarios in `scenarios/stateful-reconnect.ts`). */
import { conformanceSuite } from './engine/suite';
import { statefulReconnectScenarios } from './scenarios/stateful-reconnect';

conformanceSuite('stateful reconnect', statefulReconnectScenarios);
