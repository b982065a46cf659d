/**
 * A test double of the services a FLAME node puts behind its nginx, built from their published API
 * (PrivateAIM/node-message-broker, node-result-service, node-pod-orchestration, the hub adapter's
 * Kong routes), since none of them can run here. One HTTP server per node plays that node's nginx;
 * the nodes share one "hub" that forwards messages between them. Every request is recorded (method,
 * path, headers, body, status), and faults (a status, a delay) can be injected per route.
 *
 * Message broker, as the real one behaves:
 * - `GET /message-broker/healthz`; `GET …/analyses/{a}/participants` → `[{nodeId, nodeType}]`,
 *   `…/participants/self` → `{nodeId, nodeType}` (`aggregator` | `default`).
 * - `POST …/analyses/{a}/messages/subscriptions {webhookUrl}` → 201 `{subscriptionId, analysisId, webhookUrl}`;
 *   `GET` lists, `DELETE …/{id}` → 204.
 * - `POST …/analyses/{a}/messages {recipients, message}` → 202, 400 for unknown or no recipients;
 *   `POST …/messages/broadcast {message}` → 202 to every other node. The message JSON is posted to
 *   each of the recipient's webhooks, each forward on its own (no order kept), 5xx answers tried
 *   again `webhookRetries` times after `webhookRetryDelayMs` (jittered), anything else dropped; a
 *   node with no subscription gets nothing. Nothing is kept.
 *
 * Storage service (`/storage`): `PUT /final/` and `/final/localdp` (multipart `file`, 204),
 * `PUT /intermediate/` (`file`, optional `remote_node_id`; 200 `{url, object_id}`; shared by all
 * nodes; one encrypted for a node can only be read by that node naming the sender in `?node_id=`,
 * else 400), `PUT /local/` (`file`, optional `tag`; 200 `{url}`; per node), `GET /local/{id}`,
 * `GET /local/tags` → `{tags: [{name, url}]}`, `GET /local/tags/{tag}` → `{results: [{filename, url}]}`.
 *
 *
 * Pod orchestrator: `POST /po/stream_logs {log, log_type, analysis_id, status, progress}` (422 when
 * the body does not match), and {@link FlameNodeDouble.orchestratorTick} /
 * {@link FlameNodeDouble.postPartnerStatus} calling the pod as the orchestrator's status loop does.
 *
 * Data: `GET /hub-adapter/kong/datastore/{project}` → `{data: [{id, name, paths}]}`; Kong at
 * `/kong/{name}/fhir/…` (paged Bundles whose next links name the FHIR server's own, unreachable
 * base, as a real server behind Kong does) and `/kong/{name}/s3` (ListObjectsV2 XML, paged) and
 * `/kong/{name}/s3/{key}`; Kong checks the `apikey` header only.
 *
 * - Every other route needs `Authorization: Bearer <token>` with a token issued for that node (401).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';

/** One node of the analysis. */
export interface DoubleNode {
  /** Node id. */
  nodeId: string;
  /** As the broker names roles. */
  nodeType: 'aggregator' | 'default';
}

/** One recorded request to a node's nginx. */
export interface RecordedRequest {
  node: string;
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  status: number;
  at: number;
}

/** One recorded push to an analysis' webhook. */
export interface RecordedPush {
  to: string;
  url: string;
  /** Status answered, or the transport error's text. */
  outcome: number | string;
  attempt: number;
  message: Record<string, unknown>;
}

/** A fault to inject: requests matching it are answered `status` (or delayed) `times` times. */
export interface Fault {
  /** Only requests to this node (default any). */
  node?: string;
  /** Only this method (default any). */
  method?: string;
  /** Requests whose path matches. */
  path: RegExp;
  /** Answer this status instead of serving (e.g. 503). */
  status?: number;
  /** Wait this long before serving (or answering `status`). */
  delayMs?: number;
  /** How many requests it hits. */
  times: number;
}

