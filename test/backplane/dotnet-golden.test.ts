/**
 * Our servers against what real ASP.NET Core servers put on Redis: the capture's run redone with two processes of
 * our chat sample (see `golden-replay.ts`); every publish must be byte-identical to .NET's, but for one documented
 * integer width.
 */
import { goldenReplay } from './golden-replay';

goldenReplay('fastify-signalr');
