/** Raw MessagePack frames against ASP.NET Core and fastify-signalr (scenarios in `scenarios/messagepack-frames.ts`). */
import { conformanceSuite } from './engine/suite';
import { messagePackFrameScenarios } from './scenarios/messagepack-frames';

conformanceSuite('MessagePack frames', messagePackFrameScenarios, { protocol: 'messagepack' });
