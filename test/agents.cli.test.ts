/**
 * CLI agents: a command-line program as a sub-agent. Fake CLIs (small Node scripts in
 * test/fixtures/cli) stand in for real ones: JSON-lines output and its events, the three ways
 * input reaches the command, text and JSON output, a crash, the environment allow-list, and
 * stopping — terminate, timeout, and this process exiting — with every PID of the command's
 * process group (the command and the grandchildren it started) checked to be gone.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { createColony, memoryBackend, SubAgentError, type Colony, type SubAgentContext, type SubAgentEvent, type SubAgentHandle } from "../src/index.ts";
import { CliAgentError, defineCliAgent, type CliAgentOptions } from "../src/runtime/agents/cli-agent.ts";
import { alive, collect, waitFor, within } from "./fixtures/helpers.ts";
import * as agents from "./fixtures/cli/agents.ts";
import { nodeAgent } from "./fixtures/cli/agents.ts";

const T = { timeout: 30_000 };
const AGENTS = new URL("./fixtures/cli/agents.ts", import.meta.url);

let colony: Colony;
before(() => {
  colony = createColony({ backend: memoryBackend() });
});
after(async () => {
  await colony.close();
});

function failedWith(reason: string, ...details: RegExp[]) {
  return (error: unknown) => {
    assert.ok(error instanceof SubAgentError, `a SubAgentError, got ${String(error)}`);
    assert.equal(error.reason, reason);
    for (const detail of details) assert.match(error.message, detail);
    return true;
  };
}

function cliFailure(reason: CliAgentError["reason"], check: (error: CliAgentError) => void = () => {}) {
  return (error: unknown) => {
    assert.ok(error instanceof CliAgentError, `a CliAgentError, got ${String(error)}`);
    assert.equal(error.code, "CLI_AGENT");
    assert.equal(error.reason, reason);
    check(error);
    return true;
  };
}

const emits = (events: SubAgentEvent[], name: string) => events.flatMap((e) => (e.type === "emit" && e.name === name ? [e.data] : []));
const logs = (events: SubAgentEvent[]) => events.flatMap((e) => (e.type === "log" ? [e.message] : []));

/** The PIDs the hang script reports (itself, then its two grandchildren), from the handle's events. */
async function pidsOf(handle: SubAgentHandle): Promise<number[]> {
  const found = (async () => {
    for await (const event of handle.events) {
      const data = event.type === "emit" && event.name === "cli.event" ? (event.data as { type?: string; pids?: number[] }) : undefined;
      if (data?.type === "pids") return data.pids!;
    }
    throw new Error(`${handle.name} ended without reporting its pids`);
  })();
  return within(found, `${handle.name} to report its pids`);
}

async function allGone(pids: number[]): Promise<void> {
  for (const pid of pids) await waitFor(() => !alive(pid), 5_000, `process ${pid} to be gone`);
}

/** A context for calling an agent's `run` directly, outside a colony: to see the CliAgentError itself. */
function fakeContext(input: unknown, signal = new AbortController().signal) {
  const emitted: { name: string; data: unknown }[] = [];
  const logged: string[] = [];
  const ctx = {
    input,
    signal,
    emit: (name: string, data?: unknown) => void emitted.push({ name, data }),
    log: (message: string) => void logged.push(message),
  } as unknown as SubAgentContext;
  return { ctx, emitted, logged };
}

function runDirect(agent: ReturnType<typeof defineCliAgent>, input: unknown, signal?: AbortSignal) {
  const fake = fakeContext(input, signal);
  return { ...fake, result: Promise.resolve(agent.run!(fake.ctx)) };
}

