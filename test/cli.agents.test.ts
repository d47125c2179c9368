import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import type { AgentRecord } from "../src/index.ts";
import { runCliSync } from "./fixtures/cli.ts";

const OWNER = fileURLToPath(new URL("./fixtures/agents-owner.ts", import.meta.url));

let dir: string;
let db: string;
let owner: ChildProcess;
let ownerErr = "";
let ids: { process: string; inline: string };

const colony = (...args: string[]) => runCliSync(args, { cwd: dir, timeoutMs: 15_000 });

function list(...args: string[]): AgentRecord[] {
  const result = colony("agents", "--db", db, "--json", ...args);
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout) as AgentRecord[];
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function gone(pid: number, withinMs: number): Promise<boolean> {
  for (const until = Date.now() + withinMs; Date.now() < until; ) {
    if (!alive(pid)) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return !alive(pid);
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "colony-cli-agents-"));
  db = join(dir, "agents.db");
  owner = spawn(process.execPath, [OWNER, db], { stdio: ["ignore", "pipe", "pipe"] });
  owner.stderr!.setEncoding("utf8").on("data", (chunk: string) => (ownerErr += chunk));
  const lines = createInterface({ input: owner.stdout! });
  const first = await Promise.race([
    once(lines, "line").then(([line]) => line as string),
    once(owner, "exit").then(([code]) => Promise.reject(new Error(`the owner exited with ${String(code)}: ${ownerErr}`))),
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`the owner printed no ids within 10 s: ${ownerErr}`)), 10_000).unref()),
  ]);
  ids = JSON.parse(first) as typeof ids;
});

after(async () => {
  if (owner.exitCode === null && owner.signalCode === null) {
    const exited = once(owner, "exit");
    owner.kill("SIGTERM");
    const timer = setTimeout(() => owner.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(timer);
  }
  rmSync(dir, { recursive: true, force: true });
});

describe("colony agents", () => {
  test("lists the agents of another process, running, with the process child's pid", () => {
    const agents = list();
    const proc = agents.find((a) => a.id === ids.process);
    const inline = agents.find((a) => a.id === ids.inline);
    assert.ok(proc && inline, JSON.stringify(agents));
    assert.equal(proc.state, "running");
    assert.equal(proc.isolation, "process");
    assert.equal(proc.name, "proc-sleeper");
    assert.equal(typeof proc.pid, "number");
    assert.ok(alive(proc.pid!), "the process sub-agent runs");
    assert.equal(proc.ownerPid, owner.pid);
    assert.equal(inline.state, "running");
    assert.equal(inline.isolation, "inline");
    assert.equal(inline.pid, undefined);

    const text = colony("agents", "--db", db);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^ID +NAME +STATE +ISOLATION +TOKENS +COST +TIME$/m);
    assert.match(text.stdout, new RegExp(`^${ids.process} +proc-sleeper +running +process +0 +\\$0\\.00 +\\d+(ms|s|m)$`, "m"));
    assert.ok(text.stdout.split("\n").every((line) => line.length <= 80), text.stdout);
    const wide = colony("agents", "--db", db, "--wide");
    assert.match(wide.stdout, /^ID +NAME +PARENT +DEPTH +STATE +ISOLATION +PID +STARTED +ENDED +TOKENS +COST +TURNS +REASON$/m);
    assert.match(wide.stdout, new RegExp(`^${ids.process} +proc-sleeper +- +0 +running +process +${proc.pid} `, "m"));
  });

  test("--state filters, and a state that does not exist is a usage error", () => {
    assert.deepEqual(list("--state", "succeeded"), []);
    assert.ok(list("--state", "running").some((a) => a.id === ids.process));
    const bad = colony("agents", "--db", db, "--state", "sleeping");
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--state.*expected one of created, running, waiting, awaiting_approval, succeeded, failed, terminated/);
  });

  test("kill of an unknown id is exit 2 with the not-found message", () => {
    const result = colony("agents", "kill", "agent-nope", "--db", db);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /agent "agent-nope" not found/);
  });

  test("kill asks the owner, waits for the end and leaves no process behind", async () => {
    const pid = list().find((a) => a.id === ids.process)!.pid!;
    const result = colony("agents", "kill", ids.process, "--db", db);
    assert.equal(result.code, 0, `${result.stderr}\nowner: ${ownerErr}`);
    assert.match(result.stdout, new RegExp(`^${ids.process} proc-sleeper: terminated`, "m"));
    assert.match(result.stderr, /asked to terminate/);
    const proc = list().find((a) => a.id === ids.process)!;
    assert.equal(proc.state, "terminated");
    assert.equal(proc.reason, "terminated");
    assert.ok(await gone(pid, 3000), `pid ${pid} is still alive`);
    // The other agent was no descendant: it runs on.
    assert.equal(list().find((a) => a.id === ids.inline)!.state, "running");
  });

  test("kill --no-cascade --json prints the final record; a second kill is a usage error", () => {
    const result = colony("agents", "kill", ids.inline, "--no-cascade", "--json", "--db", db);
    assert.equal(result.code, 0, result.stderr);
    const record = JSON.parse(result.stdout) as AgentRecord;
    assert.equal(record.id, ids.inline);
    assert.equal(record.state, "terminated");
    const again = colony("agents", "kill", ids.inline, "--db", db);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /already ended: terminated/);
  });
});
