/**
 * A command-line program as a sub-agent: `defineCliAgent` wraps a CLI (a coding agent, a script,
 * any executable) in a `run` agent. The agent's input reaches the command on stdin, as an
 * argument or in a temporary file; its stdout is streamed line by line as events and becomes the
 * result (text, one JSON document, or the last of a stream of JSON lines); its stderr goes to
 * the agent's log. The command leads its own process group, and that whole group is what gets
 * stopped: on terminate, timeout, an oversized output, and when the command has ended (whatever
 * it left running in its group goes with it), so a CLI's own children are never left behind.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { StringDecoder } from "node:string_decoder";
import { CliAgentError, ConfigError, describeError, quote, type CliAgentFailure } from "../../core/errors.ts";
import { checkBudget } from "../../core/governance.ts";
import { nameProblem } from "../../core/json.ts";
import type { Budget, DeliveryPolicy, SubAgent, SubAgentContext } from "../../core/subagent-types.ts";
import { checkDuration, longTimeout } from "../../core/timers.ts";

export interface CliAgentOptions {
  name: string;
  /** The executable, looked up on the child's PATH unless it is a path. */
  command: string;
  /** Its arguments; `"{input}"` (input `"arg"`) or `"{file}"` (input `"file"`) in them is replaced, also inside a longer argument. */
  args?: string[];
  /**
   * How the agent's input (a string as it is; anything else JSON-encoded; none as "") reaches the
   * command: written to its stdin, which is then closed (default); put in place of `{input}` in
   * `args`; or written to a file in a private temporary directory, removed afterwards, whose path
   * takes the place of `{file}` in `args`.
   */
  input?: "stdin" | "arg" | "file";
  cwd?: string;
  /**
   * The environment variables the command gets, by name, with this process's values; no others.
   * Default `["PATH", "HOME", "LANG", "TZ", "TMPDIR"]`. (In a thread or process sub-agent, this
   * process's own environment is already only what its spawn allowed.)
   */
  env?: string[];
  /** Variables set to fixed values, on top of `env`. */
  setEnv?: Record<string, string>;
  /** Stops the command (its whole process group) and fails with `CliAgentError` reason `timeout`. */
  timeoutMs?: number;
  /**
   * What stdout means: `"text"` (default; each line is emitted as `cli.line`, the result is all of
   * it less its final newline), `"json"` (one JSON document, the result) or `"jsonl"` (each line a
   * JSON value, emitted as `cli.event`; the result is the last one, or its `result` field when it
   * is an object that has one; a line that is not JSON is emitted as `cli.line` and counted).
   */
  output?: "text" | "json" | "jsonl";
  /** How long a stopped command gets between SIGTERM and SIGKILL to its group. Default 2000. */
  graceMs?: number;
  /**
   * The most stdout kept, in bytes (for `"jsonl"`: the longest line); past it the command is
   * stopped and the agent fails with reason `output`. Default 16 MiB.
   */
  maxOutputBytes?: number;
  delivery?: DeliveryPolicy;
  budget?: Budget;
  tools?: string[];
}

// The error lives with the others, so that a host rebuilds it without loading this module.
export { CliAgentError, type CliAgentFailure };

export const DEFAULT_CLI_ENV: readonly string[] = ["PATH", "HOME", "LANG", "TZ", "TMPDIR"];
const DEFAULT_GRACE_MS = 2000;
const DEFAULT_MAX_OUTPUT_BYTES = 16 * 1024 * 1024;
const STDERR_TAIL_CHARS = 2048;
/** A stderr line longer than this is logged in pieces of it, so one log event stays small. */
const MAX_LOG_LINE_CHARS = 4096;
const INPUTS = ["stdin", "arg", "file"] as const;
const OUTPUTS = ["text", "json", "jsonl"] as const;
const POLICIES: readonly DeliveryPolicy[] = ["streaming", "immediate", "deferred", "on_demand"];
const ENV_NAME = /^[^=\0]+$/;

interface Settings {
  name: string;
  command: string;
  args: string[];
  input: "stdin" | "arg" | "file";
  cwd: string | undefined;
  env: Record<string, string>;
  envNames: string[];
  timeoutMs: number | undefined;
  output: "text" | "json" | "jsonl";
  graceMs: number;
  maxOutputBytes: number;
}

