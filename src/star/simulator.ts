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
import type { LogLevel } from '../config.js';
import type { DataSourceConfig } from '../data/port.js';
import { BadRequestError } from '../errors.js';
import type { LogSink } from '../logger.js';
import { FlameSDK } from '../sdk.js';
import type { StarAnalysis, StarOptions, StarOutcome } from './analysis.js';
import { runStar } from './runner.js';

/** One simulated analyzer node and the data it holds. */
export interface SimulatedNode {
  /** The node's id (unique, not the aggregator's). */
  id: string;
  /** The data sources this node may read (default none). */
  dataSources?: DataSourceConfig[];
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
}

/** What {@link simulate} returns. */
export interface SimulationResult<G> {
  /** The aggregator's outcome of the run. */
  outcome: StarOutcome<G>;
  /** Storage root used by the run (final results are under hub/). */
  dir: string;
}

/** Run `analysis` on `nodes` plus an aggregator, all in this process. */
export async function simulate<L extends FlameValue, G extends FlameValue>(
  analysis: StarAnalysis<L, G>,
  opts: SimulateOptions,
): Promise<SimulationResult<G>> {
  if (opts.nodes.length === 0) throw new BadRequestError('simulate: at least one node is needed');
  const aggregatorId = opts.aggregatorId ?? 'aggregator';
  const ids = [...opts.nodes.map((n) => n.id), aggregatorId];
  if (new Set(ids).size !== ids.length) throw new BadRequestError(`simulate: node ids must be unique, got ${ids.join(', ')}`);
  const dir = opts.dir ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'flame-sim-')));
  const hub = new MemoryBrokerHub();
  const analysisId = opts.analysisId ?? `sim-${randomUUID().slice(0, 8)}`;
  const nodes: SimulatedNode[] = [...opts.nodes, { id: aggregatorId }];
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
          local: { type: 'fs', dir: path.join(dir, 'nodes', n.id) },
          dataSources: n.dataSources ?? [],
          logLevel: opts.logLevel ?? 'warn',
          heartbeatMs: 1000,
        },
        { logSink: opts.logSink },
      ),
    ),
  );
  try {
    const outcomes = await Promise.all(sdks.map((sdk) => runStar(sdk, analysis, opts)));
    return { outcome: outcomes[outcomes.length - 1], dir };
  } finally {
    await Promise.all(sdks.map((s) => s.close()));
  }
}
