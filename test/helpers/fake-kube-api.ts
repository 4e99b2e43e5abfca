// A small fake Kubernetes API server on loopback, for the certificate and namespace informer tests. It implements
// only what the server calls, with the API server's semantics for what the tests are about: Secrets
// get/create/replace, where create answers 409 AlreadyExists for an existing name and replace answers 409 Conflict
// for a stale resourceVersion; MutatingWebhookConfigurations get and JSON patch (a failed `test` operation refuses
// the whole patch); and namespaces listed and watched as the namespace informer does: none unless a test puts
// some, each change sent to open watches, and a watch first sent every change after the resourceVersion it names
// (410 Expired once that history is compacted). A real API server comes with the e2e issue.
//
// Tests can hold requests at a barrier (so that two replicas really race), fail the next requests that match,
// edit objects behind the server's back (someone blanking a caBundle, relabelling a namespace), drop the open
// namespace watches, and read the log of every request with its status.

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';
import jsonpatch from 'fast-json-patch';

type KubeObject = {
  metadata: { name: string; namespace?: string; resourceVersion?: string } & Record<string, unknown>;
} & Record<string, unknown>;

export interface LoggedRequest {
  method: string;
  path: string;
  status: number;
  /** performance.now() when it was answered. */
  at: number;
}

interface Barrier {
  matches(method: string, path: string): boolean;
  waiting: (() => void)[];
  /** How many more requests it holds before it lets them all through. */
  count: number;
  /** When set, the requests wait for this too. */
  released?: Promise<void>;
}

/** A list or watch of namespaces, logged as it was answered (a watch once its head was sent). */
export interface NamespaceRequest {
  kind: 'list' | 'watch';
  /** The resourceVersion a watch asked to start from. */
  resourceVersion: string | null;
  /** The HTTP status; for a watch told its resourceVersion is too old, the 410 of the ERROR event it was sent. */
  status: number;
  /** performance.now() when it was answered. */
  at: number;
}

interface Failure {
  matches(method: string, path: string): boolean;
  count: number;
  code: number;
}

type WatchEvent = { type: 'ADDED' | 'MODIFIED'; object: KubeObject };

export interface HeldRequest {
  /** Resolves when the request has arrived and is being held. */
  arrived: Promise<void>;
  release(): void;
}

const NAMESPACES = '/api/v1/namespaces';
const SECRET = /^\/api\/v1\/namespaces\/([^/]+)\/secrets(?:\/([^/]+))?$/;
const WEBHOOK_CONFIGURATION = /^\/apis\/admissionregistration\.k8s\.io\/v1\/mutatingwebhookconfigurations\/([^/]+)$/;

function status(res: ServerResponse, code: number, reason: string, message: string): void {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message }));
}

function send(res: ServerResponse, code: number, object: unknown): void {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(JSON.stringify(object));
}

