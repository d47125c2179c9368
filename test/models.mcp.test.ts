/**
 * MCP tools for model agents: a real MCP server over stdio (a child process) lends its tools,
 * named `server.tool`, and is stopped when the agent ends.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import { ConfigError, createColony, defineModelAgent, memoryBackend } from "../src/index.ts";
import { scriptedModel } from "../src/testing/index.ts";
import { alive, waitFor } from "./fixtures/helpers.ts";

const T = { timeout: 30_000 };
const SERVER = fileURLToPath(new URL("./fixtures/mcp-server.ts", import.meta.url));

describe("MCP tools", () => {
  it("reach the model as server.tool, run on the server, and the server stops with the agent", T, async () => {
    const colony = createColony({ backend: memoryBackend() });
    try {
      const model = scriptedModel([], {
        fallback: (_call, options) => {
          const text = JSON.stringify(options.prompt);
          const found = /ant: a small social insect \(server pid (\d+)\)/.exec(text);
          return found ? { text: `pid ${found[1]}` } : { toolCalls: [{ name: "dict_lookup", args: { word: "ant" } }] };
        },
      });
      const agent = defineModelAgent({ name: "reader", model, mcp: { dict: { command: process.execPath, args: [SERVER] } } });
      const handle = await colony.spawn(agent, "What is an ant?");
      const answer = (await handle.result) as string;
      assert.deepEqual(model.doGenerateCalls[0]!.tools?.map((t) => t.name), ["dict_lookup"]);
      const pid = Number(/pid (\d+)/.exec(answer)![1]);
      await waitFor(() => !alive(pid), 20_000, "the MCP server to stop");
    } finally {
      await colony.close();
    }
  });

  it("refuse a server that is neither local nor remote, when defined", () => {
    assert.throws(() => defineModelAgent({ name: "x", model: scriptedModel([]), mcp: { dict: { url: "ftp://example" } } }), (e: unknown) => e instanceof ConfigError && /mcp.dict.url is an http\(s\) URL/.test(e.message));
    assert.throws(() => defineModelAgent({ name: "x", model: scriptedModel([]), mcp: { dict: {} as never } }), /either \{ command, args\? \}/);
  });
});
