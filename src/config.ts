/**
 * One typed configuration for FlameSDK, read from `FLAME_*` environment variables or passed as an
 * object. With nothing set, everything runs embedded: in-process broker, filesystem storage.
 * Every validation error names the offending field (and the env variable it came from).
 */
import path from 'node:path';
import { BadRequestError } from './errors.js';
import type { DataSourceConfig, S3Connection } from './data/port.js';
import type { MemoryBrokerHub } from './broker/memory.js';
import { limitsFromEnv, resolveLimits, type Limits } from './limits.js';
import type { TrustConfig } from './trust/peers.js';

/** A node's part in the analysis: the one aggregator merges and submits final results, analyzers compute on their data. */
export type Role = 'aggregator' | 'analyzer';

/** Which message broker to use: the in-process one (default) or a NATS server with JetStream. */
export type BrokerConfig =
  | {
      /** In-process broker: every node runs in this process. */
      type: 'memory';
      /** The shared in-process broker; default the process-wide one (`defaultMemoryBrokerHub()`). */
      hub?: MemoryBrokerHub;
    }
  | {
      /** NATS with JetStream (`FLAME_NATS_URL`). */
      type: 'nats';
      /** NATS server URLs (`FLAME_NATS_URL`, comma-separated). */
      servers: string[];
      /** User name (`FLAME_NATS_USER`). */
      user?: string;
      /** Password (`FLAME_NATS_PASSWORD`). */
      pass?: string;
      /** Auth token (`FLAME_NATS_TOKEN`). */
      token?: string;
      /** Path to a NATS credentials file (per-node credentials). */
      credsFile?: string;
      /** Accept self-signed TLS certificates. */
      insecure?: boolean;
    }
  | FlameNodeBrokerConfig;

/**
 * The `flame-node` profile: the services of a FLAME node as PrivateAIM deploys it, behind the node's
 * nginx (message broker, storage service, Kong, pod orchestrator). Chosen from FLAME's own
 * environment (`KEYCLOAK_TOKEN` with `DEPLOYMENT_NAME`); the node id, the participants and the
 * aggregator then come from the message broker.
 */
export interface FlameNodeBrokerConfig {
  /** The FLAME node profile. */
  type: 'flame-node';
  /** Base URL of the node's nginx (`FLAME_NODE_NGINX_URL`; default `http://nginx-<DEPLOYMENT_NAME>`). */
  nginxUrl: string;
  /** Where nginx forwards to this pod (`FLAME_NODE_ANALYSIS_URL`; default `<nginx>/analysis`); the webhook is below it. */
  analysisUrl: string;
  /** Port of the pod's server (`FLAME_NODE_PORT`; default 8000, where nginx forwards). */
  port: number;
  /** The Keycloak token (`KEYCLOAK_TOKEN`; replaced by the orchestrator through `/token_refresh`). */
  keycloakToken: string;
  /** Kong's apikey for the project's data sources (`DATA_SOURCE_TOKEN`). */
  dataSourceToken?: string;
}

/** Where an object store keeps its objects: a local folder or an S3 bucket. */
export type StoreConfig =
  | {
      /** Filesystem store (`FLAME_HUB_DIR` / `FLAME_LOCAL_DIR`). */
      type: 'fs';
      /** Root folder; created on first use if missing. */
      dir: string;
    }
  | ({
      /** S3 store (`FLAME_HUB_S3_*` / `FLAME_LOCAL_S3_*`). */
      type: 's3';
      /** Key prefix inside the bucket. */
      prefix?: string;
      /** Multipart part size in bytes (default 8 MiB; S3's minimum is 5 MiB). */
      partSize?: number;
      /** Parts uploaded in parallel (default 2); memory use is about partSize × queueSize. */
      queueSize?: number;
    } & S3Connection);