async function bodyOf(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

/** A kubeconfig file for a plain-HTTP fake API server at `url` (the client needs TLS verification off for it). */
export function writeFakeKubeconfig(path: string, url: string): void {
  writeFileSync(
    path,
    `apiVersion: v1
kind: Config
clusters: [{name: fake, cluster: {server: "${url}", insecure-skip-tls-verify: true}}]
users: [{name: fake, user: {token: fake-token}}]
contexts: [{name: fake, context: {cluster: fake, user: fake}}]
current-context: fake
`,
  );
}

export class FakeKubeApi {
  readonly requests: LoggedRequest[] = [];
  readonly namespaceRequests: NamespaceRequest[] = [];
  private readonly secrets = new Map<string, KubeObject>();
  private readonly webhookConfigurations = new Map<string, KubeObject>();
  private readonly namespaces = new Map<string, KubeObject>();
  /** Every namespace change since the history was last compacted, oldest first. */
  private namespaceHistory: WatchEvent[] = [];
  /** A watch from a resourceVersion older than this cannot be resumed. */
  private namespaceHistoryStart = 0;
  private readonly namespaceWatches = new Set<ServerResponse>();
  private readonly barriers: Barrier[] = [];
  private readonly failures: Failure[] = [];
  private resourceVersion = 100;
  private readonly server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://fake').pathname;
    const method = req.method ?? 'GET';
    res.on('finish', () => this.requests.push({ method, path, status: res.statusCode, at: performance.now() }));
    void this.atBarrier(method, path).then(() => this.handle(req, res, method, path));
  });

  static async start(): Promise<FakeKubeApi> {
    const api = new FakeKubeApi();
    await new Promise<void>((resolve) => api.server.listen(0, '127.0.0.1', resolve));
    return api;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Client configuration for this server. The client refuses plain HTTP unless TLS verification is off. */
  kubeConfig(): KubeConfig {
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromOptions({
      clusters: [{ name: 'fake', server: this.url, skipTLSVerify: true }],
      users: [{ name: 'fake', token: 'fake-token' }],
      contexts: [{ name: 'fake', cluster: 'fake', user: 'fake' }],
      currentContext: 'fake',
    });
    return kubeConfig;
  }

  /** The same, as a kubeconfig file for a spawned `serve`. */
  writeKubeconfig(path: string): void {
    writeFakeKubeconfig(path, this.url);
  }

  /**
   * Holds the next `count` requests that match until all of them have arrived, then lets them through in the
   * order they came: requests that would otherwise be served one after the other really race.
   */
  barrier(count: number, method: string, pathPattern: RegExp): void {
    this.barriers.push({ matches: (m, p) => m === method && pathPattern.test(p), waiting: [], count });
  }

  /** Holds the next request that matches until release() is called. */
  hold(method: string, pathPattern: RegExp): HeldRequest {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let arrived!: () => void;
    const arrival = new Promise<void>((resolve) => (arrived = resolve));
    this.barriers.push({ matches: (m, p) => m === method && pathPattern.test(p), waiting: [arrived], count: 1, released });
    return { arrived: arrival, release };
  }

  /** Answers the next `count` requests that match with `code`, as an API server that is unavailable for a while. */
  fail(count: number, method: string, pathPattern: RegExp, code = 503): void {
    this.failures.push({ matches: (m, p) => m === method && pathPattern.test(p), count, code });
  }

  /** Creates or relabels a namespace, as kubectl would; open watches are sent the change. */
  putNamespace(name: string, labels: Record<string, string>): void {
    const type = this.namespaces.has(name) ? 'MODIFIED' : 'ADDED';
    const object = this.stamped({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { ...labels } } });
    this.namespaces.set(name, object);
    const event: WatchEvent = { type, object };
    this.namespaceHistory.push(event);
    for (const watch of this.namespaceWatches) watch.write(`${JSON.stringify(event)}\n`);
  }

  /** Cuts every open namespace watch, as a network failure or a restarting API server would. */
  dropNamespaceWatches(): number {
    const dropped = this.namespaceWatches.size;
    for (const watch of this.namespaceWatches) watch.socket?.destroy();
    this.namespaceWatches.clear();
    return dropped;
  }

  /** Forgets the namespace history so far, as etcd compaction does: a watch resuming from before now gets 410. */
  compactNamespaceHistory(): void {
    this.namespaceHistory = [];
    this.namespaceHistoryStart = this.resourceVersion;
  }

  secret(namespace: string, name: string): KubeObject | undefined {
    return this.secrets.get(`${namespace}/${name}`);
  }

  /** The Secret's data, decoded. */
  secretData(namespace: string, name: string): Record<string, string> | undefined {
    const data = this.secret(namespace, name)?.data as Record<string, string> | undefined;
    return data && Object.fromEntries(Object.entries(data).map(([key, value]) => [key, Buffer.from(value, 'base64').toString()]));
  }

  webhookConfiguration(name: string): KubeObject | undefined {
    return this.webhookConfigurations.get(name);
  }

  /** Creates or replaces an object as someone else (kubectl, Helm) would, with a new resourceVersion. */
  putWebhookConfiguration(object: KubeObject): void {
    this.webhookConfigurations.set(object.metadata.name, this.stamped(structuredClone(object)));
  }

  deleteSecret(namespace: string, name: string): void {
    this.secrets.delete(`${namespace}/${name}`);
  }

  putSecret(object: KubeObject): void {
    this.secrets.set(`${object.metadata.namespace}/${object.metadata.name}`, this.stamped(structuredClone(object)));
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private stamped(object: KubeObject): KubeObject {
    object.metadata.resourceVersion = String(++this.resourceVersion);
    return object;
  }

  private atBarrier(method: string, path: string): Promise<void> {
    const barrier = this.barriers.find((b) => b.count > 0 && b.matches(method, path));
    if (!barrier) return Promise.resolve();
    barrier.count--;
    const arrived = new Promise<void>((resolve) => barrier.waiting.push(resolve));
    if (barrier.count === 0) {
      this.barriers.splice(this.barriers.indexOf(barrier), 1);
      for (const release of barrier.waiting) release();
    }
    return barrier.released ? arrived.then(() => barrier.released) : arrived;
  }

  private async handle(req: IncomingMessage, res: ServerResponse, method: string, path: string): Promise<void> {
    const failure = this.failures.find((f) => f.count > 0 && f.matches(method, path));
    if (failure) {
      if (--failure.count === 0) this.failures.splice(this.failures.indexOf(failure), 1);
      if (path === NAMESPACES) this.logNamespaceRequest(req, failure.code);
      return status(res, failure.code, 'ServiceUnavailable', 'the fake API server is failing this request on purpose');
    }
    const secret = SECRET.exec(path);
    if (secret) return this.handleSecret(req, res, method, secret[1] as string, secret[2]);
    const configuration = WEBHOOK_CONFIGURATION.exec(path);
    if (configuration) return this.handleWebhookConfiguration(req, res, method, configuration[1] as string);
    if (path === NAMESPACES && method === 'GET') return this.handleNamespaces(req, res);
    status(res, 404, 'NotFound', `the fake API server does not serve ${method} ${path}`);
  }

  private logNamespaceRequest(req: IncomingMessage, code: number): void {
    const query = new URL(req.url ?? '/', 'http://fake').searchParams;
    this.namespaceRequests.push({
      kind: query.get('watch') === 'true' ? 'watch' : 'list',
      resourceVersion: query.get('resourceVersion'),
      status: code,
      at: performance.now(),
    });
  }

  private handleNamespaces(req: IncomingMessage, res: ServerResponse): void {
    const query = new URL(req.url ?? '/', 'http://fake').searchParams;
    if (query.get('watch') !== 'true') {
      this.logNamespaceRequest(req, 200);
      const metadata = { resourceVersion: String(this.resourceVersion) };
      return send(res, 200, { apiVersion: 'v1', kind: 'NamespaceList', metadata, items: [...this.namespaces.values()] });
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.flushHeaders();
    const from = Number(query.get('resourceVersion') || this.resourceVersion);
    const expired = from < this.namespaceHistoryStart;
    this.logNamespaceRequest(req, expired ? 410 : 200);
    if (expired) {
      const message = `too old resource version: ${from} (${this.namespaceHistoryStart})`;
      const object = { kind: 'Status', apiVersion: 'v1', status: 'Failure', message, reason: 'Expired', code: 410 };
      res.end(`${JSON.stringify({ type: 'ERROR', object })}\n`);
      return;
    }
    // Stays open: changes made later are written by putNamespace.
    for (const event of this.namespaceHistory) {
      if (Number(event.object.metadata.resourceVersion) > from) res.write(`${JSON.stringify(event)}\n`);
    }
    this.namespaceWatches.add(res);
    res.on('close', () => this.namespaceWatches.delete(res));
  }

  private async handleSecret(req: IncomingMessage, res: ServerResponse, method: string, namespace: string, name: string | undefined) {
    // The body first: the object is looked up after, as it is when the request is served, not when it arrived.
    const object = method === 'POST' || method === 'PUT' ? ((await bodyOf(req)) as KubeObject) : undefined;
    if (method === 'POST' && name === undefined && object) {
      const key = `${namespace}/${object.metadata.name}`;
      if (this.secrets.has(key)) return status(res, 409, 'AlreadyExists', `secrets "${object.metadata.name}" already exists`);
      object.metadata.namespace = namespace;
      this.secrets.set(key, this.stamped(object));
      return send(res, 201, object);
    }
    if (name === undefined) return status(res, 405, 'MethodNotAllowed', `${method} on the Secret collection`);
    const key = `${namespace}/${name}`;
    const existing = this.secrets.get(key);
    if (method === 'GET') return existing ? send(res, 200, existing) : status(res, 404, 'NotFound', `secrets "${name}" not found`);
    if (method === 'PUT' && object) {
      if (!existing) return status(res, 404, 'NotFound', `secrets "${name}" not found`);
      if (object.metadata.resourceVersion !== existing.metadata.resourceVersion) {
        const message = `Operation cannot be fulfilled on secrets "${name}": the object has been modified; please apply your changes to the latest version and try again`;
        return status(res, 409, 'Conflict', message);
      }
      this.secrets.set(key, this.stamped(object));
      return send(res, 200, object);
    }
    status(res, 405, 'MethodNotAllowed', `${method} on a Secret`);
  }

  private async handleWebhookConfiguration(req: IncomingMessage, res: ServerResponse, method: string, name: string) {
    const operations = method === 'PATCH' ? ((await bodyOf(req)) as jsonpatch.Operation[]) : undefined;
    const existing = this.webhookConfigurations.get(name);
    if (!existing) {
      return status(res, 404, 'NotFound', `mutatingwebhookconfigurations.admissionregistration.k8s.io "${name}" not found`);
    }
    if (method === 'GET') return send(res, 200, existing);
    if (method === 'PATCH' && operations) {
      if (req.headers['content-type'] !== 'application/json-patch+json') {
        return status(res, 415, 'UnsupportedMediaType', `the fake takes JSON patches only, not ${req.headers['content-type']}`);
      }
      let patched: KubeObject;
      try {
        patched = jsonpatch.applyPatch(structuredClone(existing), operations, true, false).newDocument;
      } catch (error) {
        const message = `the server rejected our request due to an error in our request: ${(error as Error).message}`;
        return status(res, 422, 'Invalid', message);
      }
      this.webhookConfigurations.set(name, this.stamped(patched));
      return send(res, 200, patched);
    }
    status(res, 405, 'MethodNotAllowed', `${method} on a MutatingWebhookConfiguration`);
  }
}
