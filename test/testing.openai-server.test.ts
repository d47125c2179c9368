import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { APICallError, generateText, isStepCount, streamText, tool } from "ai";
import { z } from "zod";
import { startFakeOpenAIServer, type FakeOpenAIServerOptions } from "../src/testing/openai-server.ts";

async function start(t: TestContext, options?: FakeOpenAIServerOptions, apiKey = "test-key") {
  const server = await startFakeOpenAIServer(options);
  t.after(() => server.close());
  const model = createOpenAICompatible({ name: "fake", baseURL: server.url, apiKey, includeUsage: true }).chatModel("fake");
  return { server, model };
}

const add = tool({
  description: "Adds two numbers",
  inputSchema: z.object({ a: z.number(), b: z.number() }),
  execute: ({ a, b }) => a + b,
});

function apiCallError(statusCode: number) {
  return (error: unknown) => {
    assert.ok(APICallError.isInstance(error), `expected an APICallError, got ${String(error)}`);
    assert.equal(error.statusCode, statusCode);
    return true;
  };
}

test("a text answer carries its usage, cached and reasoning tokens included, to the SDK", async (t) => {
  const { server, model } = await start(t, { script: [{ text: "Hello there", usage: { input: 12, output: 7, cached: 4, reasoning: 2 } }] });
  const result = await generateText({ model, instructions: "Be brief.", prompt: "Hi", maxRetries: 0 });
  assert.equal(result.text, "Hello there");
  assert.equal(result.finishReason, "stop");
  const { inputTokens, inputTokenDetails, outputTokens, outputTokenDetails, totalTokens } = result.usage;
  assert.deepEqual(
    { inputTokens, inputTokenDetails, outputTokens, outputTokenDetails, totalTokens },
    {
      inputTokens: 12,
      inputTokenDetails: { noCacheTokens: 8, cacheReadTokens: 4, cacheWriteTokens: undefined },
      outputTokens: 7,
      outputTokenDetails: { textTokens: 5, reasoningTokens: 2 },
      totalTokens: 19,
    },
  );
  assert.equal(server.requests.length, 1);
  const [request] = server.requests;
  assert.equal(request!.model, "fake");
  assert.equal(request!.stream, false);
  assert.deepEqual(request!.messages, [{ role: "system", content: "Be brief." }, { role: "user", content: "Hi" }]);
  assert.equal(request!.headers.authorization, "Bearer test-key");
});

test("without scripted usage, tokens are estimated from characters", async (t) => {
  const { model } = await start(t, { script: [{ text: "x".repeat(40) }] });
  const { usage } = await generateText({ model, prompt: "Hi", maxRetries: 0 });
  assert.equal(usage.outputTokens, 10);
  assert.ok(usage.inputTokens! >= 1);
  assert.equal(usage.inputTokenDetails.cacheReadTokens, 0);
});

test("a tool call is executed and its result goes back with the next request", async (t) => {
  const { server, model } = await start(t, {
    script: [{ toolCalls: [{ name: "add", args: { a: 2, b: 3 }, id: "call_1" }] }, { text: "It is 5." }],
  });
  const result = await generateText({ model, prompt: "2 + 3?", tools: { add }, stopWhen: isStepCount(2), maxRetries: 0 });
  assert.equal(result.text, "It is 5.");
  assert.equal(result.steps.length, 2);
  assert.equal(result.steps[0]!.finishReason, "tool-calls");
  assert.deepEqual(result.steps[0]!.toolResults.map((r) => [r.toolName, r.input, r.output]), [["add", { a: 2, b: 3 }, 5]]);

  assert.equal(server.requests.length, 2);
  const tools = server.requests[0]!.tools as { type: string; function: { name: string } }[];
  assert.deepEqual(tools.map((t) => [t.type, t.function.name]), [["function", "add"]]);
  const messages = server.requests[1]!.messages as Record<string, unknown>[];
  const assistant = messages.find((m) => m.role === "assistant") as { tool_calls: { id: string; function: { name: string; arguments: string } }[] };
  assert.equal(assistant.tool_calls[0]!.id, "call_1");
  assert.deepEqual(JSON.parse(assistant.tool_calls[0]!.function.arguments), { a: 2, b: 3 });
  const toolMessage = messages.at(-1) as { role: string; tool_call_id: string; content: string };
  assert.equal(toolMessage.role, "tool");
  assert.equal(toolMessage.tool_call_id, "call_1");
  assert.equal(JSON.parse(toolMessage.content), 5);
});

test("a streamed text answer arrives in several deltas, with usage", async (t) => {
  const { server, model } = await start(t, { script: [{ text: "Streaming works fine", usage: { input: 9, output: 4, cached: 3, reasoning: 1 } }] });
  const result = streamText({ model, prompt: "Stream, please", maxRetries: 0 });
  const deltas: string[] = [];
  for await (const delta of result.textStream) deltas.push(delta);
  assert.equal(deltas.join(""), "Streaming works fine");
  assert.ok(deltas.length > 1, `expected several deltas, got ${deltas.length}`);
  const usage = await result.usage;
  assert.equal(usage.inputTokens, 9);
  assert.equal(usage.inputTokenDetails.cacheReadTokens, 3);
  assert.equal(usage.outputTokens, 4);
  assert.equal(usage.outputTokenDetails.reasoningTokens, 1);
  assert.equal(await result.finishReason, "stop");
  const [request] = server.requests;
  assert.equal(request!.stream, true);
  assert.deepEqual((request!.body as { stream_options: unknown }).stream_options, { include_usage: true });
});

