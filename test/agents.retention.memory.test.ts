/** The agent retention contract on memoryBackend, and how createColony checks the agents retention it is given. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { checkAgentRetention } from "../src/core/agent-retention.ts";
import { ConfigError, createColony, DEFAULT_AGENT_RETENTION, memoryBackend } from "../src/index.ts";
import { agentRetentionContract } from "./contract/agent-retention.ts";

agentRetentionContract("memory", () => ({ factory: memoryBackend(), cleanup: () => {} }));

describe("createColony({ retention: { agents } })", () => {
  test("a bad agents retention is a ConfigError naming the field, before anything opens", () => {
    const cases: [unknown, RegExp][] = [
      [{ maxEnded: -1 }, /^retention\.agents\.maxEnded: maxEnded must be a whole number >= 0 or Infinity$/],
      [{ maxAgeMs: 1.5 }, /^retention\.agents\.maxAgeMs: /],
      [{ maxAgeMs: "1d" }, /^retention\.agents\.maxAgeMs: /],
      [{ maxAgeMs: NaN }, /^retention\.agents\.maxAgeMs: /],
      [{ maxFinished: 10 }, /^retention\.agents: unknown field "maxFinished"; it takes maxAgeMs and maxEnded$/],
      [5, /^retention\.agents: must be an object/],
      [null, /^retention\.agents: must be an object/],
    ];
    for (const [agents, message] of cases) {
      assert.throws(() => createColony({ backend: memoryBackend(), retention: { agents: agents as never } }), (error: unknown) => error instanceof ConfigError && message.test(error.message), JSON.stringify(agents));
    }
  });

  test("what the agents retention leaves out is the default; Infinity keeps everything", () => {
    assert.deepEqual(DEFAULT_AGENT_RETENTION, { maxAgeMs: 7 * 24 * 60 * 60 * 1000, maxEnded: 10_000 });
    assert.deepEqual(checkAgentRetention(undefined), DEFAULT_AGENT_RETENTION);
    assert.deepEqual(checkAgentRetention({ maxEnded: 5 }), { ...DEFAULT_AGENT_RETENTION, maxEnded: 5 });
    assert.deepEqual(checkAgentRetention({ maxAgeMs: Infinity, maxEnded: 0 }), { maxAgeMs: Infinity, maxEnded: 0 });
    // Beside the task boards' retention, which does not take it for one of its own fields.
    assert.doesNotThrow(() => createColony({ backend: memoryBackend(), retention: { maxFinished: 5, agents: { maxEnded: 5 }, boards: { b: { maxEvents: 9 } } } }));
  });
});
