/** flame-sdk's public API. Analyses import from here only. */
export { FlameSDK, defaultMemoryBrokerHub, type FlameSDKDeps, type Participant } from './sdk.js';
export type { FlameMessage, MessageFilter, NodeStatus, SendOptions } from './messenger.js';
export { resolveConfig, configFromEnv, type FlameConfig, type FlameConfigInput, type Role, type BrokerConfig, type StoreConfig, type LogLevel } from './config.js';
export * from './errors.js';
export { createLogger, type Logger, type LogSink, type LogFields } from './logger.js';
export type { NodeRunStatus } from './health.js';
export { runStar, STAR_ROUND, STAR_LOCAL, STAR_FAILED } from './star/runner.js';
export { simulate, type SimulateOptions, type SimulatedNode, type SimulationResult } from './star/simulator.js';
export type { StarAnalysis, StarOptions, StarOutcome, AnalyzeContext, AggregateContext, NodeResult } from './star/analysis.js';
export { encodeValue, decodeValue, Tensor, type FlameValue, type JsonValue } from './codec/index.js';
export type { TensorDType, TensorDataMap } from './codec/tensor.js';
export type { DataClient, FileDataClient, FhirDataClient, FhirResource, DataSourceConfig, DataSourceInfo, DataEntry, S3Connection } from './data/port.js';
export type { BrokerAdapter, WireMessage, ParticipantInfo, MessageHandler } from './broker/port.js';
export type { ObjectStore, ObjectInfo, PutOptions } from './results/port.js';
export { MemoryBrokerHub, MemoryBrokerAdapter, type MemoryBrokerOptions } from './broker/memory.js';
export { NatsBrokerAdapter, type NatsBrokerOptions } from './broker/nats.js';
export { FsObjectStore } from './results/fs.js';
export { S3ObjectStore, type S3ObjectStoreOptions } from './results/s3.js';
export { ResultService, type ResultServiceOptions, type ResultOptions, type StreamResultOptions, type HubResultInfo, type LocalResultInfo } from './results/service.js';
export { DataApi, type DataClientOptions } from './data/index.js';
/** The seed-000 job API lives in `src/jobs/index.ts` (it loads the image analyses); only its event types are re-exported here. */
export type { JobProgressEvent, JobEventType, JobKind, SkippedFile as JobSkippedFile } from './jobs/events.js';
export { natsAuthorizationConfig, natsNodePermissions, type NatsNodeLogin, type NatsUserPermissions } from './broker/nats-permissions.js';
