import { InvalidArgumentError, type Command } from "commander";
import { NotFoundError } from "../../core/errors.ts";
import type { UsageNode } from "../../core/agent-usage.ts";
import type { AgentRecord, AgentState } from "../../core/records.ts";
import { isFinal } from "../../core/subagent-types.ts";
import { UsageError, printJson, withExistingColony, type OutputFlags, type StoreFlags, storeOptions } from "../common.ts";
import { age, say, status, table, usd, warn } from "../format.ts";

interface AgentsFlags extends StoreFlags, OutputFlags {
  parent?: string;
  state?: AgentState;
  wide?: boolean;
  tree?: string;
}

interface KillFlags extends StoreFlags, OutputFlags {
  cascade: boolean;
}

/** Every lifecycle state; the `satisfies` keeps the list in step with the type. */
const STATES = Object.keys({
  created: true,
  running: true,
  waiting: true,
  awaiting_approval: true,
  succeeded: true,
  failed: true,
  terminated: true,
} satisfies Record<AgentState, true>) as AgentState[];

/** How long `agents kill` waits for the owner to end the agent: its poll, plus the grace period. */
const KILL_WAIT_MS = 3000;
const KILL_POLL_MS = 100;

function parseState(value: string): AgentState {
  if (!(STATES as string[]).includes(value)) throw new InvalidArgumentError(`expected one of ${STATES.join(", ")}, got ${JSON.stringify(value)}`);
  return value as AgentState;
}

const when = (at: number | undefined) => (at === undefined ? "-" : new Date(at).toISOString());

/** Parents before their children, depth first, each level in start order: the spawn tree as a list. */
function asTree(records: AgentRecord[]): AgentRecord[] {
  const ids = new Set(records.map((a) => a.id));
  const children = new Map<string | undefined, AgentRecord[]>();
  for (const a of [...records].sort((x, y) => x.startedAt - y.startedAt)) {
    const parent = a.parentId !== undefined && ids.has(a.parentId) ? a.parentId : undefined;
    children.set(parent, [...(children.get(parent) ?? []), a]);
  }
  const out: AgentRecord[] = [];
  const visit = (parent: string | undefined) => {
    for (const a of children.get(parent) ?? []) {
      out.push(a);
      visit(a.id);
    }
  };
  visit(undefined);
  return out;
}

/** How long it ran, or has been running: `1.2s`, `3m`. */
function ranFor(a: AgentRecord, now: number): string {
  return age((a.endedAt ?? now) - a.startedAt);
}

/**
 * The registry as a tree that fits 80 columns: names indented under their parents, state,
 * isolation, tokens, cost and time; long names are cut. `--wide` shows every field.
 */
function agentRows(records: AgentRecord[], now = Date.now()): string[] {
  const tree = asTree(records);
  const top = Math.min(...tree.map((a) => a.depth));
  const rows = tree.map((a) => [a.id, `${"  ".repeat(a.depth - top)}${a.name}`, status(a.state), a.isolation, String(a.usage.tokens), usd(a.usage.costUsd), ranFor(a, now)]);
  return table([["ID", "NAME", "STATE", "ISOLATION", "TOKENS", "COST", "TIME"], ...rows], { column: 1 });
}

/** What each agent of a tree spent itself and with its descendants. */
function usageRows(root: UsageNode): string[] {
  const rows: string[][] = [];
  const visit = (node: UsageNode, depth: number): void => {
    rows.push([node.id, `${"  ".repeat(depth)}${node.name}`, status(node.state), String(node.own.tokens), usd(node.own.costUsd), String(node.total.tokens), usd(node.total.costUsd), String(node.own.turns)]);
    for (const child of node.children) visit(child, depth + 1);
  };
  visit(root, 0);
  return table([["ID", "NAME", "STATE", "OWN TOKENS", "OWN COST", "TREE TOKENS", "TREE COST", "TURNS"], ...rows], { column: 1 });
}

function wideRows(records: AgentRecord[]): string[] {
  const rows = records.map((a) => [
    a.id,
    a.name,
    a.parentId ?? "-",
    String(a.depth),
    status(a.state),
    a.isolation,
    a.pid === undefined ? "-" : String(a.pid),
    when(a.startedAt),
    when(a.endedAt),
    String(a.usage.tokens),
    usd(a.usage.costUsd),
    String(a.usage.turns),
    a.reason ?? "-",
  ]);
  return table([["ID", "NAME", "PARENT", "DEPTH", "STATE", "ISOLATION", "PID", "STARTED", "ENDED", "TOKENS", "COST", "TURNS", "REASON"], ...rows]);
}

