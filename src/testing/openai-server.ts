/**
 * A fake OpenAI-compatible chat-completions server on loopback, for tests that drive a real HTTP
 * client (such as `@ai-sdk/openai-compatible`) through scripted turns: text, tool calls, errors,
 * delays and requests that are never answered.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";

export type FakeReply =
  | { text: string; usage?: FakeUsage; delayMs?: number }
  /** `args` is sent as JSON; a string is sent as the raw `arguments` (to script malformed JSON). */
  | { toolCalls: { name: string; args: unknown; id?: string }[]; text?: string; usage?: FakeUsage; delayMs?: number }
  | { status: number; body?: unknown; headers?: Record<string, string> }
  | { hang: true };

export interface FakeUsage {
  input: number;
  output: number;
  cached?: number;
  reasoning?: number;
}

export interface FakeRequest {
  model: string;
  messages: unknown[];
  tools?: unknown[];
  stream: boolean;
  body: unknown;
  headers: Record<string, string | string[] | undefined>;
}

export interface FakeOpenAIServer {
  /** The base URL, ending in `/v1`. */
  readonly url: string;
  /** Every chat completion request received, in order, including those refused with 401. */
  readonly requests: FakeRequest[];
  /** Appends replies to the script; each request takes the next one. */
  push(...replies: FakeReply[]): void;
  /** Closes the server and its open connections, which ends any hanging request. */
  close(): Promise<void>;
}

export interface FakeOpenAIServerOptions {
  /** Replies used in order; when the script runs out, `fallback` (default: a 500 with a JSON error saying the script ran out). */
  script?: FakeReply[];
  fallback?: FakeReply | ((request: FakeRequest) => FakeReply);
  /** Requires this bearer token (401 otherwise). */
  apiKey?: string;
}

type Answer = Exclude<FakeReply, { status: number } | { hang: true }>;
type ToolCall = { id: string; name: string; arguments: string };

/**
 * Starts a fake OpenAI-compatible server on a free loopback port. Each `POST /v1/chat/completions`
 * is recorded in `requests` and answered with the next scripted reply, as JSON or, when the request
 * asks to stream, as server-sent events. `GET /v1/models` lists one model, "fake".
 *
 * @example
 * const server = await startFakeOpenAIServer({ script: [{ toolCalls: [{ name: "add", args: { a: 2, b: 3 } }] }] });
 * server.push({ status: 429, headers: { "retry-after": "1" } }, { text: "5", usage: { input: 40, output: 1, cached: 32 } });
 * const model = createOpenAICompatible({ name: "fake", baseURL: server.url, includeUsage: true }).chatModel("fake");
 * const { text } = await generateText({ model, prompt: "2 + 3?", tools: { add }, stopWhen: isStepCount(2) }); // "5"
 * await server.close();
 */
export async function startFakeOpenAIServer(options: FakeOpenAIServerOptions = {}): Promise<FakeOpenAIServer> {
  const script = [...(options.script ?? [])];
  const requests: FakeRequest[] = [];
  let nextId = 0;
  const next = (request: FakeRequest): FakeReply => {
    const scripted = script.shift();
    if (scripted) return scripted;
    const fallback = options.fallback ?? { status: 500, body: openAIError("the fake server's script ran out", "server_error") };
    return typeof fallback === "function" ? fallback(request) : fallback;
  };

  const chatCompletion = (req: IncomingMessage, res: ServerResponse, raw: string) => {
    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      return sendJson(res, 400, openAIError("the request body is not valid JSON", "invalid_request_error"));
    }
    if (typeof body !== "object" || body === null || Array.isArray(body)) {
      return sendJson(res, 400, openAIError("the request body is not a JSON object", "invalid_request_error"));
    }
    const fields = body as Record<string, unknown>;
    const request: FakeRequest = {
      model: typeof fields.model === "string" ? fields.model : "",
      messages: Array.isArray(fields.messages) ? fields.messages : [],
      tools: Array.isArray(fields.tools) ? fields.tools : undefined,
      stream: fields.stream === true,
      body,
      headers: { ...req.headers },
    };
    requests.push(request);
    if (!authorized(req)) return sendUnauthorized(res);
    const reply = next(request);
    if ("hang" in reply) return;
    if ("status" in reply) {
      const errorBody = reply.body ?? openAIError(`fake error ${reply.status}`, reply.status >= 500 ? "server_error" : "invalid_request_error");
      return sendJson(res, reply.status, errorBody, reply.headers);
    }
    const id = `chatcmpl-fake-${++nextId}`;
    const toolCalls: ToolCall[] = ("toolCalls" in reply ? reply.toolCalls : []).map((call, index) => ({
      id: call.id ?? `call_fake_${nextId}_${index}`,
      name: call.name,
      arguments: typeof call.args === "string" ? call.args : JSON.stringify(call.args ?? {}),
    }));
    const answer = () => {
      if (request.stream) sendStream(res, id, request, reply, toolCalls, isUsageRequested(fields));
      else sendJson(res, 200, completion(id, request, reply, toolCalls));
    };
    if (!reply.delayMs) return answer();
    const timer = setTimeout(answer, reply.delayMs);
    res.once("close", () => clearTimeout(timer));
  };

  const authorized = (req: IncomingMessage) => options.apiKey === undefined || req.headers.authorization === `Bearer ${options.apiKey}`;

  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method === "POST" && path === "/v1/chat/completions") {
      const chunks: Buffer[] = [];
      req.on("data", (chunk: Buffer) => chunks.push(chunk));
      req.on("end", () => {
        try {
          chatCompletion(req, res, Buffer.concat(chunks).toString("utf8"));
        } catch (error) {
          // A throwing `fallback` function is the test's bug; answer so that the client does not wait.
          if (!res.headersSent) sendJson(res, 500, openAIError(`the fake server failed: ${String(error)}`, "server_error"));
        }
      });
    } else if (req.method === "GET" && path === "/v1/models") {
      if (!authorized(req)) return sendUnauthorized(res);
      sendJson(res, 200, { object: "list", data: [{ id: "fake", object: "model", created: 0, owned_by: "colony" }] });
    } else {
      sendJson(res, 404, openAIError(`no route ${req.method} ${path}`, "invalid_request_error", "not_found"));
    }
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as { port: number };
  let closed: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    push: (...replies) => void script.push(...replies),
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closed;
    },
  };
}