describe("CLI agents: output", () => {
  for (const isolation of ["inline", "process"] as const) {
    it(`jsonl (${isolation}): each JSON line is a cli.event, others cli.line; the result is the last event's result`, T, async () => {
      const handle = isolation === "inline" ? await colony.spawn(agents.jsonl) : await colony.spawn({ module: AGENTS, export: "jsonl" }, undefined, { isolation });
      const [events, result] = await Promise.all([collect(handle), handle.result]);
      assert.deepEqual(result, { answer: 42, argv: ["--flag"] });
      const parsed = emits(events, "cli.event") as { type: string }[];
      assert.deepEqual(parsed.map((e) => e.type), ["start", "progress", "done"]);
      assert.deepEqual(emits(events, "cli.line"), ["not json at all"]);
      assert.ok(logs(events).includes("a note on stderr"), "stderr lines go to the log");
      assert.ok(logs(events).some((m) => m.startsWith("1 line(s)")), "the lines that were not JSON are counted");
      const { pid } = parsed[0] as unknown as { pid: number };
      await allGone([pid]);
    });
  }

  it("jsonl: the last event itself when it has no result field", T, async () => {
    const agent = nodeAgent("jsonl-plain", "echo.ts", ["raw"], { output: "jsonl" });
    const handle = await colony.spawn(agent, '{"a":1}\n\n[1,2]\n');
    assert.deepEqual(await handle.result, [1, 2]);
    const none = await colony.spawn(agent, "no json here\n");
    await assert.rejects(none.result, failedWith("error", /printed no JSON line/));
  });

  it("text: every line is a cli.line; the result is all of stdout less its final newline", T, async () => {
    const handle = await colony.spawn(agents.raw, "first line\r\nsecond line\n\nlast line\n");
    const [events, result] = await Promise.all([collect(handle), handle.result]);
    assert.equal(result, "first line\r\nsecond line\n\nlast line");
    assert.deepEqual(emits(events, "cli.line"), ["first line", "second line", "", "last line"]);
    const unterminated = await colony.spawn(agents.raw, "no newline");
    assert.equal(await unterminated.result, "no newline");
  });

  it("json: stdout parsed as one document; a bad one fails with a snippet of it", T, async () => {
    const handle = await colony.spawn(nodeAgent("pretty", "echo.ts", ["raw"], { output: "json" }), '{\n  "pretty": [1, 2]\n}\n');
    assert.deepEqual(await handle.result, { pretty: [1, 2] });
    const bad = nodeAgent("bad-json", "echo.ts", ["raw"], { output: "json" });
    const failed = await colony.spawn(bad, "this is { not json");
    await assert.rejects(failed.result, failedWith("error", /stdout is not JSON/, /this is \{ not json/));
    await assert.rejects(runDirect(bad, "").result, cliFailure("output", (e) => assert.equal(e.exitCode, 0)));
  });

  it("an output past maxOutputBytes stops the command and fails with reason output", T, async () => {
    const text = "x".repeat(64 * 1024);
    const capped = nodeAgent("capped", "echo.ts", ["raw"], { maxOutputBytes: 1000 });
    await assert.rejects(runDirect(capped, text).result, cliFailure("output", (e) => assert.match(e.message, /more than 1000 bytes/)));
    // jsonl bounds each line, not the whole stream.
    const lines = nodeAgent("capped-lines", "echo.ts", ["raw"], { output: "jsonl", maxOutputBytes: 1000 });
    const many = Array.from({ length: 200 }, (_, i) => JSON.stringify({ i, pad: "y".repeat(100) })).join("\n");
    assert.deepEqual(await runDirect(lines, many).result, { i: 199, pad: "y".repeat(100) });
    await assert.rejects(runDirect(lines, JSON.stringify({ pad: text })).result, cliFailure("output", (e) => assert.match(e.message, /a line of more than 1000 bytes/)));
  });
});

describe("CLI agents: input", () => {
  it("stdin (default): a string as it is, anything else JSON-encoded", T, async () => {
    const text = await colony.spawn(agents.echoStdin, "hello\nworld");
    assert.deepEqual(await text.result, { mode: "stdin", text: "hello\nworld" });
    const object = await colony.spawn(agents.echoStdin, { task: "fix it", n: [1, 2] });
    assert.deepEqual(await object.result, { mode: "stdin", text: '{"task":"fix it","n":[1,2]}' });
    const none = await colony.spawn(agents.echoStdin);
    assert.deepEqual(await none.result, { mode: "stdin", text: "" });
  });

  it("stdin, in a process child spawned by reference", T, async () => {
    const handle = await colony.spawn({ module: AGENTS, export: "echoStdin" }, { via: "process" }, { isolation: "process" });
    assert.deepEqual(await handle.result, { mode: "stdin", text: '{"via":"process"}' });
  });

  it("arg: {input} in args is replaced, with no shell in between", T, async () => {
    const input = "it's $HOME; `rm -rf /` && echo \"quoted\"";
    const handle = await colony.spawn(agents.echoArg, input);
    assert.deepEqual(await handle.result, { mode: "arg", text: input });
    const inside = nodeAgent("echo-arg-inside", "echo.ts", ["arg", "--prompt={input}!"], { input: "arg", output: "json" });
    assert.deepEqual(await (await colony.spawn(inside, { a: 1 })).result, { mode: "arg", text: '--prompt={"a":1}!' });
  });

  it("file: {file} is a private temporary file holding the input, removed afterwards", T, async () => {
    const handle = await colony.spawn(agents.echoFile, { long: "z".repeat(10_000) });
    const result = (await handle.result) as { mode: string; text: string; file: string };
    assert.equal(result.mode, "file");
    assert.deepEqual(JSON.parse(result.text), { long: "z".repeat(10_000) });
    assert.ok(result.file.startsWith(tmpdir()), `${result.file} is under the temporary directory`);
    assert.ok(!existsSync(dirname(result.file)), "the temporary directory is removed");
  });

  it("file: removed also when the command fails", T, async () => {
    const failing = nodeAgent("file-then-fail", "echo.ts", ["file-then-fail", "{file}"], { input: "file" });
    const run = runDirect(failing, "secret");
    await assert.rejects(run.result, cliFailure("exit", (e) => assert.equal(e.exitCode, 1)));
    const { file } = JSON.parse(run.emitted.find((e) => e.name === "cli.line")!.data as string) as { file: string };
    assert.ok(file.startsWith(tmpdir()));
    assert.ok(!existsSync(dirname(file)), "the temporary directory is removed");
  });

  it("cwd: the command runs there", T, async () => {
    const dir = tmpdir();
    assert.equal(await (await colony.spawn(nodeAgent("cwd", "echo.ts", ["cwd"], { cwd: dir, output: "json" }))).result, dir);
  });
});

describe("CLI agents: failures", () => {
  it("a non-zero exit fails the agent with the exit code and the stderr tail", T, async () => {
    const handle = await colony.spawn(agents.crash);
    const [events] = await Promise.all([collect(handle), assert.rejects(handle.result, failedWith("error", /exited with code 3/, /the model is on fire/))]);
    assert.deepEqual(logs(events).slice(0, 2), ["working...", "fatal: the model is on fire"]);
    assert.deepEqual(emits(events, "cli.line"), ["partial output"]);
  });

  it("a non-zero exit in a process child", T, async () => {
    const handle = await colony.spawn({ module: AGENTS, export: "crash" }, undefined, { isolation: "process" });
    await assert.rejects(handle.result, failedWith("error", /exited with code 3/, /the model is on fire/));
  });

  it("CliAgentError carries the command, exit code, signal, reason and stderr tail", T, async () => {
    await assert.rejects(
      runDirect(agents.crash, "").result,
      cliFailure("exit", (e) => {
        assert.equal(e.command, process.execPath);
        assert.equal(e.exitCode, 3);
        assert.equal(e.signal, null);
        assert.equal(e.stderrTail, "working...\nfatal: the model is on fire\n");
      }),
    );
    const noisy = nodeAgent("noisy", "echo.ts", ["nonsense-mode"]);
    await assert.rejects(runDirect(noisy, "").result, cliFailure("exit", (e) => assert.equal(e.exitCode, 2)));
  });

  it("a command that cannot be started fails with reason spawn", T, async () => {
    const missing = defineCliAgent({ name: "missing", command: "colony-no-such-command-here" });
    await assert.rejects(runDirect(missing, "").result, cliFailure("spawn", (e) => assert.match(e.message, /ENOENT/)));
    const handle = await colony.spawn(missing);
    await assert.rejects(handle.result, failedWith("error", /could not start colony-no-such-command-here/));
    const badCwd = nodeAgent("bad-cwd", "echo.ts", ["cwd"], { cwd: `${tmpdir()}/colony-no-such-dir-here` });
    await assert.rejects(runDirect(badCwd, "").result, cliFailure("spawn"));
  });

  it("options are checked up front: a ConfigError naming the field", () => {
    const base: CliAgentOptions = { name: "ok", command: "true" };
    const cases: [Partial<CliAgentOptions> | Record<string, unknown>, RegExp][] = [
      [{ name: "" }, /name/],
      [{ command: "" }, /command/],
      [{ command: 7 }, /command/],
      [{ args: ["a", 1] }, /args\[1\]/],
      [{ input: "pipe" }, /input/],
      [{ input: "arg", args: ["x"] }, /args must hold "\{input\}"/],
      [{ input: "file", args: ["{input}"] }, /args must hold "\{file\}"/],
      [{ env: ["A=B"] }, /env\[0\]/],
      [{ setEnv: { K: 1 } }, /setEnv\.K/],
      [{ timeoutMs: 0 }, /timeoutMs/],
      [{ timeoutMs: -5 }, /timeoutMs/],
      [{ graceMs: Number.NaN }, /graceMs/],
      [{ output: "yaml" }, /output/],
      [{ maxOutputBytes: 0 }, /maxOutputBytes/],
      [{ delivery: "later" }, /delivery/],
      [{ budget: { tokens: -1 } }, /budget\.tokens/],
      [{ tools: "all" }, /tools/],
    ];
    for (const [patch, field] of cases) {
      assert.throws(() => defineCliAgent({ ...base, ...patch } as CliAgentOptions), (error: unknown) => {
        assert.equal((error as { code?: string }).code, "CONFIG", `${JSON.stringify(patch)} is refused as CONFIG`);
        assert.match((error as Error).message, field);
        return true;
      });
    }
    const agent = defineCliAgent({ ...base, delivery: "deferred", budget: { tokens: 10 }, tools: ["shell"] });
    assert.deepEqual([agent.name, agent.delivery, agent.budget, agent.tools], ["ok", "deferred", { tokens: 10 }, ["shell"]]);
  });
});

describe("CLI agents: environment", () => {
  it("only the variables named (with this process's values) and setEnv reach the command", T, async () => {
    process.env.COLONY_CLI_SECRET = "do-not-leak";
    process.env.COLONY_CLI_SHARED = "shared-value";
    try {
      const listed = nodeAgent("env-listed", "echo.ts", ["env"], { output: "json", env: ["PATH", "COLONY_CLI_SHARED"], setEnv: { COLONY_CLI_FIXED: "fixed" } });
      const env = (await (await colony.spawn(listed)).result) as Record<string, string>;
      assert.equal(env.COLONY_CLI_SECRET, undefined);
      assert.equal(env.COLONY_CLI_SHARED, "shared-value");
      assert.equal(env.COLONY_CLI_FIXED, "fixed");
      assert.deepEqual(Object.keys(env).sort(), ["COLONY_CLI_FIXED", "COLONY_CLI_SHARED", "PATH"]);

      const defaults = (await (await colony.spawn(nodeAgent("env-default", "echo.ts", ["env"], { output: "json" }))).result) as Record<string, string>;
      assert.equal(defaults.COLONY_CLI_SECRET, undefined);
      assert.equal(defaults.COLONY_CLI_SHARED, undefined);
      for (const name of Object.keys(defaults)) assert.ok(["PATH", "HOME", "LANG", "TZ", "TMPDIR"].includes(name), `${name} is in the default list`);
    } finally {
      delete process.env.COLONY_CLI_SECRET;
      delete process.env.COLONY_CLI_SHARED;
    }
  });
});

describe("CLI agents: stopping leaves no process behind", () => {
  it("terminate (inline): the command and its grandchildren are gone", T, async () => {
    const handle = await colony.spawn(agents.hang);
    const pids = await pidsOf(handle);
    assert.equal(pids.length, 3);
    for (const pid of pids) assert.ok(alive(pid), `process ${pid} runs before the terminate`);
    await handle.terminate({ graceMs: 10_000 });
    assert.equal(handle.state, "terminated");
    await assert.rejects(handle.result, failedWith("terminated"));
    await allGone(pids);
  });

  it("terminate (process child): grandchildren that ignore SIGTERM and hold stdout are killed with the group", T, async () => {
    const handle = await colony.spawn({ module: AGENTS, export: "hangStubbornChildren" }, undefined, { isolation: "process" });
    const pids = await pidsOf(handle);
    for (const pid of pids) assert.ok(alive(pid), `process ${pid} runs before the terminate`);
    await handle.terminate({ graceMs: 10_000 });
    await assert.rejects(handle.result, failedWith("terminated"));
    await allGone(pids);
  });

  it("timeoutMs: SIGTERM ignored, SIGKILL after graceMs, reason timeout", T, async () => {
    const handle = await colony.spawn(agents.hangTimeout);
    const [events] = await Promise.all([collect(handle), assert.rejects(handle.result, failedWith("error", /timed out after 3000 ms/, /process group was killed/))]);
    const pids = (emits(events, "cli.event") as { pids: number[] }[])[0]!.pids;
    await allGone(pids);
    // The error itself says which limit it was.
    const direct = runDirect(agents.hangTimeout, "");
    await assert.rejects(
      direct.result,
      cliFailure("timeout", (e) => {
        assert.equal(e.signal, "SIGKILL");
        assert.equal(e.exitCode, null);
      }),
    );
    await allGone((direct.emitted.find((e) => e.name === "cli.event")!.data as { pids: number[] }).pids);
  });

  it("timeoutMs in a process child", T, async () => {
    const handle = await colony.spawn({ module: AGENTS, export: "hangTimeout" }, undefined, { isolation: "process" });
    const pids = await pidsOf(handle);
    await assert.rejects(handle.result, failedWith("error", /timed out after 3000 ms/));
    await allGone(pids);
  });

  it("an aborted signal: SIGTERM, then SIGKILL once graceMs has passed; the run settles after the group is gone", T, async () => {
    const stubborn = nodeAgent("stubborn", "hang.ts", ["--stubborn", "--stubborn-children"], { output: "jsonl", graceMs: 200 });
    const controller = new AbortController();
    const run = runDirect(stubborn, "", controller.signal);
    const event = await waitFor(() => run.emitted.find((e) => e.name === "cli.event"), 10_000, "the pids");
    const pids = (event.data as { pids: number[] }).pids;
    controller.abort("terminated");
    await assert.rejects(run.result, cliFailure("aborted", (e) => assert.equal(e.signal, "SIGKILL")));
    assert.ok(!alive(pids[0]!), "the leader has exited when the run settles");
    await allGone(pids);
  });

  for (const flags of [["--exit"], ["--exit", "--stubborn-children"]]) {
    it(`a command that ends leaving processes in its group: they are killed (${flags.join(" ")})`, T, async () => {
      const leaky = nodeAgent("leaky", "hang.ts", flags, { output: "jsonl", graceMs: 300 });
      const handle = await colony.spawn(leaky);
      const { pids } = (await handle.result) as { pids: number[] };
      assert.equal(pids.length, 3);
      await allGone(pids);
    });
  }

  it("this process exiting while a command runs kills its group", T, async () => {
    // A Node process that runs the hang agent, prints the pids it reports, and exits at once.
    const code = `
      const { hang } = await import(${JSON.stringify(AGENTS.href)});
      const ctx = {
        input: "", signal: new AbortController().signal, log() {},
        emit(name, data) { if (data?.type === "pids") { console.log(JSON.stringify(data.pids)); process.exit(0); } },
      };
      await hang.run(ctx);`;
    const { stdout } = await promisify(execFile)(process.execPath, ["--input-type=module", "-e", code], { timeout: 20_000 });
    const pids = JSON.parse(stdout) as number[];
    assert.equal(pids.length, 3);
    await allGone(pids);
  });
});