function outcome(a: AgentRecord): string {
  return `${a.state}${a.reason && a.reason !== a.state ? ` (${a.reason})` : ""}${a.error ? `: ${a.error}` : ""}`;
}

/** The agent and, when the kill cascades, its live descendants: what the kill should end. */
function targetsOf(all: AgentRecord[], id: string, cascade: boolean): Set<string> {
  const targets = new Set([id]);
  if (!cascade) return targets;
  for (let grew = true; grew; ) {
    grew = false;
    for (const a of all) {
      if (a.parentId !== undefined && targets.has(a.parentId) && !targets.has(a.id) && !isFinal(a.state)) {
        targets.add(a.id);
        grew = true;
      }
    }
  }
  return targets;
}

export function registerAgents(program: Command): void {
  const agents = storeOptions(
    program.command("agents")
    .description("list sub-agents in the registry (from every process on the store), or kill one"),
  )
    .option("--parent <id>", "only the children of this agent")
    .option("--state <state>", `only agents in this state (${STATES.join(", ")})`, parseState)
    .option("--wide", "every field: parent, depth, pid, start and end times, turns, reason")
    .option("--tree <id>", "what each agent of the tree under this agent spent: itself, and with its descendants")
    .option("--json", "print data as JSON")
    .action(async (_options: unknown, command: Command) => {
      const flags = command.optsWithGlobals<AgentsFlags>();
      await withExistingColony(flags, async (colony) => {
        if (flags.tree !== undefined) {
          const root = await colony.agents.usage(flags.tree);
          return flags.json ? printJson(root) : say(...usageRows(root));
        }
        const records = await colony.agents.list({ parentId: flags.parent, state: flags.state });
        if (flags.json) return printJson(records);
        if (records.length === 0) {
          const filter = [flags.parent && `child of ${flags.parent}`, flags.state && `${flags.state}`].filter(Boolean).join(", ");
          return say(`no agents${filter ? ` (${filter})` : ""} in ${colony.backend.location}`);
        }
        say(...(flags.wide ? wideRows(records) : agentRows(records)));
      });
    });

  storeOptions(
    agents.command("kill")
    .description("terminate an agent, with its descendants unless --no-cascade; waits until it has ended"),
  )
    .argument("<id>", "the agent's id (see `colony agents`)")
    .option("--no-cascade", "leave the agent's descendants running")
    .option("--json", "print the agent's final record as JSON")
    .action(async (id: string, _options: unknown, command: Command) => {
      const flags = command.optsWithGlobals<KillFlags>();
      await withExistingColony(flags, async (colony) => {
        const started = Date.now();
        const before = await colony.agents.list();
        const record = before.find((a) => a.id === id);
        try {
          await colony.agents.terminate(id, { cascade: flags.cascade });
        } catch (error) {
          if (error instanceof NotFoundError && record && isFinal(record.state)) {
            throw new UsageError(`agent ${id} (${record.name}) has already ended: ${outcome(record)}`);
          }
          throw error;
        }
        const targets = targetsOf(before, id, flags.cascade);
        const others = targets.size - 1;
        const owner = record ? ` (owner pid ${record.ownerPid})` : "";
        warn(`asked to terminate ${id}${others > 0 ? ` and ${others} descendant(s)` : ""}${owner}; waiting up to ${KILL_WAIT_MS / 1000} s…`);

        const seen = new Map(before.filter((a) => targets.has(a.id)).map((a) => [a.id, a.state]));
        let ended: AgentRecord[];
        for (;;) {
          const now = (await colony.agents.list()).filter((a) => targets.has(a.id));
          for (const a of now) {
            if (seen.get(a.id) !== a.state) warn(`  ${((Date.now() - started) / 1000).toFixed(1)} s  ${a.id} ${a.name}: ${seen.get(a.id) ?? "?"} → ${a.state}`);
            seen.set(a.id, a.state);
          }
          ended = now;
          if (now.every((a) => isFinal(a.state)) || Date.now() - started >= KILL_WAIT_MS) break;
          await new Promise((resolve) => setTimeout(resolve, KILL_POLL_MS));
        }

        const agent = ended.find((a) => a.id === id);
        if (flags.json) printJson(agent);
        const late = ended.filter((a) => !isFinal(a.state));
        if (late.length > 0) {
          warn(`colony: ${late.map((a) => `${a.id} is still ${a.state}`).join(", ")} after ${KILL_WAIT_MS / 1000} s`);
          process.exitCode = 1;
          return;
        }
        if (flags.json || !agent) return;
        const ms = Date.now() - started;
        say(`${agent.id} ${agent.name}: ${outcome(agent)} (${ms} ms)`, ...ended.filter((a) => a.id !== id).map((a) => `  ${a.id} ${a.name}: ${outcome(a)}`));
      });
    });
}
