/**
 * Governance over a spawn tree: a ledger node per run or agent that counts its own and its
 * descendants' usage, refuses what would cross a limit of any ancestor before it happens, and
 * permissions that a child may only narrow.
 */
import { ConfigError } from "./errors.ts";
import { checkDuration } from "./timers.ts";
import type { Usage } from "./records.ts";
import { BudgetExceededError, PermissionError, type Budget, type Permissions } from "./subagent-types.ts";

const MIN_ENDED_FOR_ERROR_RATE = 4;

/** Checks a budget's figures; throws `ConfigError` naming the bad one. */
export function checkBudget(budget: unknown, where: string): Budget {
  if (budget === undefined) return {};
  if (typeof budget !== "object" || budget === null) throw new ConfigError(`${where}: budget is an object of limits`);
  for (const [name, value] of Object.entries(budget)) {
    if (!["tokens", "costUsd", "steps", "turns", "wallMs", "depth", "children", "errorRate"].includes(name)) {
      throw new ConfigError(`${where}: budget has no limit named "${name}"`);
    }
    if (value === undefined) continue;
    if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
      throw new ConfigError(`${where}: budget.${name} is a number >= 0, got ${String(value)}`);
    }
    if (name === "errorRate" && value > 1) throw new ConfigError(`${where}: budget.errorRate is a share from 0 to 1, got ${value}`);
    if (name === "wallMs") checkDuration(value, `${where}: budget.wallMs`);
  }
  return budget as Budget;
}

export interface Tally {
  tokens: number;
  costUsd: number;
  turns: number;
  steps: number;
  children: number;
  ended: number;
  failed: number;
}

export class Ledger {
  readonly holder: string;
  readonly parent: Ledger | undefined;
  readonly limits: Budget;
  /** 0 for a root; a child is one deeper than its parent. */
  readonly level: number;
  readonly startedAt: number;
  readonly used: Tally = { tokens: 0, costUsd: 0, turns: 0, steps: 0, children: 0, ended: 0, failed: 0 };

  /** The first limit refused on this node, if any: a run stops with `budget` once one has been hit. */
  exceeded: BudgetExceededError | undefined;

  /**
   * `level` defaults to one below the parent; a run's agents share the run's level, since they are
   * not spawns of it.
   */
  constructor(holder: string, limits: Budget = {}, parent?: Ledger, level = parent ? parent.level + 1 : 0) {
    this.holder = holder;
    this.limits = { ...limits };
    this.parent = parent;
    this.level = level;
    this.startedAt = Date.now();
  }

  *#chain(): Generator<Ledger> {
    yield this;
    for (let node = this.parent; node; node = node.parent) yield node;
  }

  /** Adds limits this node does not have yet (an agent's own, after its spawn's options). */
  adopt(limits: Budget): void {
    for (const [name, value] of Object.entries(limits) as [keyof Budget, number | undefined][]) {
      if (value !== undefined && this.limits[name] === undefined) this.limits[name] = value;
    }
  }

  /** Opens a child node, or refuses with `BudgetExceededError` if a spawn here crosses a limit. */
  spawn(holder: string, limits: Budget = {}): Ledger {
    for (const node of this.#chain()) {
      const { depth, children, errorRate } = node.limits;
      const levels = this.level + 1 - node.level;
      if (depth !== undefined && levels > depth) throw node.#refuse(new BudgetExceededError("depth", depth, levels, node.holder));
      if (children !== undefined && node.used.children + 1 > children) {
        throw node.#refuse(new BudgetExceededError("children", children, node.used.children + 1, node.holder));
      }
      if (errorRate !== undefined && node.used.ended >= MIN_ENDED_FOR_ERROR_RATE && node.used.failed / node.used.ended > errorRate) {
        throw node.#refuse(new BudgetExceededError("errorRate", errorRate, node.used.failed / node.used.ended, node.holder));
      }
    }
    this.checkWall();
    for (const node of this.#chain()) node.used.children++;
    return new Ledger(holder, limits, this);
  }

  /**
   * Counts usage on this node and every ancestor, or refuses all of it. Usage already `spent` (a
   * model call that was made) is counted even past a limit, and then refused all the same.
   */
  charge(usage: Usage, options: { spent?: boolean } = {}): void {
    const tokens = usage.tokens ?? 0;
    const costUsd = usage.costUsd ?? 0;
    if (!Number.isFinite(tokens) || tokens < 0 || !Number.isFinite(costUsd) || costUsd < 0) {
      throw new ConfigError(`usage is counted in non-negative numbers, got ${JSON.stringify(usage)}`);
    }
    let refusal: unknown;
    try {
      this.#check("tokens", tokens);
      this.#check("costUsd", costUsd);
    } catch (error) {
      if (!options.spent) throw error;
      refusal = error;
    }
    for (const node of this.#chain()) {
      node.used.tokens += tokens;
      node.used.costUsd += costUsd;
    }
    if (refusal) throw refusal;
  }

  countTurn(): void {
    this.#check("turns", 1);
    this.checkWall();
    for (const node of this.#chain()) node.used.turns++;
  }

  countStep(): void {
    this.#check("steps", 1);
    this.checkWall();
    for (const node of this.#chain()) node.used.steps++;
  }

  /** Records that this node's agent ended; ancestors count it for their error rate. */
  ended(failed: boolean): void {
    for (let node = this.parent; node; node = node.parent) {
      node.used.ended++;
      if (failed) node.used.failed++;
    }
  }

  /** Throws when a wall-time limit of this node or an ancestor has passed. */
  checkWall(now = Date.now()): void {
    for (const node of this.#chain()) {
      const { wallMs } = node.limits;
      if (wallMs !== undefined && now - node.startedAt > wallMs) {
        throw node.#refuse(new BudgetExceededError("wallMs", wallMs, now - node.startedAt, node.holder));
      }
    }
  }

  /** The earliest moment a wall-time limit on the chain runs out, if any. */
  wallDeadline(): number | undefined {
    let deadline: number | undefined;
    for (const node of this.#chain()) {
      if (node.limits.wallMs === undefined) continue;
      const end = node.startedAt + node.limits.wallMs;
      deadline = deadline === undefined ? end : Math.min(deadline, end);
    }
    return deadline;
  }

  /** What is left of each counted limit along the chain (the tightest), for a child's own checks. */
  remaining(): { tokens?: number; costUsd?: number } {
    const left: { tokens?: number; costUsd?: number } = {};
    for (const node of this.#chain()) {
      for (const metric of ["tokens", "costUsd"] as const) {
        const limit = node.limits[metric];
        if (limit === undefined) continue;
        const value = limit - node.used[metric];
        left[metric] = left[metric] === undefined ? value : Math.min(left[metric], value);
      }
    }
    return left;
  }

  /**
   * Notes a refusal made elsewhere on this node's behalf (a host's own check of what its ledger
   * had left) on the nearest node that holds that limit.
   */
  recordRefusal(error: BudgetExceededError): void {
    for (const node of this.#chain()) {
      if (node.limits[error.limit] !== undefined) {
        node.#refuse(error);
        return;
      }
    }
  }

  #refuse(error: BudgetExceededError): BudgetExceededError {
    this.exceeded ??= error;
    return error;
  }

  #check(metric: "tokens" | "costUsd" | "turns" | "steps", amount: number): void {
    if (amount === 0) return;
    for (const node of this.#chain()) {
      const limit = node.limits[metric];
      if (limit !== undefined && node.used[metric] + amount > limit) {
        throw node.#refuse(new BudgetExceededError(metric, limit, node.used[metric] + amount, node.holder));
      }
    }
  }
}