function fail(field: string, problem: string): never {
  throw new ConfigError(`defineCliAgent: ${field} ${problem}`);
}

function checkText(value: unknown, field: string): string {
  if (typeof value !== "string" || value === "") fail(field, `is a non-empty string, got ${value === "" ? '""' : typeof value}`);
  if (value.includes("\0")) fail(field, `holds a NUL character: ${quote(value)}`);
  return value;
}

function checkStrings(value: unknown, field: string, check: (item: unknown, field: string) => string): string[] {
  if (!Array.isArray(value)) fail(field, `is an array of strings, got ${typeof value}`);
  return value.map((item, i) => check(item, `${field}[${i}]`));
}

function checkArg(item: unknown, field: string): string {
  if (typeof item !== "string") fail(field, `is a string, got ${typeof item}`);
  if (item.includes("\0")) fail(field, `holds a NUL character: ${quote(item)}`);
  return item;
}

function checkEnvName(item: unknown, field: string): string {
  if (typeof item !== "string" || !ENV_NAME.test(item)) fail(field, `is an environment variable name (no "=" or NUL), got ${quote(String(item))}`);
  return item;
}

function checkOptions(options: CliAgentOptions): Settings {
  if (typeof options !== "object" || options === null) throw new ConfigError("defineCliAgent takes an options object");
  const name = options.name as unknown;
  if (typeof name !== "string") fail("name", `is a string, got ${typeof name}`);
  const problem = nameProblem(name, 256, "name");
  if (problem !== undefined) fail("name", `${quote(name)}: ${problem}`);
  const command = checkText(options.command, "command");
  const args = options.args === undefined ? [] : checkStrings(options.args, "args", checkArg);
  const input = options.input ?? "stdin";
  if (!INPUTS.includes(input)) fail("input", `is one of ${INPUTS.join(", ")}, got ${quote(String(input))}`);
  const placeholder = input === "arg" ? "{input}" : input === "file" ? "{file}" : undefined;
  if (placeholder !== undefined && !args.some((a) => a.includes(placeholder))) {
    fail("args", `must hold "${placeholder}" somewhere when input is "${input}": that is where the input goes`);
  }
  const cwd = options.cwd === undefined ? undefined : checkText(options.cwd, "cwd");
  const envNames = options.env === undefined ? [...DEFAULT_CLI_ENV] : checkStrings(options.env, "env", checkEnvName);
  const fixed: Record<string, string> = {};
  if (options.setEnv !== undefined) {
    if (typeof options.setEnv !== "object" || options.setEnv === null || Array.isArray(options.setEnv)) fail("setEnv", "is an object of names to string values");
    for (const [key, value] of Object.entries(options.setEnv)) {
      checkEnvName(key, "setEnv");
      if (typeof value !== "string" || value.includes("\0")) fail(`setEnv.${key}`, `is a string with no NUL character, got ${typeof value}`);
      fixed[key] = value;
    }
  }
  const timeoutMs = options.timeoutMs === undefined ? undefined : checkDuration(options.timeoutMs, "defineCliAgent: timeoutMs", { positive: true });
  const output = options.output ?? "text";
  if (!OUTPUTS.includes(output)) fail("output", `is one of ${OUTPUTS.join(", ")}, got ${quote(String(output))}`);
  const graceMs = options.graceMs === undefined ? DEFAULT_GRACE_MS : checkDuration(options.graceMs, "defineCliAgent: graceMs");
  const maxOutputBytes = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
  if (typeof maxOutputBytes !== "number" || !Number.isSafeInteger(maxOutputBytes) || maxOutputBytes < 1) {
    fail("maxOutputBytes", `is a whole number of bytes >= 1, got ${String(maxOutputBytes)}`);
  }
  if (options.delivery !== undefined && !POLICIES.includes(options.delivery)) {
    fail("delivery", `is one of ${POLICIES.join(", ")}, got ${quote(String(options.delivery))}`);
  }
  if (options.budget !== undefined) checkBudget(options.budget, `defineCliAgent ${name}`);
  if (options.tools !== undefined) checkStrings(options.tools, "tools", checkArg);
  return { name, command, args, input, cwd, env: fixed, envNames, timeoutMs, output, graceMs, maxOutputBytes };
}

