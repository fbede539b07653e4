/**
 * Wires the rooms together: transports -> proxy core (transactions, registrar, calls, policy)
 * -> state; the HTTP layer sees the result through AdminView. Also reload and shutdown.
 */
import type { Logger } from 'pino';
import { InfoLine } from './log/info-line.js';
import { sameSecret } from './lib/constant-time.js';
import { callEndedMembers, callOutcomeMembers } from './lib/json-text.js';
import { Authenticator } from './auth/authenticator.js';
import { CallTracker } from './calls/tracker.js';
import { removedDevices } from './config/diff.js';
import type { Config } from './config/types.js';
import type { AdminView, CallView, ExtensionView } from './http/view.js';
import { startHttp, type HttpServer } from './http/server.js';
import { createMetrics } from './metrics/metrics.js';
import type { ProxyEvents } from './proxy/events.js';
import { Identity } from './proxy/identity.js';
import { Proxy } from './proxy/proxy.js';
import { NO_PEERS } from './proxy/deps.js';
import { DialogKeepalive } from './calls/keepalive.js';
import { END_REASONS, type EndReason } from './calls/active-call.js';
import { LocationService } from './location/location.js';
import { Registrar } from './registrar/registrar.js';
import { Directory } from './directory/directory.js';
import { FilePersistence } from './state/file-persistence.js';
import { MemoryPersistence } from './state/memory-persistence.js';
import { persistStores, restoreStores } from './state/persist-stores.js';
import { formatEndpoint, type Endpoint } from './transport/endpoint.js';
import type { Persistence } from './state/types.js';
import { Dispatcher } from './transaction/dispatcher.js';
import { LocalIds } from './transaction/ids.js';
import { TransactionLayer } from './transaction/layer.js';
import { Transports } from './transport/transports.js';
import { NatKeepalive } from './registrar/nat-keepalive.js';
import { readTlsFiles, type TlsMaterial } from './lib/tls-files.js';
import { SourceGuard, type GuardSettings } from './security/guard.js';
import { RedisState } from './state/redis/redis-state.js';
import { NonceManager } from './auth/digest.js';

const SWEEP_MS = 1000;

/**
 * Trunks are trusted like security.trusted: a carrier is never limited or banned. So are the
 * other instances (several instances): they relay their callers' branches to our devices.
 */
function guardSettings(c: Config, peers: readonly string[] = []): GuardSettings {
  const host = (address: string) => ({ address, prefix: address.includes(':') ? 128 : 32 });
  return { ...c.security, trusted: [...c.security.trusted, ...c.trunks.map((t) => host(t.host)), ...peers.map(host)] };
}

export class App {
  private config: Config;
  private readonly persistence: Persistence;
  /** Set with storage.redis: the state shared with the other instances. */
  private readonly shared: RedisState | undefined;
  /** The other live instances' addresses (several instances). */
  private peers: readonly string[] = [];
  readonly directory: Directory;
  readonly location: LocationService;
  readonly calls: CallTracker;
  private readonly transports: Transports;
  private readonly natKeepalive: NatKeepalive;
  private readonly layer: TransactionLayer;
  private readonly identity = new Identity();
  private readonly guard: SourceGuard;
  private readonly keepalive: DialogKeepalive;
  private readonly auth: Authenticator;
  /** Calls ended since start, by reason (for /metrics). */
  private readonly endedCalls = new Map<EndReason, number>(END_REASONS.map((r) => [r, 0]));
  private http: HttpServer | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  private listening = false;
  private readonly metrics;

