/**
 * The admin page: its static files (the page, the official browser client and uPlot, all served from this package
 * and `node_modules`, so the page makes no external request) and the built-in admin hub the page talks to.
 *
 * The admin hub is a hub of ours at `{path}/hub`, always in memory (never on the backplane): each server's page
 * shows that server, and the fleet through presence. Every request to the page and to the hub passes `authorize`.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import { HubException } from '../shared/errors';
import { Hub } from '../hub/hub';
import type { HubClass } from '../hub/hub';
import type { HubEndpoint } from '../hub/hub-endpoint';
import type { BackplaneBus } from '../lifetime/backplane-bus';
import type { BackplaneStatus } from '../redis/redis-backplane';
import { adminOptionsSchema, resolveAdminOptions, type ResolvedAdminOptions } from './admin-options';
import { AdminMonitor } from './admin-monitor';
import { AdminTraces, type TraceTargetKind } from './admin-trace';

/**
 * The page's own files: beside the compiled code in a build (`dist/admin-page/`, bundles included, see
 * `scripts/copy-admin-page.mjs`), or at the repository's root in a checkout (bundles read from `node_modules`).
 * The nearest one up from this file wins.
 */
function pageDirectory(): string {
  // From src/admin/ (a checkout), dist/src/admin/ (a build) or a compiled copy elsewhere in a checkout (the bench's).
  for (let up = 2; up <= 4; up++) {
    const candidate = path.resolve(__dirname, '../'.repeat(up), 'admin-page');
    if (existsSync(path.join(candidate, 'index.html'))) return candidate;
  }
  throw new Error('fastify-signalr: the admin page files (admin-page/) are missing from the installation.');
}

/** A browser bundle: the copy in the page's `lib/` when the build made one, else the module's own file. */
function bundle(directory: string, moduleFile: string): string {
  const copy = path.join(directory, 'lib', path.basename(moduleFile));
  return existsSync(copy) ? copy : require.resolve(moduleFile);
}

/** Files the page loads: URL under the admin path → where they are read from. */
function pageFiles(): Map<string, { file: string; type: string }> {
  const directory = pageDirectory();
  const script = 'application/javascript; charset=utf-8';
  const style = 'text/css; charset=utf-8';
  return new Map([
    ['/', { file: path.join(directory, 'index.html'), type: 'text/html; charset=utf-8' }],
    ['/admin.js', { file: path.join(directory, 'admin.js'), type: script }],
    ['/admin.css', { file: path.join(directory, 'admin.css'), type: style }],
    [
      '/lib/signalr.min.js',
      { file: bundle(directory, '@microsoft/signalr/dist/browser/signalr.min.js'), type: script },
    ],
    ['/lib/uPlot.iife.min.js', { file: bundle(directory, 'uplot/dist/uPlot.iife.min.js'), type: script }],
    ['/lib/uPlot.min.css', { file: bundle(directory, 'uplot/dist/uPlot.min.css'), type: style }],
  ]);
}

/** The page's policy: its scripts and styles from here only, its connections to this origin only. */
const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** The admin page of one plugin registration: its hub class, and what it needs once the hubs exist. */
export class AdminPage {
  readonly options: ResolvedAdminOptions;
  readonly hubClass: HubClass;
  private monitor: AdminMonitor | undefined;
  private adminEndpoint: HubEndpoint | undefined;
  private traces: AdminTraces | undefined;
  private snapshotTimer: NodeJS.Timeout | null = null;
  private snapshotRunning = false;
  private soonTimer: NodeJS.Timeout | null = null;

  /**
   * The admin page for the plugin's raw options, or undefined without valid `admin` options (the options'
   * validation then names what is wrong).
   */
  static fromOptions(raw: unknown): AdminPage | undefined {
    const admin = (raw as { admin?: unknown } | null | undefined)?.admin;
    if (admin === undefined) return undefined;
    const parsed = adminOptionsSchema.safeParse(admin);
    return parsed.success ? new AdminPage(resolveAdminOptions(parsed.data)) : undefined;
  }

