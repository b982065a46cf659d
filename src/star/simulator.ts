/**
 * Runs a star analysis over N simulated nodes in one process with the embedded adapters: an in-process
 * broker, filesystem hub storage and one local store per node. The analysis code is the same that
 * runs on NATS + S3.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { MemoryBrokerHub } from '../broker/memory.js';
import type { FlameValue } from '../codec/index.js';
import type { DisclosurePolicy, LogLevel } from '../config.js';
import type { DataSourceConfig } from '../data/port.js';
import { BadRequestError } from '../errors.js';
import type { Limits } from '../limits.js';
import type { LogSink } from '../logger.js';
import { FsObjectStore } from '../results/fs.js';
import { FlameSDK } from '../sdk.js';
import { localRoster } from '../trust/local-roster.js';
import type { StarAnalysis, StarOptions, StarOutcome } from './analysis.js';
import { runStar } from './runner.js';

/** One simulated analyzer node and the data it holds. */
export interface SimulatedNode {
  /** The node's id (unique, not the aggregator's). */
  id: string;
  /** The data sources this node may read (default none). */
  dataSources?: DataSourceConfig[];
  /** This node's disclosure policy, over {@link SimulateOptions.disclosure} (default: from `FLAME_MIN_COUNT` / `FLAME_NOISE_SCALE`, else minimum count 3, no noise). */
  disclosure?: Partial<DisclosurePolicy>;
}

/** Options of {@link simulate}: the nodes, plus the options of the star run. */
export interface SimulateOptions extends StarOptions {
  /** The analyzer nodes (at least one). */
  nodes: SimulatedNode[];
  /** Id of the aggregator, an extra node without data (default `aggregator`). */
  aggregatorId?: string;
  /** Storage root (hub/ and nodes/<id>/); default a new temporary folder. */
  dir?: string;
  /** The analysis id (default `sim-` plus 8 random hex digits). */
  analysisId?: string;
  /** Log level of every node (default `warn`). */
  logLevel?: LogLevel;
  /** Where every node's JSON log lines go (default stderr). */
  logSink?: LogSink;
  /** Disclosure policy of every node, the aggregator included (default: from env, else minimum count 3, no noise). */
  disclosure?: Partial<DisclosurePolicy>;
  /** Called with each node's SDK once it is connected, before the run starts (e.g. to observe what a node receives). */
  onConnect?: (sdk: FlameSDK) => void;
  /** Caps of every node (`config.limits`), over `FLAME_MAX_*`, over the defaults. */
  limits?: Partial<Limits>;
  /**
   * Called after a successful run while every node is still connected, with each node's SDK by id
   * and the aggregator's outcome: read what the run stored through a node's result service
   * (`sdk.results.getResult(id)`).
   */
  afterRun?: (nodes: Record<string, FlameSDK>, outcome: StarOutcome<unknown, unknown>) => Promise<void>;
}

/** What {@link simulate} returns. */
export interface SimulationResult<G, F = G> {
  /** The aggregator's outcome of the run. */
  outcome: StarOutcome<G, G>;
  /** Every node's outcome by node id: analyzers hold what they received at the end (`finalFor`). */
  outcomes: Record<string, StarOutcome<G, F>>;
  /** Storage root used by the run (final results are under hub/). */
  dir: string;
}

/** Run `analysis` on `nodes` plus an aggregator, all in this process. */
export async function simulate<L extends FlameValue, G extends FlameValue, F extends FlameValue = G>(
  analysis: StarAnalysis<L, G, F>,
  opts: SimulateOptions,
): Promise<SimulationResult<G, F>> {
  if (opts.nodes.length === 0) throw new BadRequestError('simulate: at least one node is needed');
  const aggregatorId = opts.aggregatorId ?? 'aggregator';
  const ids = [...opts.nodes.map((n) => n.id), aggregatorId];
  if (new Set(ids).size !== ids.length) throw new BadRequestError(`simulate: node ids must be unique, got ${ids.join(', ')}`);
  const dir = opts.dir ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'flame-sim-')));
  const hub = new MemoryBrokerHub();
  const analysisId = opts.analysisId ?? `sim-${randomUUID().slice(0, 8)}`;
  const nodes: SimulatedNode[] = [...opts.nodes, { id: aggregatorId }];
  const localDir = (id: string): string => path.join(dir, 'nodes', id);
  // Every node's keys are made here, so the roster can be pinned for all of them (no first-use trust).
  const projectId = process.env.FLAME_PROJECT_ID || 'local-project';
  const roster = await localRoster({
    projectId,
    analysisId,
    aggregatorId,
    nodes: nodes.map((n) => ({ nodeId: n.id, local: new FsObjectStore(localDir(n.id)) })),
  });
  const sdks = await Promise.all(
    nodes.map((n) =>
      FlameSDK.connect(
        {
          nodeId: n.id,
          analysisId,
          participants: ids,
          aggregatorId,
          broker: { type: 'memory', hub },
          hub: { type: 'fs', dir: path.join(dir, 'hub') },
          projectId,
          local: { type: 'fs', dir: localDir(n.id) },
          trust: { mode: 'roster', roster },
          dataSources: n.dataSources ?? [],
          logLevel: opts.logLevel ?? 'warn',
          heartbeatMs: 1000,
          ...(opts.disclosure || n.disclosure ? { disclosure: { ...opts.disclosure, ...n.disclosure } } : {}),
          ...(opts.limits ? { limits: opts.limits } : {}),
        },
        { logSink: opts.logSink },
      ),
    ),
  );
  try {
    for (const sdk of sdks) opts.onConnect?.(sdk);
    // The first node to fail ends the simulation: the others are closed, and all are waited for, so
    // nothing still writes into the run's folders when the caller gets the error.
    let first: { error: unknown } | undefined;
    const runs = sdks.map((sdk) =>
      runStar(sdk, analysis, opts).catch(async (error: unknown) => {
        if (!first) {
          first = { error };
          await Promise.all(sdks.map((s) => s.close().catch(() => undefined)));
        }
        throw error;
      }),
    );
    const settled = await Promise.allSettled(runs);
    if (first) throw first.error;
    const outcomes = settled.map((r) => (r as PromiseFulfilledResult<StarOutcome<G, F>>).value);
    await opts.afterRun?.(Object.fromEntries(ids.map((id, i) => [id, sdks[i]])), outcomes[outcomes.length - 1]);
    return {
      outcome: outcomes[outcomes.length - 1] as unknown as StarOutcome<G, G>,
      outcomes: Object.fromEntries(ids.map((id, i) => [id, outcomes[i]])),
      dir,
    };
  } finally {
    await Promise.all(sdks.map((s) => s.close()));
  }
}
