/** The frame: the nav bar, the view the address names, the token dialog and messages. */
import { useEffect, useState } from "preact/hooks";
import { getToken, onUnauthorized, setToken } from "./api.ts";
import { Modal } from "./components/ui.tsx";
import { useAuthEpoch } from "./hooks.ts";
import { useLiveSummary } from "./live.ts";
import { formatHash, useRoute } from "./route.ts";
import { effectiveTheme, useTheme, type ThemeChoice } from "./theme.ts";
import { dismiss, useToasts } from "./toasts.ts";
import { AgentsView } from "./views/AgentsView.tsx";
import { ApprovalsView } from "./views/ApprovalsView.tsx";
import { BoardView } from "./views/BoardView.tsx";
import { NodesView } from "./views/NodesView.tsx";
import { RunsView } from "./views/RunsView.tsx";
import { TasksView } from "./views/TasksView.tsx";

const VIEWS = [
  { id: "tasks", label: "Tasks" },
  { id: "agents", label: "Agents" },
  { id: "board", label: "Board" },
  { id: "runs", label: "Runs" },
  { id: "nodes", label: "Nodes" },
  { id: "approvals", label: "Approvals" },
] as const;
type ViewId = (typeof VIEWS)[number]["id"];

function isView(id: string | undefined): id is ViewId {
  return VIEWS.some((v) => v.id === id);
}

export function App() {
  const route = useRoute();
  const view: ViewId = isView(route.parts[0]) ? route.parts[0] : "tasks";
  const [asking, setAsking] = useState(false);
  useAuthEpoch(); // the token button shows whether one is set
  useEffect(() => onUnauthorized(() => setAsking(true)), []);
  useEffect(() => {
    const label = VIEWS.find((v) => v.id === view)?.label ?? "";
    document.title = `${label} · Colony`;
  }, [view]);

  return (
    <div class="app">
      <a class="skip" href="#main" onClick={(e) => (e.preventDefault(), document.getElementById("main")?.focus())}>
        Skip to content
      </a>
      <header class="topbar">
        <span class="brand">Colony</span>
        <nav class="nav" aria-label="Views" data-testid="nav">
          {VIEWS.map((v) => (
            <a key={v.id} href={formatHash([v.id])} class={v.id === view ? "active" : ""} aria-current={v.id === view ? "page" : undefined} data-testid={`nav-${v.id}`}>
              {v.label}
            </a>
          ))}
        </nav>
        <div class="topbar-tools">
          <LiveIndicator />
          <ThemeToggle />
          <button type="button" class="btn btn-quiet" onClick={() => setAsking(true)} data-testid="auth-open" title="The API token">
            {getToken() ? "Token ✓" : "Token"}
          </button>
        </div>
      </header>
      <main id="main" class="main" tabIndex={-1}>
        {view === "tasks" && <TasksView route={route} />}
        {view === "agents" && <AgentsView route={route} />}
        {view === "board" && <BoardView route={route} />}
        {view === "runs" && <RunsView route={route} />}
        {view === "nodes" && <NodesView route={route} />}
        {view === "approvals" && <ApprovalsView />}
      </main>
      <TokenDialog open={asking} onClose={() => setAsking(false)} />
      <Toasts />
    </div>
  );
}

function LiveIndicator() {
  const live = useLiveSummary();
  const text = { live: "live", connecting: "connecting…", reconnecting: "reconnecting…", idle: "" }[live];
  if (!text) return null;
  return (
    <span class={`live live-${live}`} data-testid="live-status" data-state={live} role="status">
      <span class="live-dot" aria-hidden="true" />
      {text}
    </span>
  );
}

function ThemeToggle() {
  const [choice, setChoice] = useTheme();
  const next: Record<ThemeChoice, ThemeChoice> = { system: effectiveTheme("system") === "dark" ? "light" : "dark", light: "dark", dark: "light" };
  const now = effectiveTheme(choice);
  return (
    <button
      type="button"
      class="btn btn-quiet"
      data-testid="theme-toggle"
      data-theme-now={now}
      aria-label={`Switch to the ${next[choice]} theme`}
      title={`Switch to the ${next[choice]} theme`}
      onClick={() => setChoice(next[choice])}
    >
      {now === "dark" ? "☀ Light" : "☾ Dark"}
    </button>
  );
}

function TokenDialog({ open, onClose }: { open: boolean; onClose: () => void }) {
  const [value, setValue] = useState("");
  useEffect(() => {
    if (open) setValue(getToken() ?? "");
  }, [open]);
  return (
    <Modal open={open} onClose={onClose} title="API token" testId="auth-dialog">
      <form
        class="stack"
        onSubmit={(e) => {
          e.preventDefault();
          setToken(value.trim() || null);
          onClose();
        }}
      >
        <p class="muted">This server asks for a bearer token. It is kept in this tab only (sessionStorage).</p>
        <label class="field">
          <span>Token</span>
          <input type="password" autoComplete="off" value={value} onInput={(e) => setValue(e.currentTarget.value)} data-testid="auth-token-input" autoFocus />
        </label>
        <div class="modal-actions">
          <button type="button" class="btn" onClick={onClose} data-testid="auth-cancel">
            Cancel
          </button>
          <button type="submit" class="btn btn-primary" data-testid="auth-submit">
            Use token
          </button>
        </div>
      </form>
    </Modal>
  );
}

function Toasts() {
  const toasts = useToasts();
  return (
    <div class="toasts" role="status" aria-live="polite" data-testid="toasts">
      {toasts.map((t) => (
        <div key={t.id} class={`toast toast-${t.tone}`} data-testid={`toast-${t.tone}`}>
          <span>{t.text}</span>
          <button type="button" class="btn btn-quiet" aria-label="Dismiss" onClick={() => dismiss(t.id)}>
            ×
          </button>
        </div>
      ))}
    </div>
  );
}