  private constructor(options: ResolvedAdminOptions) {
    this.options = options;
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the hub class reaches its page through this
    const page = this;
    this.hubClass = class SignalRAdminHub extends Hub {
      override onConnected(): void {
        page.opened();
      }
      override onDisconnected(): void {
        page.closed(this.context.connectionId);
      }
      snapshot() {
        return page.runtime.monitor.snapshot();
      }
      listConnections(hub: string, search: string) {
        return page.runtime.monitor.connections(String(hub), String(search ?? ''));
      }
      connectionDetails(hub: string, connectionId: string) {
        return page.runtime.monitor.connection(String(hub), String(connectionId));
      }
      listGroups(hub: string, search: string) {
        return page.runtime.monitor.groups(String(hub), String(search ?? ''));
      }
      startTrace(hub: string, kind: string, target: string) {
        if (kind !== 'connection' && kind !== 'user' && kind !== 'group')
          throw new HubException(`Unknown trace target ${kind}.`);
        const runtime = page.runtime;
        runtime.traces.open(
          this.context.connectionId,
          runtime.monitor.endpoint(String(hub)),
          kind as TraceTargetKind,
          String(target),
        );
        return true;
      }
      stopTrace() {
        page.runtime.traces.close(this.context.connectionId);
        return true;
      }
      closeConnection(hub: string, connectionId: string, allowReconnect: boolean) {
        return page.runtime.monitor.closeConnection(
          String(hub),
          String(connectionId),
          allowReconnect === true,
          page.who(this.context),
        );
      }
      sendMessage(hub: string, kind: string, target: string, method: string, args: unknown) {
        return page.runtime.monitor.send(
          String(hub),
          String(kind),
          String(target),
          String(method),
          Array.isArray(args) ? args : [args],
          page.who(this.context),
        );
      }
      removeFromGroup(hub: string, connectionId: string, group: string) {
        return page.runtime.monitor.removeFromGroup(
          String(hub),
          String(connectionId),
          String(group),
          page.who(this.context),
        );
      }
    };
  }

  /**
   * The admin hub's registration, added to the plugin's hubs (a `HubRegistration` of the plugin's options, written
   * out here so this folder does not import the options that import it).
   */
  get hubRegistration(): { path: string; hub: HubClass; name: string; onRequest: onRequestHookHandler } {
    return {
      path: this.options.hubPath,
      hub: this.hubClass,
      name: 'FastifySignalR.Admin',
      onRequest: this.authorizationHook(),
    };
  }

  /** Refuses a request `authorize` does not accept: 401 (with the challenge) without an authenticated user, else 403. */
  authorizationHook(): onRequestHookHandler {
    const { authorize, challenge } = this.options;
    return async (request: FastifyRequest, reply: FastifyReply) => {
      let allowed = false;
      try {
        allowed = (await authorize(request)) === true;
      } catch (error) {
        request.log.error({ err: error }, 'admin authorization failed');
      }
      if (allowed) return;
      const authenticated = (request as { user?: unknown }).user != null;
      if (!authenticated && challenge !== undefined) void reply.header('www-authenticate', challenge);
      return reply
        .code(authenticated ? 403 : 401)
        .header('content-type', 'text/plain')
        .send('');
    };
  }

  private get runtime(): { monitor: AdminMonitor; traces: AdminTraces } {
    if (this.monitor === undefined || this.traces === undefined) throw new Error('The admin page is not started.');
    return { monitor: this.monitor, traces: this.traces };
  }

  /** Who an action is logged as: the user the admin request authenticated, else its address. */
  private who(context: { userIdentifier: string | undefined; httpRequest: { ip: string } }): string {
    return context.userIdentifier ?? context.httpRequest.ip;
  }

