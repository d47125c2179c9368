/**
 * A thread or process model agent's model is called by the process that owns it (the SDK and
 * the keys stay there), while its tools run in its own host; a provider only the agent's host
 * knows is called there; terminating the agent aborts the call its owner is making.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { SubAgentError } from "../src/index.ts";
import { colonyPerFile, waitFor } from "./fixtures/helpers.ts";
import { here, modelRef, resolvedHere } from "./fixtures/model-agents.ts";

const T = { timeout: 30_000 };
const env = colonyPerFile("colony-model-owner-");
/** Not imported here: loading it would teach this process its provider. */
const HOSTED_MODEL_AGENT = fileURLToPath(new URL("./fixtures/hosted-model-agent.ts", import.meta.url));

for (const isolation of ["thread", "process"] as const) {
  describe(`a ${isolation} model agent`, () => {
    it("has its model called by the owning process and runs its tools itself", T, async () => {
      const handle = await env.colony.spawn(modelRef("where"), "Where are you?", { isolation });
      const answer = (await handle.result) as string;
      const [, model, tool] = /^model (\S+), tool (\S+)$/.exec(answer) ?? [];
      assert.equal(model, here(), answer);
      assert.notEqual(tool, here(), answer);
      if (isolation === "thread") assert.equal(tool!.split("/")[0], String(process.pid));
      const row = (await env.colony.agents.list()).find((r) => r.id === handle.id)!;
      assert.equal(row.usage.turns, 2);
      assert.ok(row.usage.tokens > 0);
    });

    it("calls a model whose provider only its own host knows itself", T, async () => {
      const handle = await env.colony.spawn({ module: HOSTED_MODEL_AGENT, export: "hosted" }, "Where are you?", { isolation });
      const answer = (await handle.result) as string;
      assert.notEqual(answer, `model ${here()}`);
      assert.match(answer, /^model \d+\/\d+$/);
    });

    it("aborts the call its owner is making when terminated", T, async () => {
      const before = resolvedHere.length;
      const handle = await env.colony.spawn(modelRef("slow"), "hello", { isolation });
      const model = await waitFor(() => resolvedHere.slice(before).find((m) => m.calls === 1), 20_000, "the owner's call to start");
      await handle.terminate();
      await assert.rejects(handle.result, (error: unknown) => error instanceof SubAgentError && error.reason === "terminated");
      assert.equal(model.doGenerateCalls[0]!.abortSignal?.aborted, true);
    });
  });
}