/** A data source behind one node's Kong. */
export type DoubleDataSource =
  | { name: string; type: 'fhir'; resources: Array<{ resourceType: string; id: string } & Record<string, unknown>>; pageSize?: number }
  | { name: string; type: 's3'; objects: Record<string, Buffer>; pageSize?: number };

/** Options of {@link startFlameNodeDouble}. */
export interface DoubleOptions {
  /** The analysis id. */
  analysisId: string;
  /** The project id. */
  projectId?: string;
  /** Its nodes. */
  nodes: DoubleNode[];
  /** Lifetime of the first token of each node, in seconds (default 3600). */
  tokenLifetimeS?: number;
  /** Lifetime of the tokens {@link FlameNodeDouble.orchestratorTick} refreshes to, in seconds (default 3600; short ones make it refresh again and again). */
  refreshedTokenLifetimeS?: number;
  /** Each node's data sources behind its Kong. */
  data?: Record<string, DoubleDataSource[]>;
  /** Kong's apikey (`DATA_SOURCE_TOKEN`), default `ds-token`. */
  dataSourceToken?: string;
  /** Broker's webhook retries on 5xx (default 5, as the real broker). */
  webhookRetries?: number;
  /** Delay between webhook retries in ms (default 200; the real broker waits 2000). */
  webhookRetryDelayMs?: number;
}

interface Subscription {
  subscriptionId: string;
  analysisId: string;
  webhookUrl: string;
}

/** A stored result. */
export interface StoredResult {
  id: string;
  node: string;
  filename: string;
  contentType: string;
  bytes: Buffer;
  fields: Record<string, string>;
}

interface NodeState {
  node: DoubleNode;
  /** Local results of this node (project-scoped at the real service). */
  local: Map<string, StoredResult>;
  /** tag → object ids, in upload order. */
  tags: Map<string, string[]>;
  server: http.Server;
  url: string;
  tokens: Set<string>;
  subscriptions: Map<string, Subscription>;
}

/** The running double; see the module comment. */
export class FlameNodeDouble {
  /** Every request, in arrival order. */
  readonly requests: RecordedRequest[] = [];
  /** Every webhook push attempt. */
  readonly pushes: RecordedPush[] = [];
  /** Final results submitted to the hub, in order. */
  readonly finals: StoredResult[] = [];
  /** Intermediate results at the hub, by id. */
  readonly intermediate = new Map<string, StoredResult>();
  /** Log lines posted to each node's orchestrator (`POST /po/stream_logs`), in order. */
  readonly logs: Array<{ node: string; log: string; log_type: string; analysis_id: string; status: string; progress: number }> = [];
  private readonly faults: Fault[] = [];
  private readonly nodes = new Map<string, NodeState>();
  private pushesInFlight = 0;

  constructor(readonly options: DoubleOptions) {}

  /** Base URL of `nodeId`'s nginx (what `http://nginx-<DEPLOYMENT_NAME>` is in a deployment). */
  nginxUrl(nodeId: string): string {
    return this.state(nodeId).url;
  }

  /** A valid token of `nodeId` (the first issued). */
  token(nodeId: string): string {
    return [...this.state(nodeId).tokens][0];
  }

  /** Issues a further valid token for `nodeId` (a JWT expiring in `expiresInS` seconds). */
  issueToken(nodeId: string, expiresInS = 3600): string {
    const t = makeJwt(nodeId, expiresInS);
    this.state(nodeId).tokens.add(t);
    return t;
  }

  /** Makes `token` of `nodeId` invalid (requests with it get 401). */
  revokeToken(nodeId: string, token: string): void {
    this.state(nodeId).tokens.delete(token);
  }

  /** The webhook subscriptions of `nodeId`. */
  subscriptions(nodeId: string): Subscription[] {
    return [...this.state(nodeId).subscriptions.values()];
  }

  /** Adds a fault. */
  inject(fault: Fault): void {
    this.faults.push({ ...fault });
  }

