/**
 * flame-sdk's public API (the package's root entry point). The image and ML building blocks are
 * `flame-sdk/images` and `flame-sdk/ml`, test helpers `flame-sdk/testing`; the seed-000 job API
 * (an app above the analyses) is `flame-sdk/jobs`, the image analyses `flame-sdk/image-diagnosis`
 * and `flame-sdk/image-cleaning`.
 *
 * @module flame-sdk
 */
export { FlameSDK, defaultMemoryBrokerHub, type FlameSDKDeps, type Participant } from './sdk.js';
export type { AcknowledgedSend, AwaitedMessages, ClearOptions, FlameMessage, MessageFilter, MessageStats, MessageStatus, NodeStatus, SendOptions } from './messenger/index.js';
export type { LocalDpOptions } from './star/noise.js';
export { resolveConfig, configFromEnv, type FlameConfig, type FlameConfigInput, type Role, type BrokerConfig, type FlameNodeBrokerConfig, type StoreConfig, type LogLevel, type DisclosurePolicy } from './config.js';
export { DEFAULT_LIMITS, LIMIT_ENV, resolveLimits, limitsFromEnv, overLimit, type Limits } from './limits.js';
export * from './errors.js';
export { isObject, describeValue, fail, objectAt, nonEmptyString, booleanAt, integerAt, numberArrayAt, intOption, numberOption, type Json, type IntBounds } from './validation.js';
export { parseRequestJson, lineColumn, type TextPosition } from './json-text.js';
export { createLogger, logFormat, prettyLogLine, type Logger, type LogSink, type LogFields } from './logger.js';
export type { NodeRunStatus } from './health.js';
export { runStar, STAR_ROUND, STAR_LOCAL, STAR_FAILED } from './star/runner.js';
export { simulate, type SimulateOptions, type SimulatedNode, type SimulationResult } from './star/simulator.js';
export type { StarAnalysis, StarOptions, StarOutcome, AnalyzeContext, AggregateContext, NodeResult, FinalInfo, CompletionNotice, ExcludedNode, ToleranceContext } from './star/analysis.js';
export type { FinishStatus } from './star/protocol.js';
export type { PeerLiveness, ReadyCheckOptions } from './liveness.js';
export { yieldToEventLoop } from './liveness.js';
export { completionNotice } from './star/analysis.js';
export { phased, type Phase, type OpeningPhase, type PhasedSpec, type PhaseMark, type PhaseNodeContext, type PhaseMergeContext } from './star/phased.js';
export {
  DisclosureControl,
  DisclosureRefusedError,
  disclosureRecord,
  mergeSmallBins,
  mergeSmallCategories,
  mergeSmallJointCells,
  requireMinRecords,
  suppressSmallCounts,
  addLaplaceNoise,
  laplaceSample,
  recordNoise,
  strictestNoiseScale,
  type Disclosed,
  type DisclosureRecord,
  type JointCounts,
  type NodeDisclosureReport,
  type NoiseRecord,
  type NoisedValue,
  type RecordedNoise,
  type NoiseDemand,
} from './star/disclosure.js';
export { encodeValue, decodeValue, decodeUntrusted, decodeBudgetOf, closeDecodePool, Tensor, valueToFile, tensorToNpy, type FileFormat, type ValueFile, type FlameValue, type JsonValue, type DecodeBudget } from './codec/index.js';
export type { TensorDType, TensorDataMap } from './codec/tensor.js';
export type { DataClient, FileDataClient, FhirDataClient, FhirResource, DataSourceConfig, DataSourceInfo, DataEntry, S3Connection } from './data/port.js';
export type { BrokerAdapter, WireMessage, ParticipantInfo, MessageHandler, DeliveryInfo, StartOptions } from './broker/port.js';
export type { ObjectStore, ObjectInfo, PutOptions } from './results/port.js';
export { MemoryBrokerHub, MemoryBrokerAdapter, type MemoryBrokerOptions } from './broker/memory.js';
export { NatsBrokerAdapter, type NatsBrokerOptions, type NatsAdapterStats, type ProvisionOptions } from './broker/nats/index.js';
export { FsObjectStore } from './results/fs.js';
export { S3ObjectStore, type S3ObjectStoreOptions } from './results/s3.js';
export {
  ResultService,
  type ResultServiceOptions,
  type ResultOptions,
  type StreamResultOptions,
  type HubResultInfo,
  type LocalResultInfo,
  type FinalResultInfo,
  type FinalResultOptions,
  type LocalResultOptions,
  type OutputType,
  type TagOption,
  type GetResultOptions,
  type ResultTrust,
  type ResultVerification,
} from './results/service.js';
export { DataApi, type DataClientOptions } from './data/index.js';
export { natsAuthorizationConfig, natsNodePermissions, type NatsNodeLogin, type NatsNodeRole, type NatsUserPermissions } from './broker/nats/index.js';
// Trust: identities, rosters, signatures (for operators and for tools that prepare a federation).
export {
  loadOrCreateIdentity,
  rotateIdentity,
  generateKeySet,
  publicKeySet,
  nodeKeyToken,
  parseNodeKeyToken,
  keyId,
  type NodeIdentity,
  type KeySet,
  type PublicKeySet,
  type IdentityLocation,
  type NodeKeyToken,
} from './trust/identity.js';
export { buildRoster, checkRoster, openRoster, parseRosterText, signRoster, MAX_ROSTER_BYTES, type Roster, type RosterNode, type RosterDocument } from './trust/roster.js';
export { localRoster, type LocalNode } from './trust/local-roster.js';
export { canonicalJson, signStatement, verifyStatement, generateSigningKey, importSigningKey, type Signed, type SigningKeyPair } from './trust/statements.js';
export type { TrustConfig, AnnouncedKeys } from './trust/peers.js';
