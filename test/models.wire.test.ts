/**
 * The wire path of a model agent: a real HTTP server speaking the OpenAI-compatible API on
 * loopback, reached through the `local:` provider (`@ai-sdk/openai-compatible`): tool calls and
 * usage over HTTP, 429 with `retry-after`, 5xx past the retries, and a hang past the timeout, each
 * ending in a typed `ModelError`.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createColony, defineModelAgent, memoryBackend, ModelError, type Colony, type ModelCallRecord } from "../src/index.ts";
import { runStep } from "../src/models/call.ts";
import { resolveModel } from "../src/models/registry.ts";
import { startFakeOpenAIServer, type FakeOpenAIServer } from "../src/testing/index.ts";

const T = { timeout: 30_000 };

describe("a model agent over HTTP (local: provider)", () => {
  let server: FakeOpenAIServer;
  let colony: Colony;
  const saved = process.env.COLONY_MODEL_BASE_URL;

  before(async () => {
    server = await startFakeOpenAIServer();
    process.env.COLONY_MODEL_BASE_URL = server.url;
    colony = createColony({ backend: memoryBackend() });
  });
  after(async () => {
    await colony.close();
    await server.close();
    if (saved === undefined) delete process.env.COLONY_MODEL_BASE_URL;
    else process.env.COLONY_MODEL_BASE_URL = saved;
  });

  async function step(options: { timeoutMs?: number; maxRetries?: number } = {}) {
    return runStep({ model: await resolveModel("local:fake"), messages: [{ role: "user", content: "hi" }], signal: new AbortController().signal, ...options });
  }

  it("calls tools and reports usage, cached and reasoning tokens included", T, async () => {
    server.push(
      { toolCalls: [{ name: "board_write", args: { key: "found", value: 42 } }], usage: { input: 120, output: 30, cached: 100 } },
      { text: "recorded", usage: { input: 200, output: 40, reasoning: 25 } },
    );
    const agent = defineModelAgent({ name: "recorder", model: "local:fake", skills: ["board.write"] });
    const handle = await colony.spawn(agent, "Record the answer.", { board: "wire" });
    const calls: ModelCallRecord[] = [];
    const seen = (async () => {
      for await (const event of handle.events) if (event.type === "emit" && event.name === "model.call") calls.push(event.data as ModelCallRecord);
    })();
    assert.equal(await handle.result, "recorded");
    await seen;
    assert.deepEqual((await (await colony.board("wire")).get("found"))?.value, 42);
    assert.deepEqual(
      calls.map((c) => [c.inputTokens, c.outputTokens, c.cachedTokens, c.reasoningTokens, c.costUsd]),
      [
        [120, 30, 100, 0, 0],
        [200, 40, 0, 25, 0],
      ],
    );
    const second = server.requests.at(-1)!;
    assert.equal(second.model, "fake");
    assert.ok(JSON.stringify(second.messages).includes('"role":"tool"'), "the tool's result went back to the model");
  });

  it("retries a 429 after the wait its retry-after asks for", T, async () => {
    server.push({ status: 429, headers: { "retry-after": "0" } }, { text: "after the wait" });
    const waits: number[] = [];
    const model = await resolveModel("local:fake");
    const result = await runStep({ model, messages: [{ role: "user", content: "hi" }], signal: new AbortController().signal, onRetry: ({ waitMs }) => waits.push(waitMs) });
    assert.equal(result.text, "after the wait");
    assert.equal(result.retries, 1);
    assert.deepEqual(waits, [0]);
  });

  it("fails typed after its retries when the server keeps answering 5xx", T, async () => {
    server.push({ status: 503, headers: { "retry-after": "0" } }, { status: 503, headers: { "retry-after": "0" } }, { status: 503, headers: { "retry-after": "0" } });
    await assert.rejects(step({ maxRetries: 2 }), (error: unknown) => {
      assert.ok(error instanceof ModelError);
      assert.equal(error.status, 503);
      assert.equal(error.retries, 2);
      assert.equal(error.retryable, true);
      assert.equal(error.provider, "local");
      assert.match(error.message, /model local:fake failed \(HTTP 503\), after 2 retries/);
      return true;
    });
  });

  it("does not retry what a retry cannot mend (400)", T, async () => {
    const before = server.requests.length;
    server.push({ status: 400, body: { error: { message: "bad request", type: "invalid_request_error" } } });
    await assert.rejects(step(), (error: unknown) => error instanceof ModelError && error.status === 400 && error.retries === 0 && !error.retryable);
    assert.equal(server.requests.length, before + 1);
  });

  it("gives up on a call that hangs past its timeout", T, async () => {
    server.push({ hang: true });
    await assert.rejects(step({ timeoutMs: 300, maxRetries: 0 }), (error: unknown) => error instanceof ModelError && error.failure === "timeout" && /no answer within 300 ms/.test(error.message));
  });

  it("fails the agent with the model's error when run as a sub-agent", T, async () => {
    server.push({ status: 500 }, { status: 500 });
    const agent = defineModelAgent({ name: "unlucky", model: "local:fake", maxRetries: 1 });
    const handle = await colony.spawn(agent, "hi");
    await assert.rejects(handle.result, /model local:fake failed \(HTTP 500\), after 1 retry/);
  });
});