  /** Recorded requests to `nodeId` whose path matches. */
  requestsTo(nodeId: string, path: RegExp, method?: string): RecordedRequest[] {
    return this.requests.filter((r) => r.node === nodeId && path.test(r.path) && (!method || r.method === method));
  }

  /** Starts one nginx per node. */
  async start(): Promise<void> {
    for (const node of this.options.nodes) {
      const server = http.createServer((req, res) => void this.serve(node.nodeId, req, res));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      this.nodes.set(node.nodeId, { node, server, url, tokens: new Set([makeJwt(node.nodeId, this.options.tokenLifetimeS ?? 3600)]), subscriptions: new Map(), local: new Map(), tags: new Map() });
    }
  }

  /**
   * One round of the orchestrator's status loop for `nodeId`'s pod at `analysisUrl` (its
   * `/analysis/` as nginx forwards it): `GET /healthz`; when `token_remaining_time` is below
   * `refreshBelowS` (the real one: twice its loop interval + 1), a fresh token is issued and posted to
   * `/token_refresh`. Returns the status as the orchestrator maps it (anything unknown or not 200 is
   * `failed`), the HTTP status and the answer (a failed one's body as `raw.body`).
   */
  async orchestratorTick(nodeId: string, analysisUrl: string, refreshBelowS = 21): Promise<{ status: string; refreshedTo?: string; raw: Record<string, unknown>; httpStatus: number }> {
    const res = await fetch(`${analysisUrl}/healthz`);
    if (!res.ok) return { status: 'failed', raw: { body: await res.text() }, httpStatus: res.status };
    const raw = (await res.json()) as Record<string, unknown>;
    const status = ['executed', 'executing', 'stuck'].includes(raw.status as string) ? (raw.status as string) : 'failed';
    let refreshedTo: string | undefined;
    if (typeof raw.token_remaining_time === 'number' && raw.token_remaining_time < refreshBelowS) {
      refreshedTo = this.issueToken(nodeId, this.options.refreshedTokenLifetimeS);
      const r = await fetch(`${analysisUrl}/token_refresh`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: refreshedTo }) });
      if (!r.ok) throw new Error(`token_refresh answered ${r.status}`);
    }
    return { status, refreshedTo, raw, httpStatus: res.status };
  }

  /** Posts the partners' statuses to a pod's `/partner_status`, as the orchestrator does; returns its answer. */
  async postPartnerStatus(analysisUrl: string, statuses: Record<string, string>): Promise<unknown> {
    const r = await fetch(`${analysisUrl}/partner_status`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ partner_status: statuses }) });
    return r.json();
  }

  /** Waits until no webhook push is under way (at most `ms`). */
  async settle(ms = 5000): Promise<void> {
    const deadline = Date.now() + ms;
    while (this.pushesInFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  }

  /** Stops every server. */
  async close(): Promise<void> {
    await Promise.all(
      [...this.nodes.values()].map(
        (n) =>
          new Promise<void>((resolve) => {
            n.server.close(() => resolve());
            n.server.closeAllConnections();
          }),
      ),
    );
  }

  private state(nodeId: string): NodeState {
    const s = this.nodes.get(nodeId);
    if (!s) throw new Error(`double: no node ${nodeId}`);
    return s;
  }

  private async serve(nodeId: string, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    try {
      for await (const c of req) chunks.push(c as Buffer);
    } catch {
      // The client gave up mid-upload (as a failing stream does): record it, store nothing.
      this.requests.push({ node: nodeId, method: req.method ?? '', path: (req.url ?? '').split('?')[0], headers: req.headers, body: Buffer.concat(chunks), status: -1, at: Date.now() });
      return;
    }
    const body = Buffer.concat(chunks);
    const path = (req.url ?? '').split('?')[0];
    const record: RecordedRequest = { node: nodeId, method: req.method ?? '', path, headers: req.headers, body, status: 0, at: Date.now() };
    this.requests.push(record);
    const send = (status: number, json?: unknown): void => {
      record.status = status;
      const text = json === undefined ? '' : JSON.stringify(json);
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(text);
    };
    const fault = this.faults.find((f) => f.times > 0 && (!f.node || f.node === nodeId) && (!f.method || f.method === req.method) && f.path.test(path));
    if (fault) {
      fault.times -= 1;
      if (fault.delayMs) await new Promise((r) => setTimeout(r, fault.delayMs));
      if (fault.status) return send(fault.status, { detail: 'injected fault' });
    }
    const state = this.state(nodeId);
    if (path.startsWith('/kong/')) {
      // Kong checks its apikey only.
      if (req.headers.apikey !== (this.options.dataSourceToken ?? 'ds-token')) return send(401, { message: 'Invalid authentication credentials' });
      const query = new URLSearchParams((req.url ?? '').split('?')[1] ?? '');
      const answer = this.kong(nodeId, path.slice('/kong/'.length), query);
      record.status = answer.status;
      res.writeHead(answer.status, { 'content-type': answer.type });
      res.end(answer.body);
      return;
    }
    const auth = req.headers.authorization ?? '';
    if (!auth.startsWith('Bearer ') || !state.tokens.has(auth.slice(7))) return send(401, { detail: 'unauthorized' });
    try {
      const query = new URLSearchParams((req.url ?? '').split('?')[1] ?? '');
      const answer = this.route(state, req.method ?? '', path, body, query, req.headers);
      if (answer.bytes) {
        record.status = answer.status;
        res.writeHead(answer.status, { 'content-type': 'application/octet-stream' });
        res.end(answer.bytes);
        return;
      }
      send(answer.status, answer.json);
    } catch (e) {
      send(400, { detail: (e as Error).message });
    }
  }

  private route(state: NodeState, method: string, path: string, body: Buffer, query: URLSearchParams, headers: http.IncomingHttpHeaders): { status: number; json?: unknown; bytes?: Buffer } {
    if (method === 'GET' && path === '/message-broker/healthz') return { status: 200, json: { status: 'ok' } };
    const m = /^\/message-broker\/analyses\/([^/]+)(\/.*)$/.exec(path);
    if (method === 'POST' && path === '/po/stream_logs') {
      const b = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
      const types = ['emerg', 'alert', 'crit', 'error', 'warn', 'notice', 'info', 'debug'];
      if (typeof b.log !== 'string' || !types.includes(b.log_type as string) || typeof b.analysis_id !== 'string' || typeof b.status !== 'string' || !Number.isInteger(b.progress)) {
        return { status: 422, json: { detail: 'body does not match CreateLogEntity' } };
      }
      this.logs.push({ node: state.node.nodeId, ...(b as { log: string; log_type: string; analysis_id: string; status: string; progress: number }) });
      return { status: 200, json: null };
    }
    const ds = /^\/hub-adapter\/kong\/datastore\/([^/]+)$/.exec(path);
    if (method === 'GET' && ds) {
      if (decodeURIComponent(ds[1]) !== (this.options.projectId ?? 'project')) return { status: 200, json: { data: [] } };
      const sources = this.options.data?.[state.node.nodeId] ?? [];
      return { status: 200, json: { data: sources.map((d) => ({ id: `kong-${d.name}`, name: d.name, paths: [`/${d.name}/${d.type}`], protocols: ['http'] })) } };
    }
    if (path.startsWith('/storage/')) return this.storage(state, method, path.slice('/storage'.length), body, query, headers);
    if (m) {
      const [, analysisId, rest] = m;
      if (decodeURIComponent(analysisId) !== this.options.analysisId) return { status: 502, json: { detail: 'analysis nodes not obtainable' } };
      return this.broker(state, method, rest, body);
    }
    return { status: 404, json: { detail: `no route ${method} ${path}` } };
  }

  private broker(state: NodeState, method: string, rest: string, body: Buffer): { status: number; json?: unknown } {
    const all = this.options.nodes;
    if (method === 'GET' && rest === '/participants') return { status: 200, json: all.map((n) => ({ ...n })) };
    if (method === 'GET' && rest === '/participants/self') return { status: 200, json: { ...state.node } };
    if (rest === '/messages/subscriptions') {
      if (method === 'GET') return { status: 200, json: [...state.subscriptions.values()] };
      if (method === 'POST') {
        const { webhookUrl } = JSON.parse(body.toString('utf8')) as { webhookUrl?: unknown };
        if (typeof webhookUrl !== 'string' || !/^https?:\/\//.test(webhookUrl)) return { status: 400, json: { detail: 'webhookUrl must be a URL' } };
        const sub = { subscriptionId: randomUUID(), analysisId: this.options.analysisId, webhookUrl };
        state.subscriptions.set(sub.subscriptionId, sub);
        return { status: 201, json: sub };
      }
    }
    const sub = /^\/messages\/subscriptions\/([^/]+)$/.exec(rest);
    if (sub && method === 'DELETE') {
      state.subscriptions.delete(decodeURIComponent(sub[1]));
      return { status: 204 };
    }
    if (method === 'POST' && (rest === '/messages' || rest === '/messages/broadcast')) {
      const req = JSON.parse(body.toString('utf8')) as { recipients?: unknown; message?: unknown };
      if (!req.message || typeof req.message !== 'object') return { status: 400, json: { detail: 'message must not be null' } };
      let recipients: string[];
      if (rest === '/messages/broadcast') {
        recipients = all.map((n) => n.nodeId).filter((id) => id !== state.node.nodeId);
      } else {
        if (!Array.isArray(req.recipients) || req.recipients.length === 0) return { status: 400, json: { detail: 'recipients must not be empty' } };
        const unknown = req.recipients.filter((r) => !all.some((n) => n.nodeId === r));
        if (unknown.length > 0) return { status: 400, json: { detail: `invalid recipients ${unknown.join(', ')}` } };
        recipients = req.recipients as string[];
      }
      for (const to of recipients) {
        for (const s of this.state(to).subscriptions.values()) void this.push(to, s.webhookUrl, req.message as Record<string, unknown>);
      }
      return { status: 202 };
    }
    return { status: 404, json: { detail: `no broker route ${method} ${rest}` } };
  }

  /** Kong's data routes: `{name}/fhir/{Type}[/{id}]` (paged Bundles with upstream next links), `{name}/s3[/{key}]`. */
  private kong(nodeId: string, rest: string, query: URLSearchParams): { status: number; type: string; body: string | Buffer } {
    const [name, kind, ...tail] = rest.split('/');
    const source = (this.options.data?.[nodeId] ?? []).find((d) => d.name === name && d.type === kind);
    const json = (status: number, v: unknown) => ({ status, type: 'application/fhir+json', body: JSON.stringify(v) });
    if (!source) return { status: 404, type: 'application/json', body: JSON.stringify({ message: 'no Route matched with those values' }) };
    if (source.type === 'fhir') {
      const [type, id] = tail;
      const all = source.resources.filter((r) => r.resourceType === type);
      if (id !== undefined) {
        const r = all.find((x) => x.id === id);
        return r ? json(200, r) : json(404, { resourceType: 'OperationOutcome' });
      }
      const size = Number(query.get('_count') ?? source.pageSize ?? 50);
      const offset = Number(query.get('_offset') ?? 0);
      const page = all.slice(offset, offset + size);
      const link = offset + size < all.length ? [{ relation: 'next', url: `http://fhir-upstream.invalid:8080/fhir/${type}?_count=${size}&_offset=${offset + size}` }] : [];
      return json(200, { resourceType: 'Bundle', type: 'searchset', total: all.length, link, entry: page.map((resource) => ({ resource, search: { mode: 'match' } })) });
    }
    const key = tail.map(decodeURIComponent).join('/');
    if (key) {
      const b = source.objects[key];
      return b ? { status: 200, type: 'application/octet-stream', body: b } : { status: 404, type: 'application/xml', body: '<Error><Code>NoSuchKey</Code></Error>' };
    }
    const prefix = query.get('prefix') ?? '';
    const keys = Object.keys(source.objects).filter((k) => k.startsWith(prefix)).sort();
    const start = Number(query.get('continuation-token') ?? 0);
    const size = source.pageSize ?? 1000;
    const page = keys.slice(start, start + size);
    const more = start + size < keys.length;
    const esc = (k: string) => k.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
    const xml = `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>${name}</Name><KeyCount>${page.length}</KeyCount><IsTruncated>${more}</IsTruncated>${more ? `<NextContinuationToken>${start + size}</NextContinuationToken>` : ''}${page
      .map((k) => `<Contents><Key>${esc(k)}</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><Size>${source.objects[k].byteLength}</Size></Contents>`)
      .join('')}</ListBucketResult>`;
    return { status: 200, type: 'application/xml', body: xml };
  }

  /** The storage service's routes (node-result-service). */
  private storage(state: NodeState, method: string, path: string, body: Buffer, query: URLSearchParams, headers: http.IncomingHttpHeaders): { status: number; json?: unknown; bytes?: Buffer } {
    const p = path.replace(/\/+$/, '') || '/';
    const upload = (): StoredResult | { status: number; json: unknown } => {
      const form = parseMultipart(body, String(headers['content-type'] ?? ''));
      const file = form.find((f) => f.name === 'file' && f.filename !== undefined);
      if (!file) return { status: 422, json: { detail: 'field file required' } };
      const fields: Record<string, string> = {};
      for (const f of form) if (f.filename === undefined) fields[f.name] = f.data.toString('utf8');
      return { id: randomUUID(), node: state.node.nodeId, filename: file.filename!, contentType: file.contentType, bytes: file.data, fields };
    };
    if (method === 'PUT' && (p === '/final' || p === '/final/localdp')) {
      const r = upload();
      if (!('bytes' in r)) return r;
      if (p === '/final/localdp' && !(Number(r.fields.epsilon) > 0 && Number(r.fields.sensitivity) > 0)) return { status: 422, json: { detail: 'epsilon and sensitivity required' } };
      this.finals.push(r);
      return { status: 204 };
    }
    if (method === 'PUT' && p === '/intermediate') {
      const r = upload();
      if (!('bytes' in r)) return r;
      const remote = r.fields.remote_node_id;
      if (remote !== undefined && !this.nodes.has(remote)) return { status: 404, json: { detail: `Remote node with ID ${remote} does not exist.` } };
      this.intermediate.set(r.id, r);
      return { status: 200, json: { url: `${state.url}/storage/intermediate/${r.id}`, object_id: r.id } };
    }
    const inter = /^\/intermediate\/([^/]+)$/.exec(p);
    if (method === 'GET' && inter) {
      const r = this.intermediate.get(inter[1]);
      if (!r) return { status: 404, json: { detail: `Object with ID ${inter[1]} does not exist` } };
      const remote = r.fields.remote_node_id;
      // Encrypted for one node: only that node, naming the sender, can read it (the service decrypts).
      if (remote !== undefined && (remote !== state.node.nodeId || query.get('node_id') !== r.node)) {
        return { status: 400, json: { detail: `File with ID ${r.id} cannot be decrypted` } };
      }
      return { status: 200, bytes: r.bytes };
    }
    if (method === 'PUT' && p === '/local') {
      const r = upload();
      if (!('bytes' in r)) return r;
      const tag = r.fields.tag;
      if (tag !== undefined && !/^(?:[a-z0-9]{1,2}|[a-z0-9][a-z0-9-]{0,30}[a-z0-9])$/.test(tag)) return { status: 400, json: { detail: `Invalid tag \`${tag}\`` } };
      state.local.set(r.id, r);
      if (tag !== undefined) state.tags.set(tag, [...(state.tags.get(tag) ?? []), r.id]);
      return { status: 200, json: { url: `${state.url}/storage/local/${r.id}` } };
    }
    if (method === 'GET' && p === '/local/tags') {
      return { status: 200, json: { tags: [...state.tags.keys()].map((name) => ({ name, url: `${state.url}/storage/local/tags/${name}` })) } };
    }
    const tagged = /^\/local\/tags\/([^/]+)$/.exec(p);
    if (method === 'GET' && tagged) {
      const ids = state.tags.get(tagged[1]) ?? [];
      return { status: 200, json: { results: ids.map((id) => ({ filename: state.local.get(id)!.filename, url: `${state.url}/storage/local/${id}` })) } };
    }
    const local = /^\/local\/([^/]+)$/.exec(p);
    if (method === 'GET' && local) {
      const r = state.local.get(local[1]);
      if (!r) return { status: 404, json: { detail: `Object with ID ${local[1]} does not exist` } };
      return { status: 200, bytes: r.bytes };
    }
    return { status: 404, json: { detail: `no storage route ${method} ${path}` } };
  }

  /** Forwards one message to one webhook as the broker does: retried on 5xx only. */
  private async push(to: string, url: string, message: Record<string, unknown>): Promise<void> {
    this.pushesInFlight += 1;
    try {
      const retries = this.options.webhookRetries ?? 5;
      const delay = this.options.webhookRetryDelayMs ?? 200;
      await new Promise((r) => setImmediate(r));
      for (let attempt = 1; attempt <= retries + 1; attempt++) {
        let outcome: number | string;
        try {
          const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(message) });
          await res.arrayBuffer();
          outcome = res.status;
        } catch (e) {
          outcome = String((e as { cause?: unknown }).cause ?? e);
        }
        this.pushes.push({ to, url, outcome, attempt, message });
        if (typeof outcome !== 'number' || outcome < 500) return;
        await new Promise((r) => setTimeout(r, delay * (0.25 + Math.random() * 1.5)));
      }
    } finally {
      this.pushesInFlight -= 1;
    }
  }
}

