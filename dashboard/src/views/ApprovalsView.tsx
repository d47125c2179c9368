/**
 * Tool calls waiting for a person: approve or deny each, with a reason. Requests are entries of
 * the board `colony-approvals`, so its stream says when to read the list again.
 */
import { useState } from "preact/hooks";
import { ApiError, api, enc, errorMessage } from "../api.ts";
import { Badge, Empty, ErrorNote, Json } from "../components/ui.tsx";
import { time } from "../format.ts";
import { useCoalesced, useInterval, useLoad, useStream } from "../hooks.ts";
import { toast } from "../toasts.ts";
import type { ApprovalRecord } from "../types.ts";

const APPROVALS_BOARD = "colony-approvals";
const STATUS_TONE: Record<string, string> = { pending: "pending", approved: "succeeded", denied: "failed", abandoned: "cancelled" };

function approvalsFrom(data: unknown): ApprovalRecord[] {
  if (Array.isArray(data)) return data as ApprovalRecord[];
  if (data && typeof data === "object" && "approvals" in data && Array.isArray(data.approvals)) return data.approvals as ApprovalRecord[];
  return [];
}

export function ApprovalsView() {
  const [showAll, setShowAll] = useState(false);
  const approvals = useLoad("approvals", (signal) => api<unknown>("/api/approvals", { signal }));
  const reload = useCoalesced(approvals.reload, 300);
  // Any record (and `ready`, once the stream follows) means: read the list again.
  useStream(`/api/boards/${APPROVALS_BOARD}/events`, { onEvent: reload });
  useInterval(approvals.reload, 15_000);
  const all = approvalsFrom(approvals.data).sort((a, b) => b.requestedAt - a.requestedAt);
  const shown = showAll ? all : all.filter((a) => a.status === "pending");

  return (
    <section class="view view-approvals" data-testid="view-approvals" aria-label="Approvals">
      <div class="toolbar">
        <label class="check">
          <input type="checkbox" checked={showAll} onChange={(e) => setShowAll(e.currentTarget.checked)} data-testid="approvals-show-all" />
          Show decided ones too
        </label>
        <span class="muted" data-testid="approvals-count">
          {approvals.data ? `${all.filter((a) => a.status === "pending").length} pending` : "loading…"}
        </span>
      </div>
      <ErrorNote error={approvals.error} testId="approvals-error" />
      {approvals.data && shown.length === 0 ? <Empty testId="approvals-empty">{showAll ? "No approval requests." : "Nothing waits for approval."}</Empty> : null}
      <ul class="approvals" data-testid="approvals-list">
        {shown.map((a) => (
          <Approval key={a.id} approval={a} onDecided={reload} />
        ))}
      </ul>
    </section>
  );
}

function Approval({ approval, onDecided }: { approval: ApprovalRecord; onDecided: () => void }) {
  const [reason, setReason] = useState("");
  const [busy, setBusy] = useState(false);
  const decide = async (verb: "approve" | "deny") => {
    setBusy(true);
    try {
      await api(`/api/approvals/${enc(approval.id)}/${verb}`, { method: "POST", body: reason.trim() ? { reason: reason.trim() } : {} });
      toast(`${verb === "approve" ? "Approved" : "Denied"} ${approval.tool} for ${approval.agentName}`);
    } catch (error) {
      const decided = error instanceof ApiError && error.status === 409;
      toast(decided ? `Already decided: ${errorMessage(error)}` : `${verb}: ${errorMessage(error)}`, "error");
    } finally {
      setBusy(false);
      onDecided();
    }
  };
  const pending = approval.status === "pending";
  return (
    <li class="approval card-like" data-testid={`approval-${approval.id}`} data-status={approval.status}>
      <div class="row gap wrap">
        <strong class="mono">{approval.tool}</strong>
        <Badge tone={STATUS_TONE[approval.status] ?? "none"}>{approval.status}</Badge>
        <span class="muted">
          {(approval.path?.length ? approval.path : [approval.agentName]).join(" › ")} <span class="mono small">({approval.agentId})</span>
        </span>
        <span class="grow" />
        <span class="muted small">{time(approval.requestedAt)}</span>
      </div>
      <Json value={approval.args} label="Arguments" />
      {pending ? (
        <form
          class="row gap"
          onSubmit={(e) => {
            e.preventDefault();
            void decide("approve");
          }}
        >
          <input class="grow" placeholder="reason (optional)" value={reason} onInput={(e) => setReason(e.currentTarget.value)} data-testid={`approval-reason-${approval.id}`} aria-label="Reason" />
          <button type="submit" class="btn btn-primary" disabled={busy} data-testid={`approval-approve-${approval.id}`}>
            Approve
          </button>
          <button type="button" class="btn btn-danger" disabled={busy} onClick={() => void decide("deny")} data-testid={`approval-deny-${approval.id}`}>
            Deny
          </button>
        </form>
      ) : (
        <p class="muted small">
          {approval.status}
          {approval.decidedBy ? ` by ${approval.decidedBy}` : ""}
          {approval.decidedAt ? ` at ${time(approval.decidedAt)}` : ""}
          {approval.reason ? `: ${approval.reason}` : ""}
        </p>
      )}
    </li>
  );
}
