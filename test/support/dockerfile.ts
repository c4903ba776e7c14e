/**
 * Carries out a Dockerfile's instructions outside a container, for machines without a container engine: each stage
 * gets a temporary directory standing for its `WORKDIR`; `COPY` copies from the build context (honouring
 * `.dockerignore`) or from an earlier stage's directory; `RUN` runs its shell command there with the stage's `ENV`;
 * `ENV`, `USER`, `HEALTHCHECK`, `ENTRYPOINT` and `CMD` are recorded for starting the result. Only what this
 * repository's Dockerfile uses is understood; anything else fails loudly rather than being skipped.
 */
import { execFile } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { userEnvironment } from './child-processes';

const run = promisify(execFile);

/** One instruction, continuation lines joined. */
export interface Instruction {
  readonly keyword: string;
  readonly args: string;
  readonly line: number;
}

/** Instructions from `FROM` to the next `FROM`. */
export interface Stage {
  readonly name: string | undefined;
  readonly image: string;
  readonly instructions: readonly Instruction[];
}

/** Reads a Dockerfile into stages. */
export function parseDockerfile(text: string): Stage[] {
  const instructions: Instruction[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let line = lines[i];
    if (/^\s*(#|$)/.test(line)) continue;
    while (line.endsWith('\\') && i + 1 < lines.length) {
      line = line.slice(0, -1);
      // Comment lines inside a continued instruction are dropped, as Docker does.
      do i++;
      while (i < lines.length && /^\s*#/.test(lines[i]));
      // The backslash and the line break go; the next line continues this one (Docker's escape rule).
      line += lines[i];
    }
    const match = /^\s*([A-Za-z]+)\s+([\s\S]*)$/.exec(line);
    if (match === null) throw new Error(`Dockerfile line ${start + 1}: cannot read "${line}"`);
    instructions.push({ keyword: match[1].toUpperCase(), args: match[2].trim(), line: start + 1 });
  }
  const stages: Stage[] = [];
  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') {
      const [image, as, name] = instruction.args.split(/\s+/);
      stages.push({ image, name: as?.toUpperCase() === 'AS' ? name : undefined, instructions: [] });
    } else if (stages.length === 0) {
      throw new Error(`Dockerfile line ${instruction.line}: ${instruction.keyword} before FROM`);
    } else {
      (stages.at(-1)!.instructions as Instruction[]).push(instruction);
    }
  }
  return stages;
}

/** The result of carrying out one stage. */
export interface StageResult {
  readonly name: string | undefined;
  readonly image: string;
  /** The directory standing for the stage's WORKDIR. */
  readonly directory: string;
  readonly workdir: string;
  readonly env: Record<string, string>;
  readonly user: string | undefined;
  readonly stopSignal: string | undefined;
  readonly healthcheck: readonly string[] | undefined;
  readonly entrypoint: readonly string[];
  readonly cmd: readonly string[];
  /** The `RUN` commands carried out (or replaced), in order, for the record. */
  readonly runs: readonly { command: string; replacedBy?: string }[];
}

/** How a stage is carried out. */
export interface StageOptions {
  /** The build context (the repository root). */
  readonly context: string;
  /** Stages carried out before, by name, for `COPY --from`. */
  readonly earlier: ReadonlyMap<string, StageResult>;
  /**
   * Lets a test stand in for a `RUN` command: return a description of what was done instead, or `undefined` to run
   * the command as written.
   */
  readonly replaceRun?: (command: string, stage: Stage, directory: string) => string | undefined;
  /**
   * What the base image puts in the environment, such as a `PATH` whose first `node` is the image's Node.js
   * version; `RUN` commands see it beneath the stage's own `ENV`.
   */
  readonly imageEnv?: Readonly<Record<string, string>>;
}

/**
 * The environment of a `RUN`: a container's (no variables of the npm that runs these tests), with the base image's
 * and the stage's.
 */
function runEnvironment(
  stageEnv: Record<string, string>,
  imageEnv: Readonly<Record<string, string>> = {},
): NodeJS.ProcessEnv {
  return userEnvironment({ ...imageEnv, ...stageEnv });
}

function execForm(args: string, where: string): string[] {
  const parsed: unknown = JSON.parse(args);
  if (!Array.isArray(parsed) || !parsed.every((item) => typeof item === 'string'))
    throw new Error(`${where}: not an exec form`);
  return parsed as string[];
}

function dockerignore(context: string): (relative: string) => boolean {
  const file = path.join(context, '.dockerignore');
  const patterns = existsSync(file)
    ? readFileSync(file, 'utf8')
        .split('\n')
        .map((line) => line.trim())
        .filter((line) => line !== '' && !line.startsWith('#'))
    : [];
  return (relative) => patterns.some((pattern) => relative === pattern || relative.startsWith(`${pattern}/`));
}

/** Carries out one stage in a fresh temporary directory (removed again if the stage fails). */
export async function runStage(stage: Stage, options: StageOptions): Promise<StageResult> {
  const directory = mkdtempSync(path.join(tmpdir(), `docker-stage-${stage.name ?? 'final'}-`));
  try {
    return await carryOut(stage, options, directory);
  } catch (error) {
    rmSync(directory, { recursive: true, force: true });
    throw error;
  }
}

async function carryOut(stage: Stage, options: StageOptions, directory: string): Promise<StageResult> {
  // mkdtemp makes it private; a container's WORKDIR is readable by its unprivileged user.
  chmodSync(directory, 0o755);
  const ignored = dockerignore(options.context);
  let workdir: string | undefined;
  const env: Record<string, string> = {};
  let user: string | undefined;
  let stopSignal: string | undefined;
  let healthcheck: string[] | undefined;
  let entrypoint: string[] = [];
  let cmd: string[] = [];
  const runs: { command: string; replacedBy?: string }[] = [];
  const inWorkdir = (target: string): string => {
    const absolute = path.posix.resolve(workdir ?? '/', target);
    if (workdir === undefined || (absolute !== workdir && !absolute.startsWith(`${workdir}/`))) {
      throw new Error(`only paths inside WORKDIR are supported, not ${target}`);
    }
    return path.join(directory, path.posix.relative(workdir, absolute));
  };

  for (const instruction of stage.instructions) {
    const where = `Dockerfile line ${instruction.line} (${instruction.keyword})`;
    switch (instruction.keyword) {
      case 'WORKDIR':
        if (workdir !== undefined) throw new Error(`${where}: one WORKDIR per stage is supported`);
        workdir = instruction.args;
        break;
      case 'COPY': {
        const words = instruction.args.split(/\s+/);
        const from = words[0].startsWith('--from=') ? words.shift()!.slice('--from='.length) : undefined;
        if (words.some((word) => word.startsWith('--'))) throw new Error(`${where}: unsupported flag`);
        const destination = words.pop()!;
        for (const source of words) {
          let origin: string;
          if (from === undefined) {
            origin = path.join(options.context, source);
          } else {
            const earlier = options.earlier.get(from);
            if (earlier === undefined) throw new Error(`${where}: no earlier stage named ${from}`);
            origin = path.join(
              earlier.directory,
              path.posix.relative(earlier.workdir, path.posix.resolve(earlier.workdir, source)),
            );
          }
          const target = destination.endsWith('/')
            ? path.join(inWorkdir(destination), path.basename(source))
            : inWorkdir(destination);
          cpSync(origin, target, {
            recursive: true,
            filter: (file) => from !== undefined || !ignored(path.relative(options.context, file)),
          });
        }
        break;
      }
      case 'RUN': {
        let command = instruction.args;
        // A cache mount keeps a cache out of the image; outside a container the host's own cache plays that part.
        while (command.startsWith('--mount=')) {
          const [flag, rest] = command.split(/\s+(.*)/s);
          if (!flag.includes('type=cache')) throw new Error(`${where}: only cache mounts are supported`);
          command = rest;
        }
        const replacedBy = options.replaceRun?.(command, stage, directory);
        runs.push({ command, replacedBy });
        if (replacedBy !== undefined) break;
        try {
          await run('sh', ['-c', command], {
            cwd: directory,
            env: runEnvironment(env, options.imageEnv),
            maxBuffer: 64 * 1024 * 1024,
          });
        } catch (error) {
          const failure = error as { stdout?: string; stderr?: string; message: string };
          throw new Error(`${where} failed: ${command}\n${failure.stdout ?? ''}${failure.stderr ?? failure.message}`, {
            cause: error,
          });
        }
        break;
      }
      case 'ENV':
        for (const pair of instruction.args.split(/\s+/)) {
          const [name, ...value] = pair.split('=');
          if (value.length === 0) throw new Error(`${where}: only the NAME=value form is supported`);
          env[name] = value.join('=');
        }
        break;
      case 'USER':
        user = instruction.args;
        break;
      case 'STOPSIGNAL':
        stopSignal = instruction.args;
        break;
      case 'EXPOSE':
        break;
      case 'HEALTHCHECK': {
        const at = instruction.args.search(/(^|\s)CMD\s/);
        if (at < 0) throw new Error(`${where}: only HEALTHCHECK [options] CMD [...] is supported`);
        healthcheck = execForm(
          instruction.args
            .slice(at)
            .trim()
            .replace(/^CMD\s+/, ''),
          where,
        );
        break;
      }
      case 'ENTRYPOINT':
        entrypoint = execForm(instruction.args, where);
        break;
      case 'CMD':
        cmd = execForm(instruction.args, where);
        break;
      default:
        throw new Error(`${where}: not supported here`);
    }
  }
  if (workdir === undefined) throw new Error(`stage ${stage.name ?? stage.image}: no WORKDIR`);
  return {
    name: stage.name,
    image: stage.image,
    directory,
    workdir,
    env,
    user,
    stopSignal,
    healthcheck,
    entrypoint,
    cmd,
    runs,
  };
}