/** Defines a sub-agent that runs a command-line program; see `CliAgentOptions`. Throws `ConfigError` on a bad option. */
export function defineCliAgent(options: CliAgentOptions): SubAgent<string | unknown, unknown> {
  const settings = checkOptions(options);
  return {
    name: settings.name,
    run: (ctx) => runCli(settings, ctx),
    ...(options.delivery !== undefined && { delivery: options.delivery }),
    ...(options.budget !== undefined && { budget: { ...options.budget } }),
    ...(options.tools !== undefined && { tools: [...options.tools] }),
  };
}

function inputText(input: unknown): string {
  if (typeof input === "string") return input;
  if (input === undefined) return "";
  return JSON.stringify(input) ?? "";
}

function substitute(args: readonly string[], placeholder: string, value: string): string[] {
  return args.map((arg) => arg.split(placeholder).join(value));
}

async function runCli(settings: Settings, ctx: SubAgentContext): Promise<unknown> {
  const input = inputText(ctx.input);
  if (settings.input === "stdin") return execute(settings, settings.args, input, ctx);
  if (settings.input === "arg") return execute(settings, substitute(settings.args, "{input}", input), undefined, ctx);
  // A directory only this user can enter (mkdtemp makes it 0700), so nobody else reads the input.
  const dir = await mkdtemp(join(tmpdir(), "colony-cli-"));
  try {
    const file = join(dir, "input");
    await writeFile(file, input, { mode: 0o600 });
    return await execute(settings, substitute(settings.args, "{file}", file), undefined, ctx);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Process groups

/** Groups of commands still running, killed if this process exits before they end. */
const liveGroups = new Set<number>();

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch (error) {
    // ESRCH: nobody is left in the group. EPERM: a member changed user (setuid); nothing to do.
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== "ESRCH" && code !== "EPERM") throw error;
  }
}

function killLiveGroups(): void {
  for (const pid of liveGroups) killGroup(pid, "SIGKILL");
}

function track(pid: number): void {
  if (liveGroups.size === 0) process.on("exit", killLiveGroups);
  liveGroups.add(pid);
}

function untrack(pid: number): void {
  if (!liveGroups.delete(pid)) return;
  if (liveGroups.size === 0) process.off("exit", killLiveGroups);
}

// ---------------------------------------------------------------------------------------------
// One run of the command

/** Splits decoded text into lines (without their `\n` or `\r\n`); the last, unfinished one is kept. */
class Lines {
  #partial = "";
  readonly #decoder = new StringDecoder("utf8");

