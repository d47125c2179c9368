/**
 * `--db` pointing somewhere Colony cannot keep a database: each case is one line on stderr that
 * names the file and what is wrong with it, and exit code 2, from real `colony` processes on real
 * files. A path whose directory cannot be made must fail at once, not spin (a test timeout, not a
 * measured one, catches that).
 */
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, openSync, closeSync, readFileSync, statSync, truncateSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { runCli, type CliResult } from "./fixtures/cli.ts";
import { sqliteColony, tempDir } from "./fixtures/helpers.ts";

const AGENTS = fileURLToPath(new URL("./fixtures/worker-agents.ts", import.meta.url));
const T = { timeout: 30_000 };
/** The cases are independent processes: they run at once. */
const AT_ONCE = { concurrency: true };

const dir = tempDir("colony-db-paths-");
const children = new Set<ChildProcess>();
/** A real Colony database, with a board entry in it. */
let good: string;
/** Each run is a fresh Node: a compile cache shared by this file's runs saves most of their start-up. */
let env: NodeJS.ProcessEnv;

/** Runs the CLI to its end; `as` runs it as another user (root only). */
const colony = (args: string[], as?: { uid: number; gid: number }) => runCli(args, { cwd: dir.path, env, ...as, onSpawn: (child) => children.add(child) });

/** Exit 2 and exactly one line on stderr: `colony: database <path>: <problem>`. */
function assertRefused(result: CliResult, path: string, problem: RegExp): void {
  assert.equal(result.code, 2, result.stderr);
  const lines = result.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, result.stderr);
  const prefix = `colony: database ${path}: `;
  assert.ok(lines[0]!.startsWith(prefix), `${lines[0]} starts with ${prefix}`);
  assert.match(lines[0]!.slice(prefix.length), problem);
}

before(async () => {
  env = { ...process.env, NODE_COMPILE_CACHE: join(dir.path, "compile-cache") };
  good = join(dir.path, "good.db");
  const colony = sqliteColony(good);
  await (await colony.board("notes")).write("k", { v: 1 }, { author: "test" });
  await colony.close();
});

after(() => {
  for (const child of children) child.kill("SIGKILL");
  dir.dispose();
});

// A command that writes (submit) opens, or creates, the file; one that only reads names a missing one and creates nothing.
describe("colony --db at a place that cannot hold a database", AT_ONCE, () => {
  test("a directory under /proc that refuses new entries: refused at once, not a mkdir retried forever", { ...T, skip: !existsSync("/proc/self") && "needs Linux /proc" }, async () => {
    const path = "/proc/nope/colony.db";
    assertRefused(await colony(["submit", "k", "--db", path]), path, /^cannot create its directory \/proc\/nope: .+ \(ENOENT\)$/);
  });

  test("a file that root cannot create either (/sys)", { ...T, skip: !existsSync("/sys/kernel") && "needs Linux /sys" }, async () => {
    const path = "/sys/colony.db";
    assertRefused(await colony(["submit", "k", "--db", path]), path, /^cannot be created: permission denied \(EACCES\)$/);
  });

  test("a directory", T, async () => {
    const path = join(dir.path, "a-directory");
    mkdirSync(path);
    assertRefused(await colony(["runs", "--db", path]), path, /^is a directory; give a file path, such as .+colony\.db$/);
  });

  test("a path through a file", T, async () => {
    const file = join(dir.path, "plain.txt");
    writeFileSync(file, "text\n");
    const path = join(file, "colony.db");
    assertRefused(await colony(["submit", "k", "--db", path]), path, /^a part of the path is a file, not a directory \(ENOTDIR\)$/);
  });

  test("missing directories are still made, each in turn", T, async () => {
    const path = join(dir.path, "made", "on", "demand", "colony.db");
    const result = await colony(["submit", "k", "--db", path]);
    assert.equal(result.code, 0, result.stderr);
    assert.ok(statSync(path).isFile());
  });
});

describe("colony --db at a file that is not a usable database", AT_ONCE, () => {
  test("a text file", T, async () => {
    const path = join(dir.path, "notes.txt");
    writeFileSync(path, "these are notes, not a database\n".repeat(10));
    assertRefused(await colony(["runs", "--db", path]), path, /^is not a SQLite database; /);
    assert.equal(readFileSync(path, "utf8").length, 320, "left as it was");
  });

  test("a truncated database", T, async () => {
    const path = join(dir.path, "truncated.db");
    copyFileSync(good, path);
    truncateSync(path, 1000);
    assertRefused(await colony(["runs", "--db", path]), path, /^is damaged \(truncated or malformed: database disk image is malformed\); /);
  });

  test("a malformed database: header intact, schema page overwritten", T, async () => {
    const path = join(dir.path, "malformed.db");
    copyFileSync(good, path);
    const fd = openSync(path, "r+");
    writeSync(fd, Buffer.alloc(2000, 0x5a), 0, 2000, 100); // past the 100-byte header, into sqlite_schema
    closeSync(fd);
    assertRefused(await colony(["board", "notes", "--db", path]), path, /^is damaged \(truncated or malformed: /);
  });

  test("a read-only database (as root: opened by an unprivileged user)", T, async () => {
    const sub = join(dir.path, "read-only");
    mkdirSync(sub);
    const path = join(sub, "colony.db");
    copyFileSync(good, path);
    const root = process.getuid?.() === 0;
    // Root writes whatever the mode says; another user cannot write root's 0644 file.
    if (root) chmodSync(dir.path, 0o755);
    else {
      chmodSync(path, 0o444);
      chmodSync(sub, 0o555);
    }
    try {
      const result = await colony(["runs", "--db", path], root ? { uid: 65534, gid: 65534 } : undefined);
      assertRefused(result, path, /^is read-only; Colony writes to it and to colony\.db-wal and -shm beside it, so make both the file and its directory writable$/);
    } finally {
      if (!root) chmodSync(sub, 0o755);
    }
  });

  test("every command says the same: board, tasks, worker", T, async () => {
    const path = join(dir.path, "junk.db");
    writeFileSync(path, "junk ".repeat(200));
    const results = await Promise.all([
      colony(["board", "notes", "--db", path]),
      colony(["tasks", "--db", path]),
      colony(["worker", "--agents", AGENTS, "--db", path]),
    ]);
    for (const result of results) assertRefused(result, path, /^is not a SQLite database; /);
  });
});
