/** The hub handshake against ASP.NET Core and fastify-signalr (scenarios in `scenarios/handshake.ts`). */
import { conformanceSuite } from './engine/suite';
import { handshakeScenarios } from './scenarios/handshake';

conformanceSuite('handshake', handshakeScenarios);