test("a streamed tool call is assembled from its deltas and executed", async (t) => {
  const { server, model } = await start(t, {
    script: [{ toolCalls: [{ name: "add", args: { a: 20, b: 22 } }] }, { text: "42" }],
  });
  const result = streamText({ model, prompt: "20 + 22?", tools: { add }, stopWhen: isStepCount(2), maxRetries: 0 });
  assert.equal(await result.text, "42");
  const steps = await result.steps;
  assert.deepEqual(steps[0]!.toolCalls.map((c) => [c.toolName, c.input]), [["add", { a: 20, b: 22 }]]);
  assert.deepEqual(steps[0]!.toolResults.map((r) => r.output), [42]);
  const toolMessage = (server.requests[1]!.messages as { role: string; tool_call_id?: string }[]).at(-1);
  assert.equal(toolMessage?.role, "tool");
  assert.equal(toolMessage?.tool_call_id, steps[0]!.toolCalls[0]!.toolCallId);
});

test("a 429 reaches the SDK with its status and retry-after header", async (t) => {
  const { model } = await start(t, { script: [{ status: 429, headers: { "retry-after": "1" } }] });
  await assert.rejects(generateText({ model, prompt: "Hi", maxRetries: 0 }), (error: unknown) => {
    apiCallError(429)(error);
    const { responseHeaders, isRetryable } = error as APICallError;
    assert.equal(responseHeaders?.["retry-after"], "1");
    assert.equal(isRetryable, true);
    return true;
  });
});

test("after a 429 the SDK's default retries get the next scripted answer", async (t) => {
  // Zero seconds, so that the SDK, which waits as long as the server asks, retries at once.
  const { server, model } = await start(t, { script: [{ status: 429, headers: { "retry-after": "0" } }, { text: "ok" }] });
  const { text } = await generateText({ model, prompt: "Hi" });
  assert.equal(text, "ok");
  assert.equal(server.requests.length, 2);
});

test("a 500 is an API call error carrying the body's message", async (t) => {
  const { model } = await start(t, { script: [{ status: 500 }] });
  await assert.rejects(generateText({ model, prompt: "Hi", maxRetries: 0 }), (error: unknown) => {
    apiCallError(500)(error);
    assert.match((error as Error).message, /fake error 500/);
    return true;
  });
});

test("when the script runs out: a 500 by default, or the fallback", async (t) => {
  const { model } = await start(t);
  await assert.rejects(generateText({ model, prompt: "Hi", maxRetries: 0 }), (error: unknown) => {
    apiCallError(500)(error);
    assert.match((error as Error).message, /script ran out/);
    return true;
  });

  const { server, model: echo } = await start(t, { fallback: (request) => ({ text: `${request.messages.length} message(s)` }) });
  server.push({ text: "scripted" });
  assert.equal((await generateText({ model: echo, prompt: "Hi", maxRetries: 0 })).text, "scripted");
  assert.equal((await generateText({ model: echo, prompt: "Hi", maxRetries: 0 })).text, "1 message(s)");
});

test("a hanging or delayed request ends when the client aborts", async (t) => {
  const { model } = await start(t, { script: [{ hang: true }, { text: "late", delayMs: 60_000 }] });
  for (let i = 0; i < 2; i++) {
    await assert.rejects(generateText({ model, prompt: "Hi", maxRetries: 0, abortSignal: AbortSignal.timeout(200) }), (error: unknown) => {
      assert.ok(error instanceof Error && ["TimeoutError", "AbortError"].includes(error.name), `expected an abort, got ${String(error)}`);
      return true;
    });
  }
});

test("close() ends a hanging request", async (t) => {
  const { promise: arrived, resolve } = Promise.withResolvers<void>();
  const { server, model } = await start(t, {
    fallback: () => {
      resolve();
      return { hang: true };
    },
  });
  const pending = generateText({ model, prompt: "Hi", maxRetries: 0 });
  await arrived;
  await server.close();
  await assert.rejects(pending);
});

test("a wrong API key gets a 401 and takes no scripted reply", async (t) => {
  const options = { apiKey: "right", script: [{ text: "welcome" }] };
  const { server, model } = await start(t, options, "wrong");
  await assert.rejects(generateText({ model, prompt: "Hi" }), (error: unknown) => {
    apiCallError(401)(error);
    assert.equal((error as APICallError).isRetryable, false);
    return true;
  });
  assert.equal(server.requests.length, 1);

  const right = createOpenAICompatible({ name: "fake", baseURL: server.url, apiKey: "right" }).chatModel("fake");
  assert.equal((await generateText({ model: right, prompt: "Hi", maxRetries: 0 })).text, "welcome");
});

test("models, unknown routes and malformed JSON", async (t) => {
  const { server } = await start(t);
  const models = await fetch(`${server.url}/models`);
  assert.equal(models.status, 200);
  assert.deepEqual(((await models.json()) as { data: { id: string }[] }).data.map((m) => m.id), ["fake"]);

  const missing = await fetch(`${server.url}/embeddings`, { method: "POST", body: "{}" });
  assert.equal(missing.status, 404);
  assert.equal(((await missing.json()) as { error: { code: string } }).error.code, "not_found");

  const malformed = await fetch(`${server.url}/chat/completions`, { method: "POST", body: "{not json" });
  assert.equal(malformed.status, 400);
  assert.equal(((await malformed.json()) as { error: { type: string } }).error.type, "invalid_request_error");
  assert.equal(server.requests.length, 0);
});