  constructor(config: Config, private readonly log: Logger) {
    this.config = config;
    this.shared = App.sharedState(config, log);
    this.persistence =
      this.shared ??
      (config.storage.path ? new FilePersistence(config.storage.path, { logger: log.child({ room: 'state' }) }) : new MemoryPersistence());
    this.directory = new Directory(config);
    this.location = new LocationService();
    this.calls = new CallTracker();
    persistStores(this, this.persistence);
    const endedLine = new InfoLine(log);
    this.calls.events.add((e) => {
      if (e.type !== 'ended') return;
      this.endedCalls.set(e.why, this.endedCalls.get(e.why)! + 1);
      if (endedLine.enabled) endedLine.write(callEndedMembers(e.call, e.why));
    });
    const guard = new SourceGuard(guardSettings(config), { log: log.child({ room: 'security' }), ...(this.shared ? { bans: this.shared.bans } : {}) });
    this.guard = guard;
    const layer = new TransactionLayer((dest, data, onError) => this.send(dest, data, onError));
    this.layer = layer;
    this.metrics = createMetrics({
      registeredDevices: () => this.location.registeredDevices(),
      contacts: () => this.location.contacts(),
      activeCallsByExtension: () => this.calls.activeByExtension(),
      transactionsInFlight: () => layer.inFlight,
      endedCalls: () => this.endedCalls,
      keepaliveProbes: () => this.keepalive.stats,
      bans: () => {
        const s = guard.stats;
        return { active: s.activeBans, issued: s.bans, dropped: s.dropped };
      },
      ...(this.shared ? { redis: () => ({ up: this.shared!.status === 'up', ...this.shared!.stats }) } : {}),
    });
    const sip = this.metrics.sip;
    const ids = new LocalIds();
    const dispatcher = new Dispatcher({ layer, ids, send: (dest, data) => this.send(dest, data), counter: sip, log });
    this.transports = new Transports(
      config.listen,
      config.advertise,
      log.child({ room: 'transport' }),
      (data, source, local) => dispatcher.onMessage(data, source, local),
      {
        gate: guard,
        tls: () => this.tlsMaterial(readTlsFiles(this.config.tls!)),
        onConnectionClosed: (remote) => this.location.removeFlow(remote),
      },
    );
    const identity = this.identity;
    this.refreshIdentity();
    const auth = new Authenticator(
      this.directory,
      () => ({
        realm: this.config.domain,
        algorithms: this.config.auth.algorithms,
        isOurHost: (host) => identity.isOurHost(host),
      }),
      new NonceManager(config.auth.nonceSecret === undefined ? {} : { secret: Buffer.from(config.auth.nonceSecret) }),
      guard,
    );
    this.auth = auth;
    this.natKeepalive = new NatKeepalive(
      () => this.location.all(),
      (dest, data) => this.send(dest, data),
      () => this.config.registrar.natKeepalive,
    );
    const registrar = new Registrar(this.location, auth, () => ({ domain: this.config.domain, ...this.config.registrar }));
    const transports = this.transports;
    const proxy = new Proxy({
      config: () => this.config,
      layer,
      ids,
      identity,
      localFor: (dest) => transports.localFor(dest),
      send: (dest, data) => this.send(dest, data),
      directory: this.directory,
      location: this.location,
      auth,
      registrar,
      calls: this.calls,
      events: this.proxyEvents(log),
      peers: this.shared ?? NO_PEERS,
    });
    layer.setUser(proxy);
    this.keepalive = new DialogKeepalive({
      layer,
      ids,
      localFor: (dest) => transports.localFor(dest),
      calls: this.calls,
      settings: () => ({ interval: this.config.calls.keepalive, failures: this.config.calls.keepaliveFailures }),
    });
  }

  /** The shared state of storage.redis; the lease is three keepalive intervals (30 s ones when probes are off). */
  private static sharedState(config: Config, log: Logger): RedisState | undefined {
    const url = config.storage.redis;
    const cluster = config.cluster;
    if (url === undefined || cluster === undefined) return undefined;
    return new RedisState({
      url,
      instance: cluster.instance,
      address: { transport: 'udp', address: cluster.address.host, port: cluster.address.port },
      leaseMs: 3 * (config.calls.keepalive || 30) * 1000,
      maxBindingMs: config.registrar.maxExpires * 1000,
      log: log.child({ room: 'state', instance: cluster.instance }),
    });
  }

