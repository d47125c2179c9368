/**
 * The dashboard in a real browser: Debian's chromium driven by playwright-core (no browser
 * download), against `colony.serve()` on a SQLite file that holds a board, tasks in several states
 * with dependencies, a spawn tree, a run, a worker and an approval. Each view opens and shows them;
 * a write by another process appears live; a task card opens its detail; an agent is terminated
 * from the tree; the scrubber shows an older value. A screenshot of each view is saved under
 * test-artifacts/dashboard/, and the page must log no error. Then, on a store of 5,000 tasks and
 * 500 live agents: the kanban and the tree keep only what is on screen in the page, scroll to their
 * ends, follow a burst of 500 submits and 100 completions live, and still answer input; the page's
 * long main-thread tasks are written to test-artifacts/dashboard/scale.json.
 *
 * Without chromium (CHROMIUM_PATH, /usr/bin/chromium, /usr/bin/chromium-browser) the file skips,
 * saying so; under CI it fails instead (.ci/run installs Debian's package).
 */
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import { chromium, type Browser, type Page } from "playwright-core";
import { APPROVALS_BOARD, requestApproval } from "../src/core/approvals.ts";
import essay from "../src/demo/essay.ts";
import { defineSubAgent, SubAgentError, type Colony, type ColonyServer, type SubAgentContext, type SubAgentHandle } from "../src/index.ts";
import { sqliteColony, subtree, tempDir, waitFor } from "./fixtures/helpers.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const DASHBOARD_SOURCES = join(ROOT, "dashboard");
const BUILT = join(ROOT, "dist", "dashboard", "index.html");
const VITE = join(ROOT, "node_modules", "vite", "bin", "vite.js");
const ARTIFACTS = join(ROOT, "test-artifacts", "dashboard");
const BOARD_WRITER = fileURLToPath(new URL("./fixtures/board-writer.ts", import.meta.url));

function findChromium(): string | undefined {
  const given = process.env.CHROMIUM_PATH;
  if (given) return given;
  return ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((path) => existsSync(path));
}

const CHROMIUM = findChromium();
const MISSING = "no chromium: install Debian's chromium package (.ci/run does), or set CHROMIUM_PATH to a Chromium binary";

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) newest = Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}

/**
 * Builds dist/dashboard when it is missing or older than any file of dashboard/: a failure that
 * only said "run the build" would leave a fresh clone's `npm test` red, and a stale build would
 * test yesterday's dashboard without saying so. The build takes about a second.
 */
function ensureDashboardBuilt(): void {
  if (existsSync(BUILT) && statSync(BUILT).mtimeMs >= newestMtime(DASHBOARD_SOURCES)) return;
  // `npm run build:dashboard`, with this node and without npm.
  execFileSync(process.execPath, [VITE, "build", "--config", "dashboard/vite.config.ts", "--logLevel", "warn"], { cwd: ROOT, stdio: ["ignore", "ignore", "pipe"] });
}

/**
 * Chromium with one page, which collects the page's errors and console errors in `problems` and
 * every main-thread task over 50 ms in `globalThis.longTasks`, from the first script on.
 */
async function openPage(colorScheme: "light" | "dark", timeoutMs: number): Promise<{ browser: Browser; page: Page; problems: string[] }> {
  const asRoot = process.getuid?.() === 0;
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...(asRoot ? ["--no-sandbox"] : []), "--disable-dev-shm-usage"] });
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, colorScheme });
  context.setDefaultTimeout(timeoutMs);
  await context.addInitScript(() => {
    const longTasks: number[] = [];
    Object.assign(globalThis, { longTasks });
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) longTasks.push(entry.duration);
    }).observe({ type: "longtask", buffered: true } as never); // "longtask": an entry type of browsers that Node's types do not name
  });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`console: ${message.text()}`);
  });
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  return { browser, page, problems };
}

/** What a suite opened, closed in the order that lets each finish: the page's requests, the server's streams, the store. */
async function closeAll(opened: { browser?: Browser; server?: ColonyServer; colony?: Colony; dir?: { dispose(): void } }): Promise<void> {
  await opened.browser?.close();
  await opened.server?.close();
  await opened.colony?.close();
  opened.dir?.dispose();
}

/** An element with a test id and the given data attributes. */
const withDataOn = (page: Page, id: string, data: Record<string, string | number>) =>
  page.locator(`[data-testid="${id}"]${Object.entries(data).map(([k, v]) => `[data-${k}="${v}"]`).join("")}`);