function openAIError(message: string, type: string, code: string | null = null) {
  return { error: { message, type, param: null, code } };
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(typeof body === "string" ? body : JSON.stringify(body));
}

function sendUnauthorized(res: ServerResponse) {
  sendJson(res, 401, openAIError("Incorrect API key provided", "invalid_request_error", "invalid_api_key"));
}

function isUsageRequested(body: Record<string, unknown>): boolean {
  const streamOptions = body.stream_options as { include_usage?: unknown } | undefined;
  return streamOptions?.include_usage === true;
}

function usageOf(request: FakeRequest, reply: Answer, toolCalls: ToolCall[]) {
  const replyChars = (reply.text ?? "").length + toolCalls.reduce((sum, call) => sum + call.name.length + call.arguments.length, 0);
  const usage = reply.usage ?? {
    input: Math.max(1, Math.ceil(JSON.stringify(request.messages).length / 4)),
    output: Math.max(1, Math.ceil(replyChars / 4)),
  };
  return {
    prompt_tokens: usage.input,
    completion_tokens: usage.output,
    total_tokens: usage.input + usage.output,
    prompt_tokens_details: { cached_tokens: usage.cached ?? 0 },
    completion_tokens_details: { reasoning_tokens: usage.reasoning ?? 0 },
  };
}

function completion(id: string, request: FakeRequest, reply: Answer, toolCalls: ToolCall[]) {
  const message: Record<string, unknown> = { role: "assistant", content: reply.text ?? null };
  if (toolCalls.length > 0) {
    message.tool_calls = toolCalls.map((call) => ({ id: call.id, type: "function", function: { name: call.name, arguments: call.arguments } }));
  }
  return {
    id,
    object: "chat.completion",
    created: Math.floor(Date.now() / 1000),
    model: request.model || "fake",
    choices: [{ index: 0, message, logprobs: null, finish_reason: toolCalls.length > 0 ? "tool_calls" : "stop" }],
    usage: usageOf(request, reply, toolCalls),
  };
}

function sendStream(res: ServerResponse, id: string, request: FakeRequest, reply: Answer, toolCalls: ToolCall[], includeUsage: boolean) {
  const created = Math.floor(Date.now() / 1000);
  const model = request.model || "fake";
  const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
    `data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model, choices, ...extra })}\n\n`;
  const delta = (value: Record<string, unknown>, finishReason: string | null = null) => chunk([{ index: 0, delta: value, logprobs: null, finish_reason: finishReason }]);

  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
  res.write(delta({ role: "assistant", content: "" }));
  for (const piece of pieces(reply.text ?? "")) res.write(delta({ content: piece }));
  toolCalls.forEach((call, index) => {
    res.write(delta({ tool_calls: [{ index, id: call.id, type: "function", function: { name: call.name, arguments: "" } }] }));
    for (const piece of pieces(call.arguments)) res.write(delta({ tool_calls: [{ index, function: { arguments: piece } }] }));
  });
  res.write(delta({}, toolCalls.length > 0 ? "tool_calls" : "stop"));
  if (includeUsage) res.write(chunk([], { usage: usageOf(request, reply, toolCalls) }));
  res.end("data: [DONE]\n\n");
}

/** Splits text into up to three pieces, as a real stream delivers it in several deltas. */
function pieces(text: string): string[] {
  const size = Math.max(1, Math.ceil(text.length / 3));
  const result: string[] = [];
  for (let i = 0; i < text.length; i += size) result.push(text.slice(i, i + size));
  return result;
}