  /** The proxy's announcements: dialogs to the call tracker, outcomes to the log and metrics. */
  private proxyEvents(log: Logger): ProxyEvents {
    const calls = this.calls;
    const outcomeLine = new InfoLine(log);
    const sip = this.metrics.sip;
    return {
      dialogConfirmed: (d) => {
        calls.confirmed(d, this.config.calls.maxCallDuration);
      },
      inDialogRequest: (callId, fromTag, toTag, method, cseq, sessionExpires) => {
        const call = calls.find(callId, fromTag, toTag);
        // Another instance's call passes here on its way (a relay): its owner ends and probes it.
        if (call === undefined || call.owner !== undefined) return;
        if (method === 'BYE') calls.end(call, 'bye');
        else this.keepalive.sawRequest(call, fromTag === call.fromTag, method, cseq, sessionExpires);
      },
      callOutcome: (o) => {
        sip.callOutcome(o.outcome);
        if (outcomeLine.enabled) outcomeLine.write(callOutcomeMembers(o));
      },
    };
  }

  private refreshIdentity(): void {
    const c = this.config;
    this.identity.refresh(c.domain, c.advertise, c.listen, this.transports.locals);
  }

  /** Every message out goes here: counted by what its first bytes say, then sent. */
  private send(dest: Endpoint, data: Buffer, onError?: () => void): void {
    this.metrics.sip.sent(data);
    this.transports.send(dest, data, onError);
  }

  async start(): Promise<void> {
    const stored = await this.persistence.load();
    restoreStores(this, stored, this.persistence);
    if (this.shared) {
      this.shared.attach(this, {
        banChanged: (address) => this.guard.refresh(address),
        endCall: (id) => {
          const call = this.calls.byId(id);
          if (call && call.owner === undefined) this.keepalive.end(call, 'api');
        },
        peersChanged: (addresses) => {
          this.peers = addresses;
          this.guard.configure(guardSettings(this.config, addresses));
        },
      });
      // Every instance must accept the nonces the others issued: one key for all, from Redis
      // unless the config names one.
      const secret = this.config.auth.nonceSecret === undefined ? await this.shared.nonceSecret() : undefined;
      if (secret) this.auth.nonces.setSecret(secret);
    }
    // Restoring announces nothing: the keepalive takes up the restored calls here, so a call
    // whose end vanished while the proxy was down ends within the keepalive bound. Another
    // instance's calls are its own to probe.
    for (const call of this.calls.all()) if (call.owner === undefined) this.keepalive.track(call);
    this.log.info(
      { bindings: this.location.contacts(), calls: this.calls.size, storage: this.config.storage.path ?? (this.shared ? 'redis' : 'memory') },
      'state restored',
    );
    await this.transports.start();
    this.refreshIdentity();
    this.sweeper = setInterval(() => {
      this.location.sweep();
      this.calls.sweep();
      this.guard.sweep();
      this.natKeepalive.maybeRun(Date.now());
    }, SWEEP_MS);
    this.sweeper.unref();
    this.http = await startHttp({
      host: this.config.http.host,
      port: this.config.http.port,
      view: this.view(),
      metrics: this.metrics.registry,
      logger: this.log.child({ room: 'http' }),
      ...(this.config.http.https ? { tls: this.config.tls! } : {}),
      trustProxy: this.config.http.trustProxy,
      bans: {
        list: () => this.guard.list().map((b) => ({ address: b.address, reason: b.reason, until: new Date(b.until).toISOString() })),
        lift: (address) => this.guard.lift(address),
      },
    });
    this.listening = true;
    this.log.info({ listen: this.config.listen.map((l) => l.url), http: `${this.config.http.host}:${this.config.http.port}` }, 'sipbob started');
  }

  /** SIGHUP: new extensions, devices and settings; registrations and calls stay. */
  reload(next: Config): void {
    const gone = removedDevices(this.config, next);
    for (const u of gone) this.location.removeAll(u, 'device-removed');
    const moved =
      JSON.stringify(next.listen) !== JSON.stringify(this.config.listen) ||
      next.http.host !== this.config.http.host ||
      next.http.port !== this.config.http.port ||
      next.http.https !== this.config.http.https;
    if (moved) this.log.warn('listen addresses changed: they apply after a restart');
    this.config = { ...next, listen: this.config.listen, http: { ...this.config.http, adminToken: next.http.adminToken, trustProxy: next.http.trustProxy } };
    this.http?.reload({ ...(next.tls ? { tls: next.tls } : {}), trustProxy: next.http.trustProxy });
    this.reloadSipCertificate(next);
    this.directory.load(this.config);
    this.guard.configure(guardSettings(this.config, this.peers));
    this.refreshIdentity();
    this.log.info({ extensions: next.extensions.length, removedDevices: gone }, 'config reloaded');
  }