/** The resolved configuration of a node (see {@link resolveConfig} for defaults). */
export interface FlameConfig {
  /** This node's id (`FLAME_NODE_ID`; default `node-1`). */
  nodeId: string;
  /** The analysis' id (`FLAME_ANALYSIS_ID`; default `local-analysis`). */
  analysisId: string;
  /** The project's id (`FLAME_PROJECT_ID`; default `local-project`). */
  projectId: string;
  /** Every node of the analysis, this one included. */
  participants: string[];
  /** The node that merges and may submit the final result (default: the last participant). */
  aggregatorId: string;
  /** The message broker (default in-process). */
  broker: BrokerConfig;
  /** Hub storage: final results and shared intermediate results. */
  hub: StoreConfig;
  /** Node-local storage for intermediate results. */
  local: StoreConfig;
  /** The data sources this node may read (`FLAME_DATA_SOURCES`, a JSON array; default none). */
  dataSources: DataSourceConfig[];
  /** Port of the /healthz endpoint; undefined turns it off, 0 picks a free port. */
  healthPort?: number;
  /** Lowest level logged (`FLAME_LOG_LEVEL`; default `info`). */
  logLevel: LogLevel;
  /** Interval of participant heartbeats in ms (`FLAME_HEARTBEAT_MS`; default 2000, at least 50). */
  heartbeatMs: number;
  /** `/healthz` says `stuck` after this long executing without progress or messages (`FLAME_STUCK_AFTER_MS`; default 10 min). */
  stuckAfterMs: number;
  /** Caps on what untrusted input may cost this node (`FLAME_MAX_*`; see `Limits`). */
  limits: Limits;
  /** What this node lets leave it (node policy; see `DisclosurePolicy`). */
  disclosure: DisclosurePolicy;
  /**
   * Whose keys this node trusts: a roster signed by the operator (`FLAME_ROSTER`, checked with
   * `FLAME_OPERATOR_KEY`), a pinned roster, or first-use trust (`FLAME_TRUST=tofu`, warned).
   */
  trust: TrustConfig;
  /**
   * Folder of the node's durable state — the inbox journal (messages kept across restarts, replay
   * windows) and the quarantine (`FLAME_STATE_DIR`; default `<local dir>/state`, or `.flame/state/<node>`
   * when local storage is S3). Keep it on a persistent volume.
   */
  stateDir: string;
}

/**
 * A node's disclosure control: no count, histogram bin or confusion-count cell below `minCount` leaves
 * the node (it is suppressed or merged into a neighbour), and, when `noiseScale` is set, Laplace noise of
 * that scale is added to the numbers of the final result the aggregator submits.
 */
export interface DisclosurePolicy {
  /** Smallest count shared (`FLAME_MIN_COUNT`; default 3; 1 turns suppression off). */
  minCount: number;
  /** Scale b of the Laplace noise added to final numeric results (`FLAME_NOISE_SCALE`); off when absent. */
  noiseScale?: number;
}

/** Log levels, lowest first; `silent` logs nothing. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const LOG_LEVELS: LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent'];

/** What a caller may pass: everything optional, filled from env and then defaults. */
export type FlameConfigInput = Partial<Omit<FlameConfig, 'limits' | 'disclosure' | 'trust'>> & {
  /** Trust settings to change (`mode` defaults to `roster`). */
  trust?: Partial<TrustConfig>;
  /** Caps to change; the others keep their defaults. */
  limits?: Partial<Limits>;
  /** Disclosure settings to change; the others keep their defaults. */
  disclosure?: Partial<DisclosurePolicy>;
};

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

function bad(field: string, message: string): never {
  throw new BadRequestError(`config ${field}: ${message}`);
}

function checkId(field: string, value: unknown): string {
  if (typeof value !== 'string' || !ID_PATTERN.test(value) || value.includes('..')) {
    bad(field, `expected an id of letters, digits, '_', '-' or '.' (1-64 chars), got ${JSON.stringify(value)}`);
  }
  return value;
}

function envList(v: string | undefined): string[] | undefined {
  if (v === undefined || v.trim() === '') return undefined;
  return v.split(',').map((s) => s.trim()).filter(Boolean);
}

function envInt(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) bad(name, `expected a whole number >= 0, got ${JSON.stringify(v)}`);
  return n;
}

function envBool(env: NodeJS.ProcessEnv, name: string): boolean {
  const v = (env[name] ?? '').toLowerCase();
  return v === '1' || v === 'true' || v === 'yes';
}

function s3FromEnv(env: NodeJS.ProcessEnv, prefix: string): StoreConfig | undefined {
  const endpoint = env[`${prefix}_S3_ENDPOINT`];
  const bucket = env[`${prefix}_S3_BUCKET`];
  if (!endpoint && !bucket) return undefined;
  if (!bucket) bad(`${prefix}_S3_BUCKET`, 'required when an S3 endpoint is set');
  return {
    type: 's3',
    endpoint,
    bucket,
    region: env[`${prefix}_S3_REGION`] ?? 'us-east-1',
    accessKeyId: env[`${prefix}_S3_ACCESS_KEY_ID`],
    secretAccessKey: env[`${prefix}_S3_SECRET_ACCESS_KEY`],
    prefix: env[`${prefix}_S3_PREFIX`],
    forcePathStyle: true,
    insecure: envBool(env, 'FLAME_INSECURE'),
  };
}