  /** Passes each complete line to `line`; an unfinished one longer than `maxPartial` is passed in pieces of that. */
  push(chunk: Buffer, line: (text: string) => void, maxPartial = Infinity): void {
    this.#split(this.#partial + this.#decoder.write(chunk), line);
    while (this.#partial.length > maxPartial) {
      line(this.#partial.slice(0, maxPartial));
      this.#partial = this.#partial.slice(maxPartial);
    }
  }

  end(line: (text: string) => void): void {
    this.#split(this.#partial + this.#decoder.end(), line);
    if (this.#partial !== "") line(this.#partial);
    this.#partial = "";
  }

  #split(text: string, line: (text: string) => void): void {
    let start = 0;
    for (let end = text.indexOf("\n"); end !== -1; end = text.indexOf("\n", start)) {
      line(text.slice(start, end > start && text[end - 1] === "\r" ? end - 1 : end));
      start = end + 1;
    }
    this.#partial = text.slice(start);
  }
}

type Stop = { why: "aborted"; detail: string } | { why: "timeout" } | { why: "output"; detail: string };

function execute(settings: Settings, args: string[], stdin: string | undefined, ctx: SubAgentContext): Promise<unknown> {
  const { command, name, output } = settings;
  const env: Record<string, string> = {};
  for (const key of settings.envNames) {
    const value = process.env[key];
    if (value !== undefined) env[key] = value;
  }
  Object.assign(env, settings.env);

  let stderrTail = "";
  const failure = (message: string, reason: CliAgentFailure, exit: { code: number | null; signal: string | null } = { code: null, signal: null }, cause?: unknown) =>
    new CliAgentError(`cli agent ${name}: ${message}`, { command, exitCode: exit.code, signal: exit.signal, reason, stderrTail }, cause === undefined ? undefined : { cause });

  if (ctx.signal.aborted) return Promise.reject(failure(`stopped before ${command} started (${String(ctx.signal.reason)})`, "aborted"));

  let child: ChildProcessWithoutNullStreams;
  try {
    child = spawn(command, args, { detached: true, stdio: ["pipe", "pipe", "pipe"], env, ...(settings.cwd !== undefined && { cwd: settings.cwd }) });
  } catch (error) {
    return Promise.reject(failure(`could not start ${command}: ${describeError(error)}`, "spawn", undefined, error));
  }

  return new Promise<unknown>((resolve, reject) => {
    let stop: Stop | undefined;
    let exited = false;
    let settled = false;
    // Undefined when the command could not be started; the child's "error" says why.
    const pid = child.pid;
    if (pid !== undefined) track(pid);
    let graceDeadline = 0;
    const cancels: (() => void)[] = [];

    // --- stdout
    let stdoutBytes = 0;
    // Once past the bound, stdout is read and dropped, whatever else is stopping the command.
    let overflowed = false;
    const collected: string[] = [];
    const stdoutLines = new Lines();
    const textDecoder = new StringDecoder("utf8");
    let events = 0;
    let last: unknown;
    let unparsed = 0;
    const overflow = (detail: string) => {
      overflowed = true;
      halt({ why: "output", detail });
    };
    const onLine = (line: string): void => {
      if (overflowed) return;
      if (output === "text") ctx.emit("cli.line", line);
      else if (line.trim() !== "") {
        let event: unknown;
        try {
          event = JSON.parse(line);
        } catch {
          unparsed++;
          ctx.emit("cli.line", line);
          return;
        }
        events++;
        last = event;
        ctx.emit("cli.event", event);
      }
    };
    child.stdout.on("data", (chunk: Buffer) => {
      if (overflowed) return;
      if (output === "jsonl") {
        // Only the current line is held, so what is bounded is the longest line.
        const newline = chunk.lastIndexOf(0x0a);
        stdoutBytes = newline === -1 ? stdoutBytes + chunk.length : chunk.length - newline - 1;
        if (stdoutBytes > settings.maxOutputBytes) return overflow(`${command} printed a line of more than ${settings.maxOutputBytes} bytes to stdout`);
        stdoutLines.push(chunk, onLine);
        return;
      }
      stdoutBytes += chunk.length;
      if (stdoutBytes > settings.maxOutputBytes) return overflow(`${command} printed more than ${settings.maxOutputBytes} bytes to stdout`);
      if (output === "text") stdoutLines.push(chunk, onLine);
      collected.push(textDecoder.write(chunk));
    });

    // --- stderr
    const stderrLines = new Lines();
    const stderrDecoder = new StringDecoder("utf8");
    const onStderrLine = (line: string) => ctx.log(line);
    child.stderr.on("data", (chunk: Buffer) => {
      stderrTail = (stderrTail + stderrDecoder.write(chunk)).slice(-STDERR_TAIL_CHARS);
      stderrLines.push(chunk, onStderrLine, MAX_LOG_LINE_CHARS);
    });

    const closed = (stream: NodeJS.ReadableStream) => new Promise<void>((done) => stream.once("close", () => done()));
    const streamsClosed = Promise.all([closed(child.stdout), closed(child.stderr)]);

    // A command that does not read its stdin (or exits first) makes writing it fail with EPIPE.
    child.stdin.on("error", () => {});
    child.stdin.end(stdin);

    // --- stopping
    function halt(next: Stop): void {
      if (stop !== undefined || settled) return;
      stop = next;
      if (pid === undefined) return;
      if (exited) {
        // The leader is gone; what it left in its group goes now.
        killGroup(pid, "SIGKILL");
        return;
      }
      killGroup(pid, "SIGTERM");
      graceDeadline = Date.now() + settings.graceMs;
      const group = pid;
      cancels.push(longTimeout(() => killGroup(group, "SIGKILL"), settings.graceMs));
    }
    const onAbort = () => halt({ why: "aborted", detail: String(ctx.signal.reason) });

    const finish = (outcome: { ok: true; value: unknown } | { ok: false; error: Error }) => {
      if (settled) return;
      settled = true;
      for (const cancel of cancels) cancel();
      ctx.signal.removeEventListener("abort", onAbort);
      if (pid !== undefined) untrack(pid);
      if (outcome.ok) resolve(outcome.value);
      else reject(outcome.error);
    };

    child.on("error", (error) => {
      // Only a failed start reports here: signals go to the group by process.kill, not child.kill.
      if (pid === undefined) finish({ ok: false, error: failure(`could not start ${command}: ${error.message}`, "spawn", undefined, error) });
    });
    if (pid !== undefined) {
      ctx.signal.addEventListener("abort", onAbort, { once: true });
      if (settings.timeoutMs !== undefined) cancels.push(longTimeout(() => halt({ why: "timeout" }), settings.timeoutMs));
    }

    child.once("exit", (code, signal) => {
      exited = true;
      void (async () => {
        // Output still in the pipes, or pipes held open by what the leader left in its group: wait
        // for them to close, but not past the grace period.
        const group = pid!;
        const waitMs = stop === undefined ? settings.graceMs : Math.max(0, graceDeadline - Date.now());
        let timer: NodeJS.Timeout | undefined;
        const drained = await Promise.race([
          streamsClosed.then(() => true),
          new Promise<false>((done) => (timer = setTimeout(() => done(false), waitMs))),
        ]);
        clearTimeout(timer);
        // Nothing of the command outlives it: whatever is left in its group is killed.
        killGroup(group, "SIGKILL");
        if (!drained) {
          child.stdout.destroy();
          child.stderr.destroy();
        }
        stderrLines.end(onStderrLine);
        stderrTail = (stderrTail + stderrDecoder.end()).slice(-STDERR_TAIL_CHARS);
        finish(outcome(code, signal));
      })().catch((error: unknown) => finish({ ok: false, error: error instanceof Error ? error : new Error(String(error)) }));
    });

    function outcome(code: number | null, signal: NodeJS.Signals | null): { ok: true; value: unknown } | { ok: false; error: Error } {
      const exit = { code, signal };
      const stderrNote = stderrTail.trim() === "" ? "" : `; stderr: ${stderrTail.trim()}`;
      switch (stop?.why) {
        case "timeout":
          return { ok: false, error: failure(`${command} timed out after ${settings.timeoutMs} ms; its process group was killed${stderrNote}`, "timeout", exit) };
        case "aborted":
          return { ok: false, error: failure(`${command} was stopped (${stop.detail}); its process group was killed`, "aborted", exit) };
        case "output":
          return { ok: false, error: failure(`${stop.detail}; its process group was killed`, "output", exit) };
      }
      if (code !== 0) {
        const how = signal !== null ? `was killed by ${signal}` : `exited with code ${code}`;
        return { ok: false, error: failure(`${command} ${how}${stderrNote}`, "exit", exit) };
      }
      if (output === "jsonl") {
        stdoutLines.end(onLine);
        if (unparsed > 0) ctx.log(`${unparsed} line(s) of ${command}'s stdout were not JSON; emitted as cli.line`);
        if (events === 0) return { ok: false, error: failure(`${command} printed no JSON line`, "output", exit) };
        const withResult = typeof last === "object" && last !== null && !Array.isArray(last) && Object.hasOwn(last, "result");
        return { ok: true, value: withResult ? (last as { result: unknown }).result : last };
      }
      if (output === "text") stdoutLines.end(onLine);
      collected.push(textDecoder.end());
      const text = collected.join("");
      if (output === "text") return { ok: true, value: text.endsWith("\r\n") ? text.slice(0, -2) : text.endsWith("\n") ? text.slice(0, -1) : text };
      try {
        return { ok: true, value: JSON.parse(text) };
      } catch (error) {
        return { ok: false, error: failure(`${command}'s stdout is not JSON (${describeError(error)}): ${quote(text, 200)}`, "output", exit, error) };
      }
    }
  });
}
