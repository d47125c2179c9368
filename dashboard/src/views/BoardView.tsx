/**
 * A blackboard: its entries (version, author, tags, value), live from its log; a scrubber over
 * log positions that shows the board as it was at any of them (`?at=`); and a comparison of two
 * positions, as the keys that changed and the log records between them. At the head, an entry
 * can be edited or deleted with compare-and-set (`If-Match` its version).
 */
import { useCallback, useEffect, useMemo, useRef, useState } from "preact/hooks";
import type { TargetedEvent } from "preact";
import { ApiError, api, enc, errorMessage, withQuery } from "../api.ts";
import { Badge, ConfirmDialog, Empty, ErrorNote, Json, type ConfirmRequest } from "../components/ui.tsx";
import { VirtualList } from "../components/VirtualList.tsx";
import { preview, tagList, time } from "../format.ts";
import { useAuthEpoch, useCoalesced, useInterval, useLoad, useSettled, useStream } from "../hooks.ts";
import { formatHash, navigate, updateParams, type Route } from "../route.ts";
import { parseData } from "../sse.ts";
import { toast } from "../toasts.ts";
import type { BoardSummary, Entry, LogRecord } from "../types.ts";

const ROW_HEIGHT = 44;
const HISTORY_PAGE = 500;

interface Snapshot {
  board?: string;
  seq: number;
  entries: Entry[];
}

function recordFrom(data: unknown): LogRecord | undefined {
  if (!data || typeof data !== "object") return undefined;
  const r = ("record" in data && data.record && typeof data.record === "object" ? data.record : data) as Partial<LogRecord>;
  if (typeof r.seq === "number" && typeof r.key === "string" && (r.op === "write" || r.op === "delete") && typeof r.version === "number") return r as LogRecord;
  return undefined;
}

function intParam(value: string | null): number | undefined {
  if (value === null || value === "") return undefined;
  const n = Number(value);
  return Number.isInteger(n) && n >= 0 ? n : undefined;
}

export function BoardView({ route }: { route: Route }) {
  const name = route.parts[1];
  const boards = useLoad("boards", (signal) => api<{ boards: BoardSummary[] }>("/api/boards", { signal }));
  useInterval(boards.reload, 10_000);
  const list = boards.data?.boards ?? [];

  return (
    <section class="view view-board" data-testid="view-board" aria-label="Board">
      <div class="toolbar">
        <label class="field inline">
          <span>Board</span>
          <select
            data-testid="board-select"
            value={name ?? ""}
            onChange={(e) => {
              const next = e.currentTarget.value;
              navigate(next ? formatHash(["board", next]) : formatHash(["board"]));
            }}
          >
            <option value="">choose a board…</option>
            {[...list.map((b) => b.name), ...(name && !list.some((b) => b.name === name) ? [name] : [])].map((n) => (
              <option key={n} value={n}>
                {n}
              </option>
            ))}
          </select>
        </label>
        <form
          class="row gap"
          onSubmit={(e) => {
            e.preventDefault();
            const input = e.currentTarget.elements.namedItem("board") as HTMLInputElement | null;
            const next = input?.value.trim();
            if (next) navigate(formatHash(["board", next]));
          }}
        >
          {/* The list holds the boards the server knows of; any other opens by name. */}
          <input name="board" placeholder="another board by name" aria-label="Board name" data-testid="board-name-input" size={20} />
          <button type="submit" class="btn btn-small" data-testid="board-open">
            Open
          </button>
        </form>
      </div>
      <ErrorNote error={boards.error} testId="boards-error" />
      {name ? (
        <BoardDetail key={name} name={name} route={route} />
      ) : (
        <BoardList boards={list} loaded={boards.data !== undefined} />
      )}
    </section>
  );
}

