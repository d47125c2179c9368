/**
 * Colony's public API. What is exported here is the contract; everything else is internal.
 */
export { createColony, type Colony, type ColonyOptions } from "./runtime/colony.ts";
export { createServerApp, serve, ListenError, UnsafeBindError, type ColonyServer, type ServeOptions, type ServerAppOptions } from "./server/index.ts";
export { memoryBackend } from "./backends/memory/index.ts";
export { natsBackend, NatsConnectError, type NatsBackendOptions } from "./backends/nats/index.ts";
export { sqliteBackend, DEFAULT_DB_PATH, type SqliteBackendOptions } from "./backends/sqlite/index.ts";
export { defineRun, defineAgent, defineSubAgent } from "./core/define.ts";
export { defineModelAgent, renderBoard, type ModelAgent, type ModelAgentOptions, type ModelInput, type PlainTool } from "./models/agent.ts";
export { describeCall, type ModelCallRecord } from "./models/call-record.ts";
export { BUILT_IN_SKILLS } from "./models/built-in-skills.ts";
export { defineSkill, type Skill, type SkillBoard, type SkillContext } from "./models/skills.ts";
export { registerModelProvider, type ModelSpec } from "./models/registry.ts";
export { loadManifest, manifestAgentRef, type Manifest } from "./models/manifest.ts";
export { ManifestError } from "./models/manifest.ts";
export { CliAgentError, DEFAULT_CLI_ENV, defineCliAgent, type CliAgentFailure, type CliAgentOptions } from "./runtime/agents/cli-agent.ts";
export { DEFAULT_PRICES, type ModelPrice, type PriceTable } from "./models/prices.ts";
export type { Board } from "./core/board.ts";
export type {
  BoardHandle,
  BoardView,
  DeleteOptions,
  Entry,
  HistoryOptions,
  LogRecord,
  WatchOptions,
  WriteOptions,
} from "./core/board.ts";
export { MAX_TAGS, MAX_TAGS_BYTES, MAX_TAG_BYTES, type JsonValue, type Tags, type TagsInput } from "./core/json.ts";
export type { Agent, AgentBoard, AgentContext, AgentResult, RunDefinition } from "./core/run-types.ts";
export type { AgentRecord, AgentRetention, AgentState, FailureReason, FiredRecord, Isolation, RunInfo, RunResult, StepRecord, StopReason, Usage } from "./core/records.ts";
export { DEFAULT_AGENT_RETENTION } from "./core/agent-retention.ts";
export type { UsageFigures, UsageNode } from "./core/agent-usage.ts";
export { APPROVALS_BOARD, ApprovalDecidedError, type ApprovalRecord, type ApprovalStatus } from "./core/approvals.ts";
export type {
  AgentRef,
  Budget,
  DeliveryPolicy,
  InboxMessage,
  Permissions,
  SpawnOptions,
  SubAgent,
  SubAgentBoard,
  SubAgentContext,
  SubAgentEvent,
  SubAgentHandle,
  TurnResult,
} from "./core/subagent-types.ts";
export { BudgetExceededError, DEFAULT_ENV, PermissionError, SubAgentError, TransitionError } from "./core/subagent-types.ts";
export {
  SupervisorEscalationError,
  type RestartType,
  type Supervisor,
  type SupervisorChildSpec,
  type SupervisorEvent,
  type SupervisorEventReason,
  type SupervisorEventType,
  type SupervisorSpec,
  type SupervisorStrategy,
} from "./runtime/agents/supervisor.ts";
export type { TaskBoard } from "./core/task-board.ts";
export type { TraceCarrier } from "./core/tracing.ts";
export {
  DEFAULT_RETENTION,
  HorizonError,
  InvalidTaskError,
  NoWorkerError,
  StaleTaskError,
  WorkerIdInUseError,
  TASK_STATUSES,
  attemptOf,
  type ClaimRequest,
  type Retention,
  type Route,
  type SubmitRequest,
  type Task,
  type TaskEvent,
  type TaskEventType,
  type TaskFailure,
  type TaskFilter,
  type TaskStatus,
  type WorkerInfo,
  type WorkerStatus,
} from "./core/tasks.ts";
export type { Report } from "./core/store.ts";
export type { RunHooks } from "./core/run.ts";
export type { BackendFactory, Backend, BoardNames, BoardStore, BusHandler, BusTransport, LeaseStore, RunStore, TaskStore, TaskTx } from "./core/store.ts";
export { Bus, BusMessageError, channel, subjectToken, type BusOptions, type BusRejection, type BusStats, type Channel, type RejectReason } from "./runtime/bus.ts";
export type { AgentsByKind, TaskWorker, WorkerEvent, WorkerOptions } from "./runtime/tasks/worker.ts";
export { AgentUncaughtError, UnofferedKindError, containUncaughtErrors } from "./runtime/tasks/worker.ts";
export { subtasksSchema, type Subtask, type Synthesis, type Workflow, type WorkflowDefinition, type WorkflowProgress, type WorkflowResult } from "./runtime/tasks/workflow.ts";
export { Election, NotLeaderError, type ElectionEvent, type ElectionOptions } from "./runtime/election.ts";
export {
  coordinatorRole,
  nodeInfoChannel,
  nodeRequestChannel,
  nodeSubject,
  progressChannel,
  progressSubject,
  type NodeInfo,
  type ProgressMessage,
} from "./runtime/tasks/node.ts";
export {
  BusRequestError,
  ClosedError,
  ColonyError,
  ConfigError,
  InvalidAuthorError,
  InvalidInputError,
  InvalidKeyError,
  InvalidValueError,
  ModelError,
  NotFoundError,
  StoreBusyError,
  StoreOpenError,
  StreamReadError,
  TaskContentionError,
  VersionConflictError,
} from "./core/errors.ts";
