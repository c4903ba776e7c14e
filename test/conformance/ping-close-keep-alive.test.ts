/** Ping, Close and timeouts against ASP.NET Core and fastify-signalr (scenarios in `scenarios/ping-close-keep-alive.ts`). */
import { conformanceSuite } from './engine/suite';
import { pingCloseKeepAliveScenarios } from './scenarios/ping-close-keep-alive';

conformanceSuite('Ping, Close and keep-alive', pingCloseKeepAliveScenarios);
