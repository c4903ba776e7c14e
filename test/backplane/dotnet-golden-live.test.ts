/**
 * The vendored capture against live ASP.NET Core: the capture's run redone with two processes of the reference server
 * (`test/dotnet-reference`, StackExchangeRedis backplane, JSON and MessagePack) on a suite-started redis-server (see
 * `golden-replay.ts`). A failure means what .NET publishes no longer matches `test/golden/dotnet-backplane.jsonl`,
 * on which every byte-level backplane test of ours relies: the capture is stale and must be taken again
 * (`test/golden/CAPTURE.md`).
 */
import { describeWithDotnet } from '../support/dotnet-reference';
import { goldenReplay } from './golden-replay';

describeWithDotnet('the golden backplane capture, redone against live ASP.NET Core', () => {
  goldenReplay('ASP.NET Core');
});