  /** Logs which certificate the tls:// and wss:// listeners serve (start and reload). */
  private tlsMaterial(m: TlsMaterial, message = 'sip tls certificate'): TlsMaterial {
    if (m.info.expired) this.log.warn({ certificate: m.info }, `${message}: expired`);
    else this.log.info({ certificate: m.info }, message);
    return m;
  }

  /** SIGHUP: the tls:// and wss:// listeners take the renewed certificate; a bad file keeps the running one. */
  private reloadSipCertificate(next: Config): void {
    if (!this.config.listen.some((l) => l.transport === 'tls' || l.transport === 'wss')) return;
    if (next.tls === undefined) {
      this.log.warn('tls section removed: the tls:// and wss:// listeners keep the running certificate until a restart');
      return;
    }
    try {
      this.transports.setTlsCertificate(this.tlsMaterial(readTlsFiles(next.tls), 'sip tls certificate reloaded'));
    } catch (err) {
      this.log.error({ error: (err as Error).message }, 'sip tls certificate not reloaded; keeping the running certificate');
    }
  }

  async stop(): Promise<void> {
    this.listening = false;
    if (this.sweeper) clearInterval(this.sweeper);
    await this.http?.close();
    await this.transports.close();
    this.layer.close();
    await this.persistence.close();
  }

  private view(): AdminView {
    const extView = (number: string): ExtensionView | undefined => {
      const e = this.directory.extension(number);
      if (!e) return undefined;
      return {
        number: e.number,
        name: e.name,
        busyOnBusy: this.directory.busyOnBusy(e.number),
        activeCalls: this.calls.activeFor(e.number),
        devices: e.devices.map((d) => ({
          username: d.username,
          registrations: this.location.lookup(d.username).map((b) => ({
            contact: b.contact,
            expiresAt: new Date(b.expiresAt).toISOString(),
            source: formatEndpoint(b.source),
            transport: b.source.transport,
            userAgent: b.userAgent,
            ...(this.config.cluster ? { instance: b.owner ?? this.config.cluster.instance } : {}),
          })),
        })),
      };
    };
    return {
      listExtensions: () => [...this.directory.allExtensions()].map((e) => extView(e.number)!),
      getExtension: extView,
      setBusyOnBusy: (number, value) => this.directory.setBusyOnBusy(number, value),
      listCalls: () => {
        const out: CallView[] = [];
        for (const c of this.calls.all()) {
          for (const p of c.parties) {
            const startedAt = new Date(c.startedAt).toISOString();
            const alive = this.keepalive.aliveAt(c);
            const aliveAt = alive ? { caller: new Date(alive.caller).toISOString(), callee: new Date(alive.callee).toISOString() } : { caller: startedAt, callee: startedAt };
            const instance = this.config.cluster ? { instance: c.owner ?? this.config.cluster.instance } : {};
            out.push({ id: c.id, extension: p.extension, direction: p.direction, device: p.device, state: 'confirmed', startedAt, aliveAt, ...instance });
          }
        }
        return out;
      },
      endCall: (id) => {
        const call = this.calls.byId(id);
        if (!call) return false;
        // Another instance's call: its owner holds the dialog's state and sends the BYEs.
        if (call.owner !== undefined) this.shared?.askToEnd(call);
        else this.keepalive.end(call, 'api');
        return true;
      },
      removeRegistrations: (username) => {
        if (!this.directory.device(username)) return false;
        this.location.removeAll(username, 'admin');
        return true;
      },
      deviceLogin: (username, password) => {
        const d = this.directory.device(username);
        // Compared even for an unknown device, so the time does not tell which usernames exist.
        const same = sameSecret(password, d?.password ?? '\u0000no-device');
        return d && same ? d.extension : undefined;
      },
      adminToken: () => this.config.http.adminToken,
      ready: () => this.listening,
      ...(this.shared ? { redis: () => this.shared!.status } : {}),
    };
  }
}
