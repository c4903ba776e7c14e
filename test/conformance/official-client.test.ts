/** The official @microsoft/signalr client's flows per transport against ASP.NET Core and fastify-signalr (scenarios in `scenarios/official-client.ts`). */
import { conformanceSuite } from './engine/suite';
import { officialClientScenarios } from './scenarios/official-client';

conformanceSuite('official client', officialClientScenarios);
