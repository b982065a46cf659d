/**
 * What the process tests on the FLAME node double share: `flame run` of an analysis in a child
 * process, the environment FLAME gives an analysis pod (pointed at the double), and the
 * orchestrator's status loop (`/healthz` polling, `/token_refresh` when the token runs low, after
 * which the old token is revoked).
 */
import net from 'node:net';
import path from 'node:path';
import { runCli, type CliRun } from '../cli/run-cli.js';
import type { FlameNodeDouble } from '../helpers/flame-node-double.js';

/** `flame run <analysis>` (a path below the repository) with `env`. */
export function runAnalysis(analysis: string, env: Record<string, string>, timeoutMs = 60_000): Promise<CliRun> {
  return runCli(['run', analysis, '--timeout-ms', String(timeoutMs)], env);
}

/** A TCP port nothing listens on right now. */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** A run's exit code, and its stderr's tail when it failed (so a failing expectation shows why). */
export function outcome(r: CliRun): { code: number; stderr: string } {
  return { code: r.code, stderr: r.code === 0 ? '' : r.stderr.slice(-3000) };
}

/** The pods of one analysis on the double: each node's port, environment and status-loop record. */
export interface FlameNodePods {
  /** Port each node's analysis server listens on. */
  ports: Record<string, number>;
  /** FLAME's environment for `nodeId`'s pod, plus `extra`. */
  env(nodeId: string, extra?: Record<string, string>): Record<string, string>;
  /** Per node: the statuses the orchestrator mapped, how often and when (epoch ms) it refreshed the token, the `/healthz` answers (`http`: the HTTP status, and the JSON). */
  seen: Record<string, { statuses: string[]; refreshed: number; refreshedAt: number[]; healthz: Array<Record<string, unknown>> }>;
  /** Resolves once every node in `ids` got a fresh token (or after `ms`). */
  waitForRefresh(ids: string[], ms: number): Promise<void>;
  /** Ends the status loop. */
  stop(): Promise<void>;
}

/**
 * Sets up pods for every node of `double` (state under `stateDir`) and starts the orchestrator's
 * status loop against them: every 200 ms per node a `/healthz`, and a `/token_refresh` when the
 * token runs low; the old token is revoked 1.5 s later (requests already under way may still carry it).
 */
export async function startPods(double: FlameNodeDouble, stateDir: string): Promise<FlameNodePods> {
  const ids = double.options.nodes.map((n) => n.nodeId);
  const ports: Record<string, number> = {};
  for (const id of ids) ports[id] = await freePort();
  const env = (id: string, extra: Record<string, string> = {}): Record<string, string> => ({
    ANALYSIS_ID: double.options.analysisId,
    PROJECT_ID: double.options.projectId ?? '',
    KEYCLOAK_TOKEN: double.token(id),
    DATA_SOURCE_TOKEN: double.options.dataSourceToken ?? 'ds-token',
    DEPLOYMENT_NAME: `analysis-${id}`,
    // What nginx-<DEPLOYMENT_NAME> and its /analysis/ forward are in a deployment:
    FLAME_NODE_NGINX_URL: double.nginxUrl(id),
    FLAME_NODE_PORT: String(ports[id]),
    FLAME_NODE_ANALYSIS_URL: `http://127.0.0.1:${ports[id]}`,
    FLAME_TRUST: 'tofu',
    FLAME_STATE_DIR: path.join(stateDir, id),
    FLAME_LOG_LEVEL: 'info',
    ...extra,
  });
  const seen: FlameNodePods['seen'] = Object.fromEntries(ids.map((id) => [id, { statuses: [], refreshed: 0, refreshedAt: [], healthz: [] }]));
  let running = true;
  const timers = new Set<NodeJS.Timeout>();
  const loop = (async () => {
    while (running) {
      for (const id of ids) {
        try {
          const old = double.token(id);
          const tick = await double.orchestratorTick(id, `http://127.0.0.1:${ports[id]}`);
          seen[id].statuses.push(tick.status);
          seen[id].healthz.push({ http: tick.httpStatus, ...tick.raw });
          if (tick.refreshedTo) {
            seen[id].refreshed += 1;
            seen[id].refreshedAt.push(Date.now());
            const t = setTimeout(() => {
              timers.delete(t);
              double.revokeToken(id, old);
            }, 1500);
            timers.add(t);
          }
        } catch {
          // not listening (yet, or any more)
        }
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  return {
    ports,
    env,
    seen,
    async waitForRefresh(wanted, ms) {
      const deadline = Date.now() + ms;
      while (wanted.some((id) => seen[id].refreshed === 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    },
    async stop() {
      running = false;
      await loop;
      for (const t of timers) clearTimeout(t);
    },
  };
}

/** The `/healthz` answers of `seen` that are not in the orchestrator's schema (200, `{status, token_remaining_time}`, a status it knows, whole seconds). */
export function offSchemaHealthz(seen: FlameNodePods['seen'][string]): Array<Record<string, unknown>> {
  return seen.healthz.filter(
    (h) =>
      h.http !== 200 ||
      Object.keys(h).sort().join() !== 'http,status,token_remaining_time' ||
      !['executing', 'executed', 'stuck', 'failed'].includes(h.status as string) ||
      !Number.isInteger(h.token_remaining_time) ||
      (h.token_remaining_time as number) < 0,
  );
}