/** Resolves once its signal aborts: an agent that works until it is stopped. */
const untilStopped = (ctx: SubAgentContext<unknown>) =>
  new Promise<string>((resolve) => {
    if (ctx.signal.aborted) resolve("stopped");
    ctx.signal.addEventListener("abort", () => resolve("stopped"), { once: true });
  });

const reader = defineSubAgent({
  name: "reader",
  run: async (ctx) => {
    ctx.usage.add({ tokens: 300, costUsd: 0.0009 });
    return untilStopped(ctx);
  },
});

const searcher = defineSubAgent<{ topic: string }, string>({
  name: "searcher",
  run: async (ctx) => {
    ctx.usage.add({ tokens: 1200, costUsd: 0.0036 });
    if (ctx.input.topic === "trails") await ctx.spawn(reader, null);
    return untilStopped(ctx);
  },
});

const lead = defineSubAgent({
  name: "lead",
  run: async (ctx) => {
    ctx.usage.add({ tokens: 500, costUsd: 0.0015 });
    await ctx.spawn(searcher, { topic: "trails" });
    await ctx.spawn(searcher, { topic: "nests" });
    return untilStopped(ctx);
  },
});

const scanner = defineSubAgent({ name: "scanner", run: untilStopped });

interface Seeded {
  lead: SubAgentHandle;
  runId: string;
  approvalId: string;
  /** The log position after `plan` was first written, and before it was rewritten. */
  planV1At: number;
}

/** What the dashboard shows: a board, tasks in every column that matters, a spawn tree, a run, a worker, an approval. */
async function seed(colony: Colony): Promise<Seeded> {
  const notes = await colony.board("notes");
  await notes.write("plan", { steps: 3, note: "first plan" }, { author: "planner", tags: ["plan"] });
  await notes.write("findings/pheromone", "foragers mark the way back to food", { author: "researcher", tags: { confidence: 0.92, status: "pending_review" } });
  await notes.write("findings/evaporation", "pheromone evaporates, so long trails fade", { author: "researcher", tags: { confidence: 0.85, status: "pending_review" } });
  const planV1At = await notes.refresh();
  await notes.write("plan", { steps: 4, note: "second plan" }, { author: "planner", tags: ["plan"] });
  await notes.write("findings/pheromone", "foragers mark the way back to food", { author: "critic", tags: { confidence: 0.92, status: "approved" } });

  const tasks = await colony.tasks();
  const claim = (kind: string) => tasks.claim({ worker: "tester", capabilities: [kind], leaseMs: 600_000 });
  await tasks.submit({ id: "gather-trails", kind: "research", input: { topic: "trails" }, priority: 2 });
  const done = await claim("research");
  await tasks.complete(done!.id, { finding: "shorter paths collect pheromone faster" }, { generation: done!.generation });
  await tasks.submit({ id: "gather-nests", kind: "research", input: { topic: "nests" } });
  await tasks.submit({ id: "compare", kind: "compare", input: { weights: { speed: 1 } }, dependsOn: ["gather-trails", "gather-nests"] });
  await tasks.submit({ id: "flaky-probe", kind: "probe", maxAttempts: 1 });
  const probe = await claim("probe");
  await tasks.fail(probe!.id, "the probe lost its trail", { generation: probe!.generation, retryable: false });
  await tasks.submit({ id: "old-survey", kind: "survey" });
  await tasks.cancel("old-survey");
  await tasks.submit({ id: "scan-hill", kind: "scan", input: { hill: "north" } });

  // The worker takes scan-hill and holds it until it stops.
  await colony.worker({ id: "node-1", agents: { scan: scanner }, leaseMs: 60_000, registerAfterMs: 1 });

  const leadHandle = await colony.spawn(lead, null);
  const { runId } = await colony.run(essay);
  const approval = await requestApproval(await colony.board(APPROVALS_BOARD), {
    tool: "shell.exec",
    args: { command: "rm -rf build/" },
    agentId: `${runId}/writer`,
    agentName: "writer",
    path: ["essay", "writer"],
    rootId: runId,
    owner: { pid: process.pid, host: hostname() },
  });
  return { lead: leadHandle, runId, approvalId: approval.id, planV1At };
}

// Under CI a missing browser is a failure, counted as one, not a skip that hides the suite.
if (CHROMIUM === undefined && process.env.CI === "true") test("chromium is there under CI", () => assert.fail(MISSING));

