/** Small pieces every view uses: badges, JSON blocks, a modal dialog, messages. */
import type { ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { errorMessage } from "../api.ts";
import { pretty } from "../format.ts";
import { toast } from "../toasts.ts";

export function Badge({ tone, children, testId }: { tone: string; children: ComponentChildren; testId?: string }) {
  return (
    <span class={`badge tone-${tone}`} data-testid={testId}>
      {children}
    </span>
  );
}

export function Json({ value, testId, label }: { value: unknown; testId?: string; label?: string }) {
  return (
    <pre class="json" data-testid={testId} aria-label={label} tabIndex={0}>
      {pretty(value)}
    </pre>
  );
}

export function ErrorNote({ error, testId }: { error: unknown; testId?: string }) {
  if (error === undefined || error === null) return null;
  return (
    <p class="error-note" role="alert" data-testid={testId ?? "error"}>
      {errorMessage(error)}
    </p>
  );
}

export function Empty({ children, testId }: { children: ComponentChildren; testId?: string }) {
  return (
    <p class="muted empty" data-testid={testId}>
      {children}
    </p>
  );
}

/**
 * A modal `<dialog>`: the browser keeps the focus inside it and closes it on Escape (reported
 * through `onClose`).
 */
export function Modal({ open, onClose, title, children, testId }: { open: boolean; onClose: () => void; title: string; children: ComponentChildren; testId: string }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (open && !dialog.open) dialog.showModal();
    if (!open && dialog.open) dialog.close();
  }, [open]);
  return (
    <dialog ref={ref} class="modal" data-testid={testId} aria-label={title} onClose={onClose} onCancel={onClose}>
      {open ? (
        <>
          <h2 class="modal-title">{title}</h2>
          {children}
        </>
      ) : null}
    </dialog>
  );
}

export interface ConfirmRequest {
  title: string;
  body: ComponentChildren;
  confirmLabel: string;
  danger?: boolean;
  /** A checkbox shown in the dialog (terminate's cascade), its starting value. */
  option?: { label: string; initial: boolean };
  action: (option: boolean) => Promise<unknown>;
}

/** Asks before a destructive action, runs it, and reports a failure as a message. */
export function ConfirmDialog({ request, onDone }: { request: ConfirmRequest | undefined; onDone: () => void }) {
  const [option, setOption] = useState(false);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    setOption(request?.option?.initial ?? false);
    setBusy(false);
  }, [request]);
  const run = async () => {
    if (!request) return;
    setBusy(true);
    try {
      await request.action(option);
    } catch (error) {
      toast(`${request.title}: ${errorMessage(error)}`, "error");
    } finally {
      setBusy(false);
      onDone();
    }
  };
  return (
    <Modal open={request !== undefined} onClose={onDone} title={request?.title ?? ""} testId="confirm-dialog">
      <div class="modal-body">{request?.body}</div>
      {request?.option ? (
        <label class="check">
          <input type="checkbox" checked={option} onChange={(e) => setOption(e.currentTarget.checked)} data-testid="confirm-option" />
          {request.option.label}
        </label>
      ) : null}
      <div class="modal-actions">
        {/* The focus starts on the choice that changes nothing. */}
        <button type="button" class="btn" onClick={onDone} data-testid="confirm-cancel" autoFocus>
          Keep
        </button>
        <button type="button" class={`btn ${request?.danger ? "btn-danger" : "btn-primary"}`} disabled={busy} onClick={() => void run()} data-testid="confirm-ok">
          {request?.confirmLabel}
        </button>
      </div>
    </Modal>
  );
}
