/**
 * Builds and runs the .NET client driver in `test/dotnet-client/` (the official `Microsoft.AspNetCore.SignalR.Client`
 * of one generation, restored from NuGet) for jest tests.
 *
 * Each client version is built into its own folder `.tmp/dotnet-client/<version>/` (`--artifacts-path`: bin and
 * obj apart, so the four builds coexist), once per change of the driver's sources: a stamp of their hash lets later
 * runs skip the build. A first restore of a version takes 15–60 s; a build from the restored packages a few seconds.
 *
 * @packageDocumentation
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { killOnExit } from './child-processes';

/** The client generations the suite runs: the last of 1.x (ASP.NET Core 2.x), and 6, 8 and 10. */
export const DOTNET_CLIENT_VERSIONS = ['1.2.14', '6.0.1', '8.0.34', '10.0.15'] as const;
export type DotnetClientVersion = (typeof DOTNET_CLIENT_VERSIONS)[number];

const PROJECT_DIR = path.resolve(__dirname, '..', 'dotnet-client');
const SOURCES = ['DotnetClient.csproj', 'Program.cs', 'nuget.config'];
const STATE_DIR = path.resolve(__dirname, '..', '..', '.tmp', 'dotnet-client');
const BUILD_TIMEOUT_MS = 5 * 60_000;
const OUTPUT_LIMIT = 256 * 1024;

/** Keeps the .NET CLI quiet and free of lingering build-server processes. */
export const DOTNET_CLI_ENV: Readonly<Record<string, string>> = {
  DOTNET_NOLOGO: '1',
  DOTNET_CLI_TELEMETRY_OPTOUT: '1',
  DOTNET_SKIP_FIRST_TIME_EXPERIENCE: '1',
  DOTNET_CLI_WORKLOAD_UPDATE_NOTIFY_DISABLE: 'true',
  DOTNET_GENERATE_ASPNET_CERTIFICATE: 'false',
  DOTNET_CLI_USE_MSBUILD_SERVER: '0',
  MSBUILDDISABLENODEREUSE: '1',
  UseSharedCompilation: 'false',
};

/** Whether a `dotnet` executable is on the PATH; tests that need one say why they are skipped without it. */
export function dotnetAvailable(): boolean {
  return (process.env.PATH ?? '')
    .split(path.delimiter)
    .some((dir) => dir !== '' && fs.existsSync(path.join(dir, 'dotnet')));
}

/**
 * Runs `dotnet <args>` in `cwd`; resolves with what it printed on stdout, rejects with stdout and stderr on a
 * non-zero exit or after `timeoutMs`.
 * The process is killed if the test process exits first.
 */
export function runDotnet(
  args: readonly string[],
  cwd: string,
  env: Record<string, string> = {},
  timeoutMs = BUILD_TIMEOUT_MS,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('dotnet', args, {
      cwd,
      env: { ...process.env, ...DOTNET_CLI_ENV, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    killOnExit(child);
    let output = '';
    let stdout = '';
    const collect = (chunk: Buffer): void => {
      output = (output + chunk.toString('utf8')).slice(-OUTPUT_LIMIT);
    };
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
      collect(chunk);
    });
    child.stderr.on('data', collect);
    const timer = setTimeout(() => {
      output += `\n[harness] dotnet ${args[0]} exceeded ${timeoutMs} ms; killed`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot run dotnet: ${error.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(stdout);
      else reject(new Error(`dotnet ${args.join(' ')} failed (${signal ?? `exit code ${code}`}):\n${output}`));
    });
  });
}

/** A driver project: a console program under `test/` built once per change of its sources (and build properties). */
export interface DotnetDriverProject {
  /** The project's folder. */
  readonly dir: string;
  /** The project's name (its `.csproj` without the extension). */
  readonly name: string;
  /** The files whose change means a new build. */
  readonly sources: readonly string[];
  /** Where this build's bin and obj go, with its stamp. */
  readonly stateDir: string;
  /** `-p:Name=Value` properties of the build. */
  readonly properties?: readonly string[];
}

function sourceHash(project: DotnetDriverProject): string {
  const hash = createHash('sha256');
  for (const property of project.properties ?? []) hash.update(property).update('\0');
  for (const file of project.sources)
    hash
      .update(file)
      .update('\0')
      .update(fs.readFileSync(path.join(project.dir, file)))
      .update('\0');
  return hash.digest('hex');
}

/**
 * Builds a driver project unless a build of its current sources exists.
 *
 * @returns the path of the built dll (`<stateDir>/bin/<name>/release/<name>.dll`)
 */
export async function buildDotnetDriver(project: DotnetDriverProject): Promise<string> {
  const hash = sourceHash(project);
  const stamp = path.join(project.stateDir, 'build.stamp');
  const dll = path.join(project.stateDir, 'bin', project.name, 'release', `${project.name}.dll`);
  const stamped = fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8').trim() === hash && fs.existsSync(dll);
  if (stamped) return dll;
  fs.mkdirSync(path.dirname(stamp), { recursive: true });
  fs.rmSync(stamp, { force: true });
  await runDotnet(
    [
      'build',
      '-c',
      'Release',
      '--nologo',
      '--disable-build-servers',
      '-v',
      'quiet',
      '-clp:NoSummary;ErrorsOnly',
      '--artifacts-path',
      project.stateDir,
      ...(project.properties ?? []).map((property) => `-p:${property}`),
    ],
    project.dir,
  );
  if (!fs.existsSync(dll)) throw new Error(`dotnet build did not produce ${dll}`);
  fs.writeFileSync(stamp, `${hash}\n`);
  return dll;
}

/**
 * Builds the driver against client `version` unless a build of the current sources exists.
 *
 * @returns the path of the built `DotnetClient.dll`
 */
export async function buildDotnetClient(version: DotnetClientVersion): Promise<string> {
  return buildDotnetDriver({
    dir: PROJECT_DIR,
    name: 'DotnetClient',
    sources: SOURCES,
    stateDir: path.join(STATE_DIR, version),
    properties: [`SignalRClientVersion=${version}`],
  });
}

/** One line the driver printed: a check's value or error under its server, transport and protocol. */
export interface DriverLine {
  readonly server?: string;
  readonly transport?: string;
  readonly protocol?: string;
  readonly check: string;
  readonly value?: unknown;
  readonly error?: string;
}

/**
 * Runs the driver of `version` with `env` (see the settings at the top of `test/dotnet-client/Program.cs`) and
 * resolves with the lines it printed once it exits; rejects if it fails or runs longer than `timeoutMs`.
 */
export async function runDotnetClient(
  version: DotnetClientVersion,
  env: Record<string, string>,
  timeoutMs = 180_000,
): Promise<DriverLine[]> {
  const dll = await buildDotnetClient(version);
  const started = Date.now();
  const output = await runDotnet([dll], PROJECT_DIR, env, timeoutMs);
  if (process.env.DOTNET_CLIENT_TIMING) process.stdout.write(`driver ${version}: ${Date.now() - started} ms\n`);
  const lines = output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as DriverLine);
  if (!lines.some((line) => line.check === 'done'))
    throw new Error(`the .NET client driver did not finish:\n${output}`);
  return lines;
}