  /**
   * Wires the page to the hubs (the admin hub's endpoint among them) and serves its files. Call once the
   * endpoints exist.
   */
  async start(
    app: FastifyInstance,
    endpoints: readonly HubEndpoint[],
    backplane: () => BackplaneStatus | undefined,
    bus: BackplaneBus | undefined,
  ): Promise<void> {
    this.adminEndpoint = endpoints.find((endpoint) => endpoint.options.hub === this.hubClass);
    const observed = endpoints.filter((endpoint) => endpoint !== this.adminEndpoint);
    const log = app.log.child({ admin: this.options.path });
    this.monitor = new AdminMonitor(observed, backplane, bus, log, () => this.pushSoon());
    this.traces = new AdminTraces(
      (owner, batch) => void this.adminEndpoint?.clients.client(owner).send('trace', batch),
      {
        perSecond: this.options.traceMessagesPerSecond,
        argumentCharacters: this.options.traceArgumentCharacters,
      },
    );
    // After every plugin registered, so the counters chain after the metrics exporter's observer.
    app.addHook('onReady', async () => {
      this.monitor?.installObservers();
      this.monitor?.startSummaries();
    });
    app.addHook('preClose', async () => {
      this.monitor?.stopSummaries();
      this.stop();
    });

    const files = pageFiles();
    const contents = new Map([...files].map(([url, { file, type }]) => [url, { body: readFileSync(file), type }]));
    const base = this.options.path;
    await app.register(async (pageRoutes: FastifyInstance) => {
      pageRoutes.addHook('onRequest', this.authorizationHook());
      pageRoutes.get(base, async (_request, reply) => reply.redirect(`${base}/`));
      for (const [url, { body, type }] of contents) {
        pageRoutes.get(`${base}${url}`, async (_request, reply) =>
          reply
            .type(type)
            .header('cache-control', 'no-store')
            .header('content-security-policy', CONTENT_SECURITY_POLICY)
            .header('x-content-type-options', 'nosniff')
            .send(body),
        );
      }
    });
  }

  /** A page connected: snapshots start with the first one. */
  private opened(): void {
    if (this.snapshotTimer !== null) return;
    this.monitor?.watchPresence();
    this.snapshotTimer = setInterval(() => void this.pushSnapshot(), this.options.snapshotIntervalMs);
    this.snapshotTimer.unref();
    void this.pushSnapshot();
  }

  /** A page left: its trace ends, and snapshots stop with the last page. */
  private closed(connectionId: string): void {
    this.traces?.close(connectionId);
    // onDisconnected runs after the endpoint forgot the connection.
    if ((this.adminEndpoint?.connectionCount ?? 0) === 0) this.stop();
  }

  private stop(): void {
    if (this.snapshotTimer !== null) clearInterval(this.snapshotTimer);
    this.snapshotTimer = null;
    if (this.soonTimer !== null) clearTimeout(this.soonTimer);
    this.soonTimer = null;
    this.traces?.closeAll();
    this.monitor?.unwatchPresence();
  }

  /** A snapshot within 100 ms, once for however many changes arrive meanwhile. */
  private pushSoon(): void {
    if (this.soonTimer !== null || this.snapshotTimer === null) return;
    this.soonTimer = setTimeout(() => {
      this.soonTimer = null;
      void this.pushSnapshot();
    }, 100);
    this.soonTimer.unref();
  }

  private async pushSnapshot(): Promise<void> {
    // A slow Redis must not pile snapshots up.
    if (this.snapshotRunning || this.monitor === undefined || this.adminEndpoint === undefined) return;
    this.snapshotRunning = true;
    try {
      await this.adminEndpoint.clients.all.send('snapshot', await this.monitor.snapshot());
    } catch (error) {
      this.adminEndpoint.log.warn({ err: error }, 'admin snapshot failed');
    } finally {
      this.snapshotRunning = false;
    }
  }
}
