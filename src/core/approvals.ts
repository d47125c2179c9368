/**
 * Tool approvals that survive processes: a request is an entry on a board of its own (so it is
 * as durable and as shared as the backend: a SQLite file, a NATS stream), a decision is a
 * compare-and-set write that only a pending request takes, and the agent waits on the board's
 * log, so a decision made by any process on any machine reaches it.
 */
import type { Board, Entry } from "./board.ts";
import { ColonyError, NotFoundError } from "./errors.ts";
import { timedId } from "./ids.ts";

/** The board that holds approval requests, in every backend. */
export const APPROVALS_BOARD = "colony-approvals";

export type ApprovalStatus = "pending" | "approved" | "denied" | "abandoned";

export interface ApprovalRecord {
  id: string;
  status: ApprovalStatus;
  /** The tool as permissions name it. */
  tool: string;
  args: unknown;
  agentId: string;
  agentName: string;
  /** Names from the top of the agent's tree down to it: where the request shows. */
  path: string[];
  rootId: string;
  requestedAt: number;
  /** The process that waits for the decision (pids repeat across machines). */
  owner: { pid: number; host: string };
  decidedAt?: number;
  decidedBy?: string;
  reason?: string;
}

export interface Decision {
  approved: boolean;
  reason?: string;
}

/** The request was decided (or abandoned) already; nothing was changed. */
export class ApprovalDecidedError extends ColonyError {
  readonly approvalId: string;
  readonly status: ApprovalStatus;

  constructor(record: ApprovalRecord) {
    super("APPROVAL_DECIDED", `approval ${record.id} is ${record.status} already${record.decidedBy ? ` (by ${record.decidedBy})` : ""}`);
    this.approvalId = record.id;
    this.status = record.status;
  }
}

export type ApprovalRequest = Omit<ApprovalRecord, "id" | "status" | "requestedAt" | "decidedAt" | "decidedBy" | "reason">;

/** Records a pending request and returns it. */
export async function requestApproval(board: Board, request: ApprovalRequest): Promise<ApprovalRecord> {
  const record: ApprovalRecord = { id: timedId("appr"), status: "pending", requestedAt: Date.now(), ...request };
  await board.write(record.id, record, { author: `${request.agentName}@${request.agentId}`, expectedVersion: 0, tags: { status: "pending", tool: request.tool } });
  return record;
}

async function current(board: Board, id: string): Promise<Entry<ApprovalRecord>> {
  const entry = await board.get<ApprovalRecord>(id);
  if (!entry) throw new NotFoundError(`approval ${JSON.stringify(id)} (colony approvals lists the pending ones)`);
  return entry;
}

/**
 * Moves a pending request to approved, denied or abandoned; `ApprovalDecidedError` if it is not
 * pending any more (two people deciding at once: the first one wins).
 */
export async function settleApproval(board: Board, id: string, status: Exclude<ApprovalStatus, "pending">, by: string, reason?: string): Promise<ApprovalRecord> {
  const entry = await current(board, id);
  if (entry.value.status !== "pending") throw new ApprovalDecidedError(entry.value);
  const next: ApprovalRecord = { ...entry.value, status, decidedAt: Date.now(), decidedBy: by, ...(reason !== undefined && { reason }) };
  try {
    await board.write(id, next, { author: by, expectedVersion: entry.version, tags: { status, tool: next.tool } });
  } catch (error) {
    if ((error as { code?: string }).code === "VERSION_CONFLICT") throw new ApprovalDecidedError((await current(board, id)).value);
    throw error;
  }
  return next;
}

/** Resolves with the request once it is no longer pending; rejects with the signal's reason when it aborts. */
export async function waitForDecision(board: Board, id: string, signal: AbortSignal): Promise<ApprovalRecord> {
  // The position first, then the read: a decision landing in between is in the watch.
  const since = await board.refresh();
  const now = await current(board, id);
  if (now.value.status !== "pending") return now.value;
  for await (const record of board.watch({ since, signal })) {
    if (record.key === id && record.op === "write" && (record.value as ApprovalRecord).status !== "pending") return record.value as ApprovalRecord;
  }
  signal.throwIfAborted();
  throw new NotFoundError(`a decision on approval ${id}: the board closed while waiting`);
}

/** Requests as they stand, oldest first; only those of `status` when given. */
export async function listApprovals(board: Board, status?: ApprovalStatus): Promise<ApprovalRecord[]> {
  await board.refresh();
  return board
    .view()
    .entries()
    .map((entry) => entry.value as ApprovalRecord)
    .filter((record) => status === undefined || record.status === status)
    .sort((a, b) => a.requestedAt - b.requestedAt);
}