/** The config that `FLAME_*` environment variables describe (only the fields they set). */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env): FlameConfigInput {
  const out: FlameConfigInput = {};
  if (env.FLAME_NODE_ID) out.nodeId = env.FLAME_NODE_ID;
  if (env.FLAME_ANALYSIS_ID) out.analysisId = env.FLAME_ANALYSIS_ID;
  if (env.FLAME_PROJECT_ID) out.projectId = env.FLAME_PROJECT_ID;
  const parts = envList(env.FLAME_PARTICIPANTS);
  if (parts) out.participants = parts;
  if (env.FLAME_AGGREGATOR_ID) out.aggregatorId = env.FLAME_AGGREGATOR_ID;
  const flameNode = flameNodeFromEnv(env);
  if (flameNode) {
    out.broker = flameNode;
    if (!env.FLAME_ANALYSIS_ID && env.ANALYSIS_ID) out.analysisId = env.ANALYSIS_ID;
    if (!env.FLAME_PROJECT_ID && env.PROJECT_ID) out.projectId = env.PROJECT_ID;
  }
  const servers = flameNode ? undefined : envList(env.FLAME_NATS_URL);
  if (servers) {
    out.broker = {
      type: 'nats',
      servers,
      user: env.FLAME_NATS_USER || undefined,
      pass: env.FLAME_NATS_PASSWORD || undefined,
      token: env.FLAME_NATS_TOKEN || undefined,
      credsFile: env.FLAME_NATS_CREDS || undefined,
      insecure: envBool(env, 'FLAME_INSECURE'),
    };
  }
  const hub = s3FromEnv(env, 'FLAME_HUB') ?? (env.FLAME_HUB_DIR ? { type: 'fs', dir: env.FLAME_HUB_DIR } : undefined);
  if (hub) out.hub = hub;
  const local = s3FromEnv(env, 'FLAME_LOCAL') ?? (env.FLAME_LOCAL_DIR ? { type: 'fs', dir: env.FLAME_LOCAL_DIR } : undefined);
  if (local) out.local = local;
  if (env.FLAME_DATA_SOURCES) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(env.FLAME_DATA_SOURCES);
    } catch (e) {
      bad('FLAME_DATA_SOURCES', `not valid JSON (${(e as Error).message})`);
    }
    out.dataSources = parsed as DataSourceConfig[];
  }
  const hp = envInt(env, 'FLAME_HEALTH_PORT');
  if (hp !== undefined) out.healthPort = hp;
  if (env.FLAME_LOG_LEVEL) out.logLevel = env.FLAME_LOG_LEVEL as LogLevel;
  const hb = envInt(env, 'FLAME_HEARTBEAT_MS');
  if (hb !== undefined) out.heartbeatMs = hb;
  const stuck = envInt(env, 'FLAME_STUCK_AFTER_MS');
  if (stuck !== undefined) out.stuckAfterMs = stuck;
  const limits = limitsFromEnv(env);
  if (Object.keys(limits).length > 0) out.limits = limits;
  if (env.FLAME_TRUST || env.FLAME_ROSTER || env.FLAME_OPERATOR_KEY) {
    const mode = env.FLAME_TRUST || 'roster';
    if (mode !== 'roster' && mode !== 'tofu') bad('FLAME_TRUST', `expected "roster" or "tofu", got ${JSON.stringify(mode)}`);
    out.trust = { mode, ...(env.FLAME_ROSTER ? { roster: env.FLAME_ROSTER } : {}), ...(env.FLAME_OPERATOR_KEY ? { operatorKey: env.FLAME_OPERATOR_KEY } : {}) };
  }
  if (env.FLAME_STATE_DIR) out.stateDir = env.FLAME_STATE_DIR;
  const minCount = envInt(env, 'FLAME_MIN_COUNT');
  const noise = env.FLAME_NOISE_SCALE;
  if (minCount !== undefined || (noise !== undefined && noise !== '')) {
    out.disclosure = {};
    if (minCount !== undefined) out.disclosure.minCount = minCount;
    if (noise !== undefined && noise !== '') {
      const n = Number(noise);
      if (!Number.isFinite(n) || n <= 0) bad('FLAME_NOISE_SCALE', `expected a number > 0, got ${JSON.stringify(noise)}`);
      out.disclosure.noiseScale = n;
    }
  }
  return out;
}

