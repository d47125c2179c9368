/**
 * The dashboard in a real browser: Debian's chromium driven by playwright-core (no browser
 * download), against `colony.serve()` on a SQLite file that holds a board, tasks in several states
 * with dependencies, a spawn tree, a run, a worker and an approval. Each view opens and shows them;
 * a write by another process appears live; a task card opens its detail; an agent is terminated
 * from the tree; the scrubber shows an older value. A screenshot of each view is saved under
 * test-artifacts/dashboard/, and the page must log no error.
 *
 * Without chromium (CHROMIUM_PATH, /usr/bin/chromium, /usr/bin/chromium-browser) the file skips,
 * saying so; under CI it fails instead (.ci/run installs Debian's package).
 */
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import { chromium, type Browser, type Page } from "playwright-core";
import { APPROVALS_BOARD, requestApproval } from "../src/core/approvals.ts";
import essay from "../src/demo/essay.ts";
import { defineSubAgent, SubAgentError, type Colony, type ColonyServer, type SubAgentContext, type SubAgentHandle } from "../src/index.ts";
import { sqliteColony, subtree, tempDir } from "./fixtures/helpers.ts";

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
  const problems: string[] = [];

  before(async () => {
    ensureDashboardBuilt();
    mkdirSync(ARTIFACTS, { recursive: true });
    dir = tempDir("colony-dashboard-");
    db = join(dir.path, "colony.db");
    colony = sqliteColony(db);
    seeded = await seed(colony);
    server = await colony.serve({ port: 0, pollMs: 200 });
    const asRoot = process.getuid?.() === 0;
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...(asRoot ? ["--no-sandbox"] : []), "--disable-dev-shm-usage"] });
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, colorScheme: "light" });
    context.setDefaultTimeout(20_000);
    page = await context.newPage();
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(`console: ${message.text()}`);
    });
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    await page.goto(`${server.url}/#/tasks`);
  });

  after(async () => {
    await browser?.close();
    await server?.close();
    await colony?.close();
    dir?.dispose();
  });

  const byId = (id: string) => page.getByTestId(id);
  /** An element with a test id and the given data attributes, once it is there. */
  const withData = (id: string, data: Record<string, string | number>) =>
    page.locator(`[data-testid="${id}"]${Object.entries(data).map(([k, v]) => `[data-${k}="${v}"]`).join("")}`);
  const shot = (name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
  const open = async (view: string) => {
    await byId(`nav-${view}`).click();
    await byId(`view-${view}`).waitFor();
  };

  /** The board of `seed`, which the list leaves out (the server lists its runs' boards and those named through it): by its name. */
  const openNotes = async () => {
    await byId("board-name-input").fill("notes");
    await byId("board-open").click();
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
    // Listed: the boards of runs and of the server's own writes; any other opens by name.
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