/** One part of a multipart form. */
interface FormPart {
  name: string;
  filename?: string;
  contentType: string;
  data: Buffer;
}

/** Parses a buffered multipart/form-data body (the double may buffer; the client under test streams). */
function parseMultipart(body: Buffer, contentType: string): FormPart[] {
  const m = /boundary=([^;]+)/.exec(contentType);
  if (!m) throw new Error('multipart: no boundary');
  const delimiter = Buffer.from(`--${m[1]}`);
  const parts: FormPart[] = [];
  let pos = body.indexOf(delimiter);
  while (pos >= 0) {
    const start = pos + delimiter.length;
    if (body.subarray(start, start + 2).toString() === '--') break;
    const next = body.indexOf(delimiter, start);
    if (next < 0) throw new Error('multipart: unterminated part');
    const part = body.subarray(start + 2, next - 2);
    const headerEnd = part.indexOf('\r\n\r\n');
    const head = part.subarray(0, headerEnd).toString('utf8');
    const name = /name="([^"]*)"/.exec(head)?.[1] ?? '';
    const filename = /filename="([^"]*)"/.exec(head)?.[1];
    const type = /content-type:\s*([^\r\n]+)/i.exec(head)?.[1] ?? 'text/plain';
    parts.push({ name, filename, contentType: type, data: Buffer.from(part.subarray(headerEnd + 4)) });
    pos = next;
  }
  return parts;
}

/** A JWT-shaped token for `nodeId` expiring in `expiresInS` (unsigned: the double only compares it). */
function makeJwt(nodeId: string, expiresInS: number): string {
  const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: nodeId, exp: Math.floor(Date.now() / 1000) + expiresInS, jti: randomUUID() })}.sig`;
}

/** Starts a double for `options`. */
export async function startFlameNodeDouble(options: DoubleOptions): Promise<FlameNodeDouble> {
  const d = new FlameNodeDouble(options);
  await d.start();
  return d;
}