function checkStore(field: string, s: unknown): StoreConfig {
  const store = s as StoreConfig;
  if (!store || typeof store !== 'object') bad(field, 'expected an object with type "fs" or "s3"');
  if (store.type === 'fs') {
    if (typeof store.dir !== 'string' || store.dir === '') bad(`${field}.dir`, 'expected a directory path');
  } else if (store.type === 's3') {
    if (typeof store.bucket !== 'string' || store.bucket === '') bad(`${field}.bucket`, 'expected a bucket name');
    if (typeof store.region !== 'string') bad(`${field}.region`, 'expected a region name');
  } else {
    bad(`${field}.type`, `expected "fs" or "s3", got ${JSON.stringify((store as { type?: unknown }).type)}`);
  }
  return store;
}

function checkDataSources(list: unknown): DataSourceConfig[] {
  if (!Array.isArray(list)) bad('dataSources', 'expected an array of data source objects');
  const seen = new Set<string>();
  list.forEach((raw, i) => {
    const d = raw as DataSourceConfig;
    const f = `dataSources[${i}]`;
    if (!d || typeof d !== 'object') bad(f, 'expected an object');
    checkId(`${f}.id`, d.id);
    if (seen.has(d.id)) bad(`${f}.id`, `duplicate data source id "${d.id}"`);
    seen.add(d.id);
    if (d.type === 'fhir') {
      try {
        new URL(d.baseUrl);
      } catch {
        bad(`${f}.baseUrl`, `expected an http(s) URL, got ${JSON.stringify(d.baseUrl)}`);
      }
    } else if (d.type === 's3') {
      if (typeof d.bucket !== 'string' || !d.bucket) bad(`${f}.bucket`, 'expected a bucket name');
    } else if (d.type === 'folder') {
      if (typeof d.path !== 'string' || !d.path) bad(`${f}.path`, 'expected a folder path');
    } else {
      bad(`${f}.type`, `expected "fhir", "s3" or "folder", got ${JSON.stringify((d as { type?: unknown }).type)}`);
    }
  });
  return list as DataSourceConfig[];
}

/** Defaults and checks of the disclosure policy (minCount a whole number >= 1, noiseScale > 0). */
function checkDisclosure(d: Partial<DisclosurePolicy>): DisclosurePolicy {
  const minCount = d.minCount ?? 3;
  if (!Number.isSafeInteger(minCount) || minCount < 1) bad('disclosure.minCount', `expected a whole number >= 1, got ${JSON.stringify(minCount)}`);
  if (d.noiseScale !== undefined && !(Number.isFinite(d.noiseScale) && d.noiseScale > 0)) bad('disclosure.noiseScale', `expected a number > 0, got ${JSON.stringify(d.noiseScale)}`);
  return d.noiseScale === undefined ? { minCount } : { minCount, noiseScale: d.noiseScale };
}

/**
 * The `flame-node` profile when FLAME's environment is there: `KEYCLOAK_TOKEN` and `DEPLOYMENT_NAME`
 * (as FLAME's pod orchestrator sets them), unless `FLAME_NATS_URL` asks for NATS.
 */
export function flameNodeFromEnv(env: NodeJS.ProcessEnv): FlameNodeBrokerConfig | undefined {
  if (!env.KEYCLOAK_TOKEN || !(env.DEPLOYMENT_NAME || env.FLAME_NODE_NGINX_URL) || env.FLAME_NATS_URL) return undefined;
  const nginxUrl = (env.FLAME_NODE_NGINX_URL || `http://nginx-${env.DEPLOYMENT_NAME}`).replace(/\/+$/, '');
  const port = envInt(env, 'FLAME_NODE_PORT') ?? 8000;
  return {
    type: 'flame-node',
    nginxUrl,
    analysisUrl: (env.FLAME_NODE_ANALYSIS_URL || `${nginxUrl}/analysis`).replace(/\/+$/, ''),
    port,
    keycloakToken: env.KEYCLOAK_TOKEN,
    ...(env.DATA_SOURCE_TOKEN ? { dataSourceToken: env.DATA_SOURCE_TOKEN } : {}),
  };
}

/**
 * Merge `input` over the environment over the embedded defaults, and validate the result.
 * Throws BadRequestError naming the first bad field.
 */