/** Whether a child's list may be taken from its parent's: every entry must be covered by one of the parent's. */
type Covers = (parentEntry: string, childEntry: string) => boolean;
const same: Covers = (p, c) => p === c;
const prefixOf: Covers = (p, c) => c.startsWith(p);

/** What each list of `Permissions` holds, how a child's entry is covered, and how a refusal reads. */
const LISTS: readonly { name: keyof Permissions; covers: Covers; refusal: string }[] = [
  { name: "tools", covers: same, refusal: "tools its parent may not use" },
  { name: "writePrefixes", covers: prefixOf, refusal: "to write under prefixes its parent may not" },
  { name: "boards", covers: same, refusal: "boards its parent may not touch" },
  { name: "env", covers: same, refusal: "environment variables its parent was not given" },
];

/**
 * A child's permissions: its own request narrowed from its parent's. A list the child leaves out
 * is its parent's; a list it names must lie within its parent's (when the parent has one), or
 * the spawn is refused with `PermissionError` and nothing starts.
 */
export function narrowPermissions(parent: Permissions, requested: Permissions | undefined, who: string): Permissions {
  const narrowed: Permissions = {};
  for (const { name, covers, refusal } of LISTS) {
    const asked = requested?.[name];
    if (asked !== undefined && (!Array.isArray(asked) || asked.some((entry) => typeof entry !== "string"))) {
      throw new ConfigError(`${who}: permissions.${name} is an array of strings`);
    }
    const allowed = parent[name];
    if (asked !== undefined && allowed !== undefined) {
      const extra = asked.filter((entry) => !allowed.some((mine) => covers(mine, entry)));
      if (extra.length > 0) throw new PermissionError(`${who} asks for ${refusal}: ${extra.map((e) => JSON.stringify(e)).join(", ")}`);
    }
    const list = asked ?? allowed;
    if (list !== undefined) narrowed[name] = [...new Set(list)];
  }
  return narrowed;
}

/** Refuses a board outside an agent's `boards` permission. */
export function checkBoard(permissions: Permissions, board: string, who: string): void {
  if (permissions.boards !== undefined && !permissions.boards.includes(board)) {
    throw new PermissionError(`${who} may not touch board ${JSON.stringify(board)}: it may touch only ${permissions.boards.map((b) => JSON.stringify(b)).join(", ") || "no board"}`);
  }
}

export function checkWrite(permissions: Permissions, key: string, who: string): void {
  const prefixes = permissions.writePrefixes;
  if (prefixes !== undefined && !prefixes.some((p) => key.startsWith(p))) {
    throw new PermissionError(`${who} may not write "${key}": it may write only under ${prefixes.map((p) => JSON.stringify(p)).join(", ") || "no prefix"}`);
  }
}

export function checkTool(permissions: Permissions, tool: string, who: string): void {
  if (permissions.tools !== undefined && !permissions.tools.includes(tool)) {
    throw new PermissionError(`${who} may not use tool "${tool}": it may use ${permissions.tools.join(", ") || "no tools"}`);
  }
}