describe("the dashboard in chromium", { skip: CHROMIUM === undefined ? MISSING : false, timeout: 120_000 }, () => {
  let dir: ReturnType<typeof tempDir> | undefined;
  let db = "";
  let colony: Colony | undefined;
  let server: ColonyServer | undefined;
  let browser: Browser | undefined;
  let page: Page;
  let seeded: Seeded;
  let problems: string[] = [];

  before(async () => {
    ensureDashboardBuilt();
    mkdirSync(ARTIFACTS, { recursive: true });
    dir = tempDir("colony-dashboard-");
    db = join(dir.path, "colony.db");
    colony = sqliteColony(db);
    seeded = await seed(colony);
    server = await colony.serve({ port: 0, pollMs: 200 });
    ({ browser, page, problems } = await openPage("light", 20_000));
    await page.goto(`${server.url}/#/tasks`);
  });

  after(() => closeAll({ browser, server, colony, dir }));

  const byId = (id: string) => page.getByTestId(id);
  const withData = (id: string, data: Record<string, string | number>) => withDataOn(page, id, data);
  const shot = (name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
  const open = async (view: string) => {
    await byId(`nav-${view}`).click();
    await byId(`view-${view}`).waitFor();
  };

  /** The board of `seed`, from the list of the store's boards. */
  const openNotes = async () => {
    await byId("board-link-notes").click();
    await withData("board-entry-plan", { version: 2 }).waitFor();
  };

  /** A test that leaves a screenshot of the page as it failed, for whoever reads the artifacts. */
  const inBrowser = (name: string, fn: () => Promise<void>): void => {
    test(name, async () => {
      try {
        await fn();
      } catch (error) {
        await shot(`failed-${name.replace(/[^a-z0-9]+/gi, "-").slice(0, 60)}`).catch(() => {});
        throw error;
      }
    });
  };

  inBrowser("each view opens on its data, live, and is saved as a screenshot", async () => {
    await open("tasks");
    await withData("task-card-gather-trails", { status: "succeeded" }).waitFor();
    await withData("task-card-compare", { status: "blocked" }).waitFor();
    await withData("task-card-gather-nests", { status: "pending" }).waitFor();
    await withData("task-card-scan-hill", { status: "claimed" }).waitFor();
    await withData("task-card-flaky-probe", { status: "failed" }).waitFor();
    await withData("task-card-old-survey", { status: "cancelled" }).waitFor();
    // Attempts as every surface numbers them: a task that ran once is on attempt 1.
    assert.match((await byId("task-card-gather-trails").textContent()) ?? "", /1\/3/);
    await withData("live-status", { state: "live" }).waitFor();
    await shot("tasks");

    await open("agents");
    await withData(`agent-node-${seeded.lead.id}`, { state: "running", depth: 0 }).waitFor();
    await page.locator('[data-testid^="agent-node-"][data-depth="2"]').first().waitFor();
    assert.equal(await page.locator('[data-testid^="agent-node-"][data-depth="1"]').count(), 2);
    await withData("live-status", { state: "live" }).waitFor();
    await shot("agents");
    await byId(`agent-node-${seeded.lead.id}`).click();
    await byId("agent-detail").waitFor();
    await withData("agent-graph", { state: "ready" }).waitFor();
    assert.equal(await page.locator('[data-testid^="agent-graph-node-"]').count(), 4);
    await shot("agent-detail");

    await open("board");
    // Listed: every board of the store with a write, whoever wrote it.
    await byId("board-link-essay").waitFor();
    await openNotes();
    await byId("board-entry-findings/evaporation").waitFor();
    await withData("board-position", { live: "true" }).waitFor();
    await shot("board");

    await open("runs");
    await byId(`run-row-${seeded.runId}`).click();
    await byId("run-detail").waitFor();
    await byId("run-fired-1-researcher").waitFor();
    await byId("run-fired-2-writer").waitFor();
    await shot("runs");

    await open("nodes");
    await withData("node-row-node-1", { status: "busy" }).waitFor();
    await byId("queue-row-research").waitFor();
    await shot("nodes");

    await open("approvals");
    await withData(`approval-${seeded.approvalId}`, { status: "pending" }).waitFor();
    await shot("approvals");

    await open("tasks");
    await byId("task-card-compare").waitFor();
    await byId("theme-toggle").click();
    await withData("theme-toggle", { "theme-now": "dark" }).waitFor();
    await shot("tasks-dark");
    await byId("theme-toggle").click();
    await withData("theme-toggle", { "theme-now": "light" }).waitFor();
    assert.deepEqual(problems, []);
  });

  inBrowser("a board write by another process appears live, without a reload", async () => {
    await page.goto(`${server!.url}/#/board/notes`);
    await withData("board-entry-plan", { version: 2 }).waitFor();
    await withData("live-status", { state: "live" }).waitFor();
    // Gone if the page loads again.
    await page.evaluate(() => Object.assign(globalThis, { sameDocument: true }));

    const writer = spawn(process.execPath, [BOARD_WRITER, db, "notes", "live/", "1"], { stdio: ["ignore", "pipe", "inherit"] });
    const [code] = (await once(writer, "exit")) as [number | null];
    assert.equal(code, 0);

    await withData("board-entry-live/0", { version: 1 }).waitFor();
    assert.match((await byId("board-entry-live/0").textContent()) ?? "", new RegExp(`writer-${writer.pid}`));
    assert.equal(await page.evaluate(() => (globalThis as { sameDocument?: boolean }).sameDocument), true, "the page was not reloaded");
    await shot("board-live-write");
    assert.deepEqual(problems, []);
  });

  inBrowser("clicking a task card shows its detail, with its dependencies", async () => {
    await open("tasks");
    await byId("task-card-compare").click();
    const detail = byId("task-detail");
    await detail.waitFor();
    assert.equal(await byId("task-detail-status").textContent(), "blocked");
    await byId("task-graph-node-gather-nests").waitFor();
    await byId("task-graph-node-gather-trails").waitFor();
    assert.match((await byId("task-input").textContent()) ?? "", /"speed": 1/);
    assert.match(page.url(), /[?&]task=compare\b/);
    await shot("task-detail");
    assert.deepEqual(problems, []);
  });

  inBrowser("terminating an agent from the tree ends it and its descendants", async () => {
    await open("agents");
    await byId(`agent-terminate-${seeded.lead.id}`).click();
    await byId("confirm-dialog").waitFor();
    assert.equal(await byId("confirm-option").isChecked(), true, "cascade is the default");
    await byId("confirm-ok").click();

    await assert.rejects(seeded.lead.result, (error: Error) => error instanceof SubAgentError && error.reason === "terminated");
    await withData(`agent-node-${seeded.lead.id}`, { state: "terminated" }).waitFor();
    // The lead, its two searchers and the reader, however the registry's polls split their ends.
    await page.locator('[data-testid^="agent-node-"][data-state="terminated"]').nth(3).waitFor();
    const tree = await subtree(colony!, seeded.lead.id);
    assert.equal(tree.length, 4);
    assert.deepEqual(new Set(tree.map((a) => a.state)), new Set(["terminated"]));
    // The worker's agent is another tree: still running.
    assert.equal(await page.locator('[data-testid^="agent-node-"][data-state="running"]').count(), 1);
    await shot("agents-terminated");
    assert.deepEqual(problems, []);
  });

  inBrowser("moving the time-travel scrubber shows an older value", async () => {
    await open("board");
    await openNotes();
    await byId("board-entry-plan").click();
    await byId("board-entry-detail").waitFor();
    assert.match((await byId("board-entry-json").textContent()) ?? "", /second plan/);

    await byId("board-scrubber").fill(String(seeded.planV1At));
    await withData("board-position", { position: seeded.planV1At, live: "false" }).waitFor();
    await withData("board-entry-plan", { version: 1 }).waitFor();
    await byId("board-entry-json").filter({ hasText: "first plan" }).waitFor();
    // Keys written later are not there yet.
    assert.equal(await byId("board-entry-live/0").count(), 0);
    assert.match(page.url(), new RegExp(`[?&]at=${seeded.planV1At}\\b`));
    await shot("board-past");

    await byId("board-live").click();
    await withData("board-entry-plan", { version: 2 }).waitFor();
    await withData("board-position", { live: "true" }).waitFor();
    assert.deepEqual(problems, []);
  });
});

/** The scale the dashboard must stay usable at. */
const SCALE = { tasks: 5000, roots: 20, childrenEach: 24, claimed: 300, succeeded: 200, cancelled: 100, blocked: 50, burst: 500 } as const;
const SCALE_AGENTS = SCALE.roots * (1 + SCALE.childrenEach);

const leaf = defineSubAgent({ name: "leaf", run: untilStopped });
const branch = defineSubAgent<null, string>({
  name: "branch",
  run: async (ctx) => {
    ctx.usage.add({ tokens: 10, costUsd: 0.00001 });
    for (let i = 0; i < SCALE.childrenEach; i++) await ctx.spawn(leaf, null);
    return untilStopped(ctx);
  },
});

/** 5,000 tasks across the columns and a forest of 500 live agents. */
async function seedScale(colony: Colony): Promise<{ roots: SubAgentHandle[] }> {
  const tasks = await colony.tasks();
  const kinds = ["research", "summarise", "review", "translate", "index"];
  for (let i = 0; i < SCALE.tasks - SCALE.blocked; i += 500) {
    const size = Math.min(500, SCALE.tasks - SCALE.blocked - i);
    await tasks.submitAll(Array.from({ length: size }, (_, j) => ({ id: `t-${String(i + j).padStart(5, "0")}`, kind: kinds[(i + j) % kinds.length]!, input: { n: i + j }, priority: (i + j) % 3 })));
  }
  await tasks.submitAll(Array.from({ length: SCALE.blocked }, (_, j) => ({ id: `after-${j}`, kind: "report", dependsOn: [`t-${String(SCALE.tasks - SCALE.blocked - 1).padStart(5, "0")}`] })));
  for (let i = 0; i < SCALE.claimed; i++) {
    const claimed = await tasks.claim({ worker: "scale-tester", capabilities: kinds, leaseMs: 600_000 });
    if (i < SCALE.succeeded) await tasks.complete(claimed!.id, { ok: i }, { generation: claimed!.generation });
  }
  const pending = await tasks.list({ status: "pending" });
  for (const task of pending.slice(0, SCALE.cancelled)) await tasks.cancel(task.id);
  const roots: SubAgentHandle[] = [];
  for (let i = 0; i < SCALE.roots; i++) roots.push(await colony.spawn(branch, null));
  await waitFor(async () => ((await colony.agents.list({ state: "running" })).length === SCALE_AGENTS ? true : undefined), 60_000, `${SCALE_AGENTS} agents running`);
  return { roots };
}

describe("the dashboard at 5,000 tasks and 500 agents", { skip: CHROMIUM === undefined ? MISSING : false, timeout: 300_000 }, () => {
  let dir: ReturnType<typeof tempDir> | undefined;
  let colony: Colony | undefined;
  let server: ColonyServer | undefined;
  let browser: Browser | undefined;
  let page: Page;
  let seeded: Awaited<ReturnType<typeof seedScale>>;
  let problems: string[] = [];

  before(async () => {
    ensureDashboardBuilt();
    mkdirSync(ARTIFACTS, { recursive: true });
    dir = tempDir("colony-dashboard-scale-");
    colony = sqliteColony(join(dir.path, "colony.db"));
    seeded = await seedScale(colony);
    server = await colony.serve({ port: 0, pollMs: 500 });
    ({ browser, page, problems } = await openPage("dark", 60_000));
  });

  after(() => closeAll({ browser, server, colony, dir }));

  const byId = (id: string) => page.getByTestId(id);
  const count = async (id: string) => Number(((await byId(id).textContent()) ?? "").replace(/\D/g, ""));
  const rendered = (prefix: string) => page.locator(`[data-testid^="${prefix}"]`).count();

  test("the kanban and the spawn tree render only what is on screen, scroll to the end, follow a burst live, answer the keyboard, and log no error", async () => {
    const pending = SCALE.tasks - SCALE.blocked - SCALE.claimed - SCALE.cancelled;
    await page.goto(`${server!.url}/#/tasks`);
    await page.locator(`[data-testid="task-column-count-pending"]:text-is("${pending.toLocaleString("en-US")}")`).waitFor();
    assert.deepEqual(
      [await count("task-column-count-claimed"), await count("task-column-count-succeeded"), await count("task-column-count-cancelled"), await count("task-column-count-blocked")],
      [SCALE.claimed - SCALE.succeeded, SCALE.succeeded, SCALE.cancelled, SCALE.blocked],
    );
    const cards = await rendered("task-card-");
    assert.ok(cards < 400, `${cards} task cards in the page for ${SCALE.tasks} tasks: the columns are not virtualised`);
    await page.screenshot({ path: join(ARTIFACTS, "scale-tasks.png") });

    // The end of the longest column is reachable by scrolling, and a card there opens: the highest
    // priority goes first, so the last card is one of priority 0.
    const column = byId("task-list-pending");
    const top = await column.locator('[data-testid^="task-card-"]').first().getAttribute("data-testid");
    await column.evaluate((list) => list.scrollTo({ top: list.scrollHeight }));
    await byId(top!).waitFor({ state: "detached" });
    const end = column.locator('[data-testid^="task-card-"]').last();
    const endId = (await end.getAttribute("data-testid"))!.slice("task-card-".length);
    assert.equal((await (await colony!.tasks()).get(endId))?.priority, 0);
    await end.click();
    await byId("task-detail").waitFor();
    assert.equal(await byId("task-detail-status").textContent(), "pending");

    // A burst of changes from outside: new tasks, and claimed ones finishing; the counts follow without a reload.
    const tasks = await colony!.tasks();
    await tasks.submitAll(Array.from({ length: SCALE.burst }, (_, j) => ({ id: `burst-${j}`, kind: "burst", input: j })));
    for (const task of await tasks.list({ status: "claimed" })) await tasks.complete(task.id, { late: true }, { generation: task.generation });
    await page.locator(`[data-testid="task-column-count-succeeded"]:text-is("${SCALE.claimed.toLocaleString("en-US")}")`).waitFor();
    await page.locator(`[data-testid="task-column-count-pending"]:text-is("${(pending + SCALE.burst).toLocaleString("en-US")}")`).waitFor();
    assert.equal(await count("task-column-count-claimed"), 0);
    // Still answering input: the kind filter narrows the board to the burst.
    await byId("tasks-filter-kind").selectOption("burst");
    await page.locator(`[data-testid="task-column-count-pending"]:text-is("${SCALE.burst}")`).waitFor();
    await byId("tasks-filter-kind").selectOption("");

    // By keyboard alone: the focus on a card, End takes it to the last of thousands (scrolled into
    // the page first), ArrowUp one back, Enter opens that card.
    const total = pending + SCALE.burst;
    const focusedRow = (index: number) => column.locator(`[data-index="${index}"] :focus`);
    await column.locator('[data-testid^="task-card-"]').first().focus();
    await page.keyboard.press("End");
    await focusedRow(total - 1).waitFor();
    await page.keyboard.press("ArrowUp");
    await focusedRow(total - 2).waitFor();
    const chosen = (await focusedRow(total - 2).getAttribute("data-testid"))!.slice("task-card-".length);
    await page.keyboard.press("Enter");
    await page.locator(`[data-testid="task-detail"]`).waitFor();
    assert.match(page.url(), new RegExp(`[?&]task=${chosen}\\b`));

    await byId("nav-agents").click();
    await withData("agents-summary", { count: SCALE_AGENTS }).waitFor();
    const nodes = await rendered("agent-node-");
    assert.ok(nodes < 200, `${nodes} agent rows in the page for ${SCALE_AGENTS} agents: the tree is not virtualised`);
    await page.screenshot({ path: join(ARTIFACTS, "scale-agents.png") });
    // Scrolled to the end, the first tree's rows are gone from the page and the last ones are there.
    const [first, last] = [seeded.roots[0]!, seeded.roots.at(-1)!];
    await byId(`agent-node-${first.id}`).waitFor();
    await byId("agents-tree").evaluate((list) => list.scrollTo({ top: list.scrollHeight }));
    await byId(`agent-node-${first.id}`).waitFor({ state: "detached" });
    const bottom = await page.locator('[data-testid^="agent-node-"]').last().getAttribute("data-testid");
    const lastLeaves = (await colony!.agents.list({ parentId: last.id })).map((a) => `agent-node-${a.id}`);
    assert.ok(lastLeaves.includes(bottom!), `the last row, ${bottom}, is one of the last tree's leaves`);
    // And a search finds one agent among the 500.
    await byId("agents-search").fill(last.id);
    await byId(`agent-node-${last.id}`).waitFor();

    const longTasks = await page.evaluate(() => (globalThis as unknown as { longTasks: number[] }).longTasks);
    const figures = { tasks: SCALE.tasks + SCALE.burst, agents: SCALE_AGENTS, cardsInPage: cards, agentRowsInPage: nodes, longTasks: longTasks.length, longestTaskMs: Math.round(Math.max(0, ...longTasks)) };
    writeFileSync(join(ARTIFACTS, "scale.json"), `${JSON.stringify(figures, null, 2)}\n`);
    assert.deepEqual(problems, []);
  });

  const withData = (id: string, data: Record<string, string | number>) => withDataOn(page, id, data);
});