export function resolveConfig(input: FlameConfigInput = {}, env: NodeJS.ProcessEnv = process.env): FlameConfig {
  const merged: FlameConfigInput = { ...configFromEnv(env), ...input };
  const nodeId = checkId('nodeId', merged.nodeId ?? 'node-1');
  const analysisId = checkId('analysisId', merged.analysisId ?? 'local-analysis');
  const projectId = checkId('projectId', merged.projectId ?? 'local-project');
  const participants = merged.participants ?? [nodeId];
  if (!Array.isArray(participants) || participants.length === 0) bad('participants', 'expected a non-empty list of node ids');
  participants.forEach((p, i) => checkId(`participants[${i}]`, p));
  if (new Set(participants).size !== participants.length) bad('participants', 'contains a node id twice');
  if (!participants.includes(nodeId)) bad('participants', `must include this node "${nodeId}"`);
  const aggregatorId = checkId('aggregatorId', merged.aggregatorId ?? participants[participants.length - 1]);
  if (!participants.includes(aggregatorId)) bad('aggregatorId', `"${aggregatorId}" is not one of the participants`);
  const broker = merged.broker ?? { type: 'memory' };
  if (broker.type === 'nats') {
    if (!Array.isArray(broker.servers) || broker.servers.length === 0) bad('broker.servers', 'expected at least one NATS URL');
  } else if (broker.type === 'flame-node') {
    if (!/^https?:\/\//.test(broker.nginxUrl ?? '')) bad('broker.nginxUrl', `expected an http(s) URL, got ${JSON.stringify(broker.nginxUrl)}`);
    if (!/^https?:\/\//.test(broker.analysisUrl ?? '')) bad('broker.analysisUrl', `expected an http(s) URL, got ${JSON.stringify(broker.analysisUrl)}`);
    if (!Number.isInteger(broker.port) || broker.port < 0 || broker.port > 65535) bad('broker.port', `expected a port 0-65535, got ${broker.port}`);
    if (typeof broker.keycloakToken !== 'string' || broker.keycloakToken === '') bad('broker.keycloakToken', 'expected the KEYCLOAK_TOKEN');
  } else if (broker.type !== 'memory') {
    bad('broker.type', `expected "memory", "nats" or "flame-node", got ${JSON.stringify((broker as { type?: unknown }).type)}`);
  }
  const root = path.resolve('.flame');
  const hub = checkStore('hub', merged.hub ?? { type: 'fs', dir: path.join(root, 'hub') });
  const local = checkStore('local', merged.local ?? { type: 'fs', dir: path.join(root, 'nodes', nodeId) });
  const dataSources = checkDataSources(merged.dataSources ?? []);
  const logLevel = merged.logLevel ?? 'info';
  if (!LOG_LEVELS.includes(logLevel)) bad('logLevel', `expected one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(logLevel)}`);
  const heartbeatMs = merged.heartbeatMs ?? 2000;
  if (!Number.isInteger(heartbeatMs) || heartbeatMs < 50) bad('heartbeatMs', `expected a whole number of ms >= 50, got ${heartbeatMs}`);
  const stuckAfterMs = merged.stuckAfterMs ?? 10 * 60_000;
  if (!Number.isInteger(stuckAfterMs) || stuckAfterMs < 1000) bad('stuckAfterMs', `expected a whole number of ms >= 1000, got ${stuckAfterMs}`);
  const healthPort = merged.healthPort;
  if (healthPort !== undefined && (!Number.isInteger(healthPort) || healthPort < 0 || healthPort > 65535)) {
    bad('healthPort', `expected a port 0-65535, got ${healthPort}`);
  }
  const fromEnv = configFromEnv(env);
  const limits = resolveLimits({ ...fromEnv.limits, ...input.limits });
  const disclosure = checkDisclosure({ ...fromEnv.disclosure, ...input.disclosure });
  const trust = { mode: 'roster' as const, ...fromEnv.trust, ...input.trust } as TrustConfig;
  if (trust.mode !== 'roster' && trust.mode !== 'tofu') bad('trust.mode', `expected "roster" or "tofu", got ${JSON.stringify(trust.mode)}`);
  const stateDir = merged.stateDir ?? (local.type === 'fs' ? path.join(local.dir, 'state') : path.join(root, 'state', nodeId));
  if (typeof stateDir !== 'string' || stateDir === '') bad('stateDir', 'expected a folder path');
  return {
    nodeId, analysisId, projectId, participants, aggregatorId, broker, hub, local, dataSources, healthPort, logLevel, heartbeatMs, stuckAfterMs, limits, disclosure, trust,
    stateDir: path.resolve(stateDir),
  };
}