function BoardList({ boards, loaded }: { boards: BoardSummary[]; loaded: boolean }) {
  if (!loaded) return <p class="muted">loading…</p>;
  if (boards.length === 0) return <Empty testId="boards-empty">No boards yet.</Empty>;
  return (
    <table class="table" data-testid="boards-table">
      <thead>
        <tr>
          <th>board</th>
          <th class="num">entries</th>
          <th class="num">log position</th>
        </tr>
      </thead>
      <tbody>
        {boards.map((b) => (
          <tr key={b.name} data-testid={`board-row-${b.name}`}>
            <td>
              <a href={formatHash(["board", b.name])} data-testid={`board-link-${b.name}`}>
                {b.name}
              </a>
            </td>
            <td class="num">{b.entries}</td>
            <td class="num">{b.seq}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

interface LiveState {
  seq: number;
  entries: Map<string, Entry>;
}

/** The records after `state`'s position applied to it, and whether one was missing between. */
function applyRecords(state: LiveState, records: LogRecord[], prefix: string): { next: LiveState; gap: boolean } {
  let seq = state.seq;
  let gap = false;
  let entries: Map<string, Entry> | undefined;
  for (const r of [...records].sort((a, b) => a.seq - b.seq)) {
    if (r.seq <= seq) continue;
    if (r.seq > seq + 1) gap = true;
    seq = r.seq;
    if (prefix && !r.key.startsWith(prefix)) continue;
    entries ??= new Map(state.entries);
    if (r.op === "delete") entries.delete(r.key);
    else {
      const before = entries.get(r.key);
      entries.set(r.key, { key: r.key, value: r.value, author: r.author, version: r.version, createdAt: before?.createdAt ?? r.at, updatedAt: r.at, tags: r.tags ?? {} });
    }
  }
  return { next: { seq, entries: entries ?? state.entries }, gap };
}

/**
 * The board at its head: a snapshot, then its log stream from the snapshot's position (sent as
 * Last-Event-ID), applied in batches.
 */
function useLiveBoard(name: string, prefix: string) {
  const epoch = useAuthEpoch();
  const [state, setState] = useState<LiveState>();
  const current = useRef<LiveState | undefined>(undefined);
  const [resumeFrom, setResumeFrom] = useState<string>();
  const [error, setError] = useState<unknown>();
  const queue = useRef<LogRecord[]>([]);
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const [reloads, setReloads] = useState(0);
  const commit = (next: LiveState) => {
    current.current = next;
    setState(next);
  };

  useEffect(() => {
    const controller = new AbortController();
    api<Snapshot>(withQuery(`/api/boards/${enc(name)}/entries`, { prefix }), { signal: controller.signal }).then(
      (snapshot) => {
        commit({ seq: snapshot.seq, entries: new Map(snapshot.entries.map((e) => [e.key, e])) });
        setResumeFrom(String(snapshot.seq));
        setError(undefined);
      },
      (e: unknown) => {
        if (!controller.signal.aborted) setError(e);
      },
    );
    return () => controller.abort();
  }, [name, prefix, epoch, reloads]);
  useEffect(() => () => clearTimeout(timer.current), []);

  const reload = useCoalesced(() => setReloads((n) => n + 1), 500);

  const flush = () => {
    timer.current = undefined;
    const records = queue.current;
    queue.current = [];
    if (!current.current || records.length === 0) return;
    const { next, gap } = applyRecords(current.current, records, prefix);
    if (next !== current.current) commit(next);
    // A record missing between two: the stream could not resume there; read the board again.
    if (gap) reload();
  };

  useStream(
    state ? `/api/boards/${enc(name)}/events` : null,
    {
      onEvent: (message) => {
        // `ready` says where it follows from (the snapshot's position, asked by Last-Event-ID);
        // `horizon`, that the log no longer holds that: read the board again.
        if (message.event === "ready" || message.event === "error") return;
        const record = message.event === "horizon" ? undefined : recordFrom(parseData(message));
        if (!record) return reload();
        queue.current.push(record);
        timer.current ??= setTimeout(flush, 50);
      },
    },
    resumeFrom,
  );

  return { state, error, reload };
}

function BoardDetail({ name, route }: { name: string; route: Route }) {
  const params = route.params;
  const prefix = params.get("prefix") ?? "";
  const at = intParam(params.get("at"));
  const from = intParam(params.get("from"));
  const selectedKey = params.get("key");

  const live = useLiveBoard(name, prefix);
  const head = live.state?.seq ?? 0;
  const travelling = at !== undefined && at < head;

  const past = useLoad(travelling ? `${name}\u0000${prefix}\u0000${at}` : null, (signal) =>
    api<Snapshot>(withQuery(`/api/boards/${enc(name)}/entries`, { prefix, at }), { signal }),
  );
  const entries: Entry[] = useMemo(() => {
    if (travelling) return [...(past.data?.entries ?? [])].sort((a, b) => (a.key < b.key ? -1 : 1));
    return [...(live.state?.entries.values() ?? [])].sort((a, b) => (a.key < b.key ? -1 : 1));
  }, [travelling, past.data, live.state]);
  const horizon = past.error instanceof ApiError && (past.error.status === 410 || past.error.code === "HORIZON") ? past.error : undefined;

  const position = travelling ? at : head;
  const [confirm, setConfirm] = useState<ConfirmRequest>();

  return (
    <div class="board-detail">
      <form class="toolbar" onSubmit={(e) => e.preventDefault()}>
        <label class="field inline">
          <span>Key prefix</span>
          <input type="search" data-testid="board-prefix" value={prefix} placeholder="findings/" onChange={(e) => updateParams({ prefix: e.currentTarget.value })} />
        </label>
        <span class="muted" data-testid="board-summary">
          {live.state ? `${entries.length.toLocaleString()} entries · log position ${head}` : "loading…"}
        </span>
      </form>
      <ErrorNote error={live.error} testId="board-error" />
      {live.state ? (
        <Scrubber head={head} at={position} travelling={travelling} from={from} />
      ) : null}
      {horizon ? (
        <p class="error-note" data-testid="board-horizon" role="alert">
          The board's log before position {at} is gone (retention): {horizon.message}
        </p>
      ) : (
        <ErrorNote error={travelling ? past.error : undefined} testId="board-at-error" />
      )}
      {from !== undefined && live.state ? <Compare name={name} prefix={prefix} from={from} to={position} liveEntries={travelling ? undefined : entries} /> : null}
      <div class="with-panel">
        <div class="entries-wrap">
          <div class="entry-row entry-head" aria-hidden="true">
            <span>key</span>
            <span class="num">version</span>
            <span>author</span>
            <span>tags</span>
            <span>value</span>
            <span>updated</span>
          </div>
          <VirtualList
            items={entries}
            rowHeight={ROW_HEIGHT}
            keyOf={(e) => e.key}
            label={`Entries of ${name}`}
            testId="board-entries"
            empty={live.state && !(travelling && past.loading) ? <Empty testId="board-empty">No entries{prefix ? ` under "${prefix}"` : ""} at this position.</Empty> : null}
            renderRow={(e) => <EntryRow entry={e} selected={e.key === selectedKey} />}
          />
        </div>
        {selectedKey !== null ? (
          <EntryDetail
            key={selectedKey}
            name={name}
            entryKey={selectedKey}
            entry={entries.find((e) => e.key === selectedKey)}
            editable={!travelling}
            onChanged={live.reload}
            onConfirm={setConfirm}
          />
        ) : null}
      </div>
      <ConfirmDialog request={confirm} onDone={() => setConfirm(undefined)} />
    </div>
  );
}

/**
 * The range input over log positions. Dragging shows the position at once and loads the board
 * there once the hand rests (150 ms), so a drag across a thousand positions is a few loads.
 */
function Scrubber({ head, at, travelling, from }: { head: number; at: number; travelling: boolean; from: number | undefined }) {
  const [drag, setDrag] = useState<number>();
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  useEffect(() => () => clearTimeout(timer.current), []);
  const commit = (value: number) => {
    clearTimeout(timer.current);
    setDrag(undefined);
    updateParams({ at: value >= head ? null : value });
  };
  const onInput = (event: TargetedEvent<HTMLInputElement>) => {
    const value = Number(event.currentTarget.value);
    setDrag(value);
    clearTimeout(timer.current);
    timer.current = setTimeout(() => commit(value), 150);
  };
  const shown = drag ?? at;
  return (
    <div class="scrubber" data-testid="board-scrubber-panel">
      <div class="row gap">
        <button type="button" class="btn btn-small" data-testid="board-step-back" aria-label="One log position back" disabled={shown <= 0} onClick={() => commit(shown - 1)}>
          ◀
        </button>
        <input
          type="range"
          class="grow"
          min={0}
          max={head}
          step={1}
          value={shown}
          data-testid="board-scrubber"
          aria-label="Log position"
          aria-valuetext={`position ${shown} of ${head}`}
          onInput={onInput}
          onChange={(e) => commit(Number(e.currentTarget.value))}
        />
        <button type="button" class="btn btn-small" data-testid="board-step-forward" aria-label="One log position forward" disabled={shown >= head} onClick={() => commit(shown + 1)}>
          ▶
        </button>
        <span class="mono" data-testid="board-position" data-position={shown} data-live={travelling ? "false" : "true"}>
          #{shown} / {head}
        </span>
        {travelling ? (
          <button type="button" class="btn btn-small btn-primary" data-testid="board-live" onClick={() => commit(head)}>
            Back to live
          </button>
        ) : (
          <Badge tone="running" testId="board-live">
            live
          </Badge>
        )}
      </div>
      <div class="row gap">
        <label class="check">
          <input
            type="checkbox"
            data-testid="board-compare"
            checked={from !== undefined}
            onChange={(e) => updateParams({ from: e.currentTarget.checked ? Math.max(0, shown - 1) : null })}
          />
          Compare with position
        </label>
        {from !== undefined ? (
          <>
            <input
              type="range"
              class="grow"
              min={0}
              max={head}
              step={1}
              value={from}
              data-testid="board-scrubber-from"
              aria-label="Position to compare with"
              onChange={(e) => updateParams({ from: Number(e.currentTarget.value) })}
            />
            <PositionField value={from} max={head} onCommit={(n) => updateParams({ from: n })} />
          </>
        ) : null}
      </div>
    </div>
  );
}

/** A position typed in: kept as typed while the board moves on, taken on Enter or leaving the field. */
function PositionField({ value, max, onCommit }: { value: number; max: number; onCommit: (n: number) => void }) {
  const [draft, setDraft] = useState<string>();
  const commit = () => {
    if (draft === undefined) return;
    const n = Number(draft);
    setDraft(undefined);
    if (draft.trim() !== "" && Number.isFinite(n)) onCommit(Math.max(0, Math.min(max, Math.round(n))));
  };
  return (
    <input
      type="number"
      class="narrow"
      min={0}
      max={max}
      value={draft ?? String(value)}
      data-testid="board-from-input"
      aria-label="Position to compare with"
      onInput={(e) => setDraft(e.currentTarget.value)}
      onBlur={commit}
      onKeyDown={(e) => {
        if (e.key === "Enter") {
          e.preventDefault();
          commit();
        }
      }}
    />
  );
}

type Change = { key: string; change: "added" | "removed" | "changed"; before?: Entry; after?: Entry };

function diff(before: Entry[], after: Entry[]): Change[] {
  const old = new Map(before.map((e) => [e.key, e]));
  const changes: Change[] = [];
  for (const e of after) {
    const was = old.get(e.key);
    if (!was) changes.push({ key: e.key, change: "added", after: e });
    else if (was.version !== e.version) changes.push({ key: e.key, change: "changed", before: was, after: e });
    old.delete(e.key);
  }
  for (const e of old.values()) changes.push({ key: e.key, change: "removed", before: e });
  return changes.sort((a, b) => (a.key < b.key ? -1 : 1));
}

/** What changed between two positions: the keys (from two snapshots) and the log records between. */
function Compare({ name, prefix, from, to: moving, liveEntries }: { name: string; prefix: string; from: number; to: number; liveEntries: Entry[] | undefined }) {
  // At the head, `to` moves with every write: load for it once it rests.
  const to = useSettled(moving, liveEntries ? 500 : 0);
  const low = Math.min(from, to);
  const high = Math.max(from, to);
  const snapshot = (seq: number) => (signal: AbortSignal) => api<Snapshot>(withQuery(`/api/boards/${enc(name)}/entries`, { prefix, at: seq }), { signal });
  const lowSnap = useLoad(`${name}\u0000${prefix}\u0000${low}`, snapshot(low));
  // The higher end is the live board when it is the head: no need to load it.
  const highSnap = useLoad(liveEntries && high === to ? null : `${name}\u0000${prefix}\u0000${high}`, snapshot(high));
  const highEntries = liveEntries && high === to ? liveEntries : highSnap.data?.entries;
  const changes = useMemo(() => (lowSnap.data && highEntries ? diff(lowSnap.data.entries, highEntries) : undefined), [lowSnap.data, highEntries]);

  const [records, setRecords] = useState<LogRecord[]>([]);
  const [next, setNext] = useState<number | undefined>();
  const [historyError, setHistoryError] = useState<unknown>();
  const loadHistory = useCallback(
    async (after: number, append: boolean) => {
      try {
        const answer = await api<{ records: LogRecord[]; next?: number | null }>(withQuery(`/api/boards/${enc(name)}/history`, { after, limit: HISTORY_PAGE }));
        const inRange = answer.records.filter((r) => r.seq > low && r.seq <= high && (!prefix || r.key.startsWith(prefix)));
        setRecords((previous) => (append ? [...previous, ...inRange] : inRange));
        const last = answer.records.at(-1)?.seq;
        const more = answer.next ?? (answer.records.length === HISTORY_PAGE ? last : undefined);
        setNext(more !== undefined && more !== null && (last ?? high) < high ? more : undefined);
        setHistoryError(undefined);
      } catch (error) {
        setHistoryError(error);
      }
    },
    [name, low, high, prefix],
  );
  useEffect(() => {
    void loadHistory(low, false);
  }, [loadHistory, low]);

  return (
    <div class="compare" data-testid="board-compare-panel">
      <h3>
        From #{low} to #{high}
      </h3>
      <div class="compare-cols">
        <div>
          <h4>Keys that changed</h4>
          <ErrorNote error={lowSnap.error ?? highSnap.error} testId="board-diff-error" />
          {!changes ? (
            <p class="muted">loading…</p>
          ) : changes.length === 0 ? (
            <p class="muted" data-testid="board-diff">
              nothing changed
            </p>
          ) : (
            <ul class="diff" data-testid="board-diff">
              {changes.slice(0, 1000).map((c) => (
                <li key={c.key} class={`diff-${c.change}`} data-testid={`board-diff-${c.key}`} data-change={c.change}>
                  <Badge tone={c.change === "added" ? "succeeded" : c.change === "removed" ? "failed" : "claimed"}>{c.change}</Badge>{" "}
                  <span class="mono">{c.key}</span>
                  {c.before ? <span class="muted"> v{c.before.version}</span> : null}
                  {c.before && c.after ? " → " : " "}
                  {c.after ? <span class="muted">v{c.after.version}</span> : null}
                  <div class="diff-values small">
                    {c.before ? <del class="mono">{preview(c.before.value, 160)}</del> : null}
                    {c.after ? <ins class="mono">{preview(c.after.value, 160)}</ins> : null}
                  </div>
                </li>
              ))}
            </ul>
          )}
        </div>
        <div>
          <h4>Log records</h4>
          <ErrorNote error={historyError} testId="board-history-error" />
          {records.length === 0 ? (
            <p class="muted" data-testid="board-history">
              none
            </p>
          ) : (
            <ol class="history" data-testid="board-history">
              {records.map((r) => (
                <li key={r.seq} data-testid={`board-history-${r.seq}`}>
                  <span class="mono">#{r.seq}</span> <Badge tone={r.op === "delete" ? "failed" : "succeeded"}>{r.op}</Badge> <span class="mono">{r.key}</span>{" "}
                  <span class="muted">
                    v{r.version} by {r.author} · {time(r.at)}
                  </span>
                  {r.op === "write" ? <div class="mono small ellipsis">{preview(r.value, 160)}</div> : null}
                </li>
              ))}
            </ol>
          )}
          {next !== undefined ? (
            <button type="button" class="btn btn-small" data-testid="board-history-more" onClick={() => void loadHistory(next, true)}>
              More
            </button>
          ) : null}
        </div>
      </div>
    </div>
  );
}

function EntryRow({ entry, selected }: { entry: Entry; selected: boolean }) {
  const open = () => updateParams({ key: entry.key }, { push: true });
  const tags = tagList(entry.tags);
  return (
    <div
      class={`entry-row${selected ? " selected" : ""}`}
      data-testid={`board-entry-${entry.key}`}
      data-version={entry.version}
      data-row-focus
      tabIndex={0}
      aria-label={`${entry.key}, version ${entry.version}, by ${entry.author}`}
      aria-current={selected ? "true" : undefined}
      onClick={open}
      onKeyDown={(e) => {
        if (e.target === e.currentTarget && (e.key === "Enter" || e.key === " ")) {
          e.preventDefault();
          open();
        }
      }}
    >
      <span class="mono ellipsis" title={entry.key}>
        {entry.key}
      </span>
      <span class="num">v{entry.version}</span>
      <span class="ellipsis" title={entry.author}>
        {entry.author}
      </span>
      <span class="tags ellipsis" title={tags.join(" ")}>
        {tags.map((t) => (
          <span key={t} class="tag">
            {t}
          </span>
        ))}
      </span>
      <span class="mono ellipsis muted" title={preview(entry.value, 400)}>
        {preview(entry.value)}
      </span>
      <span class="small muted">{time(entry.updatedAt)}</span>
    </div>
  );
}

function EntryDetail({
  name,
  entryKey,
  entry,
  editable,
  onChanged,
  onConfirm,
}: {
  name: string;
  entryKey: string;
  entry: Entry | undefined;
  editable: boolean;
  onChanged: () => void;
  onConfirm: (request: ConfirmRequest) => void;
}) {
  const history = useLoad(`${name}\u0000${entryKey}\u0000${entry?.version ?? 0}`, (signal) =>
    api<{ records: LogRecord[] }>(withQuery(`/api/boards/${enc(name)}/history`, { key: entryKey, limit: 200 }), { signal }),
  );
  const [editing, setEditing] = useState(false);
  const [valueText, setValueText] = useState("");
  const [tagsText, setTagsText] = useState("");
  const [problem, setProblem] = useState<string>();
  const [conflict, setConflict] = useState<unknown>();
  const [saving, setSaving] = useState(false);
  const close = () => updateParams({ key: null }, { push: true });

  const startEdit = () => {
    setValueText(JSON.stringify(entry?.value ?? null, null, 2));
    setTagsText(JSON.stringify(entry?.tags ?? {}));
    setProblem(undefined);
    setConflict(undefined);
    setEditing(true);
  };

  const save = async () => {
    let value: unknown;
    let tags: unknown;
    try {
      value = JSON.parse(valueText);
    } catch (error) {
      return setProblem(`value: ${errorMessage(error)}`);
    }
    try {
      tags = tagsText.trim() ? JSON.parse(tagsText) : undefined;
    } catch (error) {
      return setProblem(`tags: ${errorMessage(error)}`);
    }
    setSaving(true);
    try {
      await api(`/api/boards/${enc(name)}/entries/${enc(entryKey)}`, {
        method: "PUT",
        body: tags === undefined ? { value } : { value, tags },
        headers: { "If-Match": String(entry?.version ?? 0) },
      });
      setEditing(false);
      toast(`Saved ${entryKey}`);
      onChanged();
    } catch (error) {
      if (error instanceof ApiError && error.status === 412) {
        setConflict(error.body?.current);
        setProblem("Someone wrote this entry since you loaded it: nothing was saved. The board shows its new version; edit that one.");
      } else setProblem(errorMessage(error));
    } finally {
      setSaving(false);
    }
  };

  const remove = () => {
    if (!entry) return;
    onConfirm({
      title: `Delete ${entryKey}?`,
      body: <p>The delete is logged (a tombstone) and takes version {entry.version + 1}.</p>,
      confirmLabel: "Delete",
      danger: true,
      action: async () => {
        await api(`/api/boards/${enc(name)}/entries/${enc(entryKey)}`, { method: "DELETE", headers: { "If-Match": String(entry.version) } });
        toast(`Deleted ${entryKey}`);
        close();
        onChanged();
      },
    });
  };

  return (
    <aside class="panel" data-testid="board-entry-detail" aria-label={`Entry ${entryKey}`}>
      <div class="panel-head">
        <h2 class="panel-title mono" title={entryKey}>
          {entryKey}
        </h2>
        <button type="button" class="btn btn-quiet" onClick={close} data-testid="board-entry-close" aria-label="Close the entry">
          ×
        </button>
      </div>
      {!entry ? (
        <p class="muted">No such entry at this position.</p>
      ) : (
        <>
          <dl class="facts">
            <dt>version</dt>
            <dd data-testid="board-entry-version">{entry.version}</dd>
            <dt>author</dt>
            <dd>{entry.author}</dd>
            <dt>created</dt>
            <dd>{time(entry.createdAt)}</dd>
            <dt>updated</dt>
            <dd>{time(entry.updatedAt)}</dd>
            <dt>tags</dt>
            <dd>
              {tagList(entry.tags).map((t) => (
                <span key={t} class="tag">
                  {t}
                </span>
              ))}
            </dd>
          </dl>
          {editing ? (
            <form
              class="stack"
              onSubmit={(e) => {
                e.preventDefault();
                void save();
              }}
            >
              <label class="field">
                <span>Value (JSON)</span>
                <textarea rows={10} class="mono" value={valueText} onInput={(e) => setValueText(e.currentTarget.value)} data-testid="board-entry-value" />
              </label>
              <label class="field">
                <span>Tags (JSON object)</span>
                <input class="mono" value={tagsText} onInput={(e) => setTagsText(e.currentTarget.value)} data-testid="board-entry-tags" />
              </label>
              {problem ? (
                <p class="error-note" role="alert" data-testid={conflict !== undefined ? "board-entry-conflict" : "board-entry-problem"}>
                  {problem}
                </p>
              ) : null}
              <div class="row gap">
                <button type="submit" class="btn btn-primary" disabled={saving} data-testid="board-entry-save">
                  Save as version {entry.version + 1}
                </button>
                <button type="button" class="btn" onClick={() => setEditing(false)} data-testid="board-entry-cancel-edit">
                  Cancel
                </button>
              </div>
            </form>
          ) : (
            <>
              <Json value={entry.value} testId="board-entry-json" label="Value" />
              {editable ? (
                <div class="row gap">
                  <button type="button" class="btn" onClick={startEdit} data-testid="board-entry-edit">
                    Edit
                  </button>
                  <button type="button" class="btn btn-danger-quiet" onClick={remove} data-testid="board-entry-delete">
                    Delete
                  </button>
                </div>
              ) : (
                <p class="muted small">A past position: go back to live to edit.</p>
              )}
            </>
          )}
        </>
      )}
      <h3>History of this key</h3>
      <ErrorNote error={history.error} testId="board-entry-history-error" />
      <ol class="history" data-testid="board-entry-history">
        {(history.data?.records ?? [])
          .filter((r) => r.key === entryKey)
          .map((r) => (
            <li key={r.seq}>
              <button type="button" class="linklike mono" title="Show the board at this position" onClick={() => updateParams({ at: r.seq })}>
                #{r.seq}
              </button>{" "}
              <Badge tone={r.op === "delete" ? "failed" : "succeeded"}>{r.op}</Badge> v{r.version} <span class="muted">by {r.author} · {time(r.at)}</span>
              {r.op === "write" ? <div class="mono small ellipsis">{preview(r.value, 160)}</div> : null}
            </li>
          ))}
      </ol>
    </aside>
  );
}
