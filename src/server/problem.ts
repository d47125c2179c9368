/**
 * Every error the API sends is a JSON problem (RFC 9457): `{ type, title, status, detail, code,
 * field? }`, where `code` is Colony's error code and `field` names what to fix. Colony's typed
 * errors map to 4xx by their code; only what nobody foresaw is a 500, and it shows no stack.
 */
import { STATUS_CODES } from "node:http";
import { z } from "@hono/zod-openapi";
import { HTTPException } from "hono/http-exception";
import type { ZodError } from "zod";
import { ColonyError, InvalidAuthorError, InvalidInputError, InvalidKeyError, InvalidValueError, describeError } from "../core/errors.ts";

export const problemSchema = z
  .object({
    type: z.string().openapi({ example: "urn:colony:problem:not_found" }),
    title: z.string().openapi({ example: "Not Found" }),
    status: z.number().int().openapi({ example: 404 }),
    detail: z.string(),
    code: z.string().openapi({ description: "Colony's error code (NOT_FOUND, INVALID_KEY, VERSION_CONFLICT, HORIZON, …)", example: "NOT_FOUND" }),
    field: z.string().optional().openapi({ description: "The parameter, header or body field to fix", example: "limit" }),
  })
  .openapi("Problem");

export type Problem = z.infer<typeof problemSchema> & Record<string, unknown>;

/** A problem the server itself finds: a bad parameter, a missing token, a task that is not for retrying. */
export class ApiProblem extends ColonyError {
  readonly status: number;
  readonly field: string | undefined;
  /** More members of the problem body (`current` on a failed precondition). */
  readonly extra: Record<string, unknown>;

  constructor(status: number, code: string, detail: string, options: { field?: string; extra?: Record<string, unknown> } = {}) {
    super(code, detail);
    this.status = status;
    this.field = options.field;
    this.extra = options.extra ?? {};
  }
}

/** The HTTP status of each of Colony's error codes that a request can cause; the rest are 500. */
const STATUS_OF: Readonly<Record<string, number>> = {
  CONFIG: 400,
  INVALID_KEY: 400,
  INVALID_VALUE: 400,
  INVALID_TASK: 400,
  INVALID_INPUT: 400,
  NOT_FOUND: 404,
  BUS_NO_RESPONDERS: 404,
  STALE_TASK: 409,
  APPROVAL_DECIDED: 409,
  NO_WORKER: 409,
  HORIZON: 410,
  VERSION_CONFLICT: 412,
  VALUE_TOO_LARGE: 413,
  CLOSED: 503,
  STORE_BUSY: 503,
  TASK_CONTENTION: 503,
  STREAM_READ: 503,
  NATS_CONNECT: 503,
  BUS_TIMEOUT: 504,
};

function fieldOf(error: ColonyError): string | undefined {
  if (error instanceof InvalidKeyError) return "key";
  if (error instanceof InvalidValueError || error instanceof InvalidInputError) return error.path || undefined;
  if (error instanceof InvalidAuthorError) return "author";
  return undefined;
}

export function problem(status: number, code: string, detail: string, field?: string, extra: Record<string, unknown> = {}): Problem {
  return {
    type: `urn:colony:problem:${code.toLowerCase()}`,
    title: STATUS_CODES[status] ?? "Error",
    status,
    detail,
    code,
    ...(field !== undefined && { field }),
    ...extra,
  };
}

/** The problem an error makes, or undefined for one nobody foresaw (a bug, a lost connection). */
export function problemOf(error: unknown): Problem | undefined {
  if (error instanceof ApiProblem) return problem(error.status, error.code, error.message, error.field, error.extra);
  if (error instanceof HTTPException) {
    // Hono's own: a body that is not JSON, or not declared as JSON.
    const code = error.status === 415 ? "UNSUPPORTED_MEDIA_TYPE" : error.status === 400 ? "INVALID_REQUEST" : `HTTP_${error.status}`;
    return problem(error.status, code, error.message || (STATUS_CODES[error.status] ?? "error"), error.status === 400 ? "body" : undefined);
  }
  if (error instanceof ColonyError) {
    const status = STATUS_OF[error.code];
    return status === undefined ? undefined : problem(status, error.code, error.message, fieldOf(error));
  }
  return undefined;
}

/**
 * Any error as a problem. An unforeseen one is logged for the operator and sent as a 500 that
 * says only that (a typed error's message, never a stack), so no internals leak.
 */
export function problemFor(error: unknown): Problem {
  const known = problemOf(error);
  if (known) return known;
  console.error("colony serve:", error);
  return problem(500, error instanceof ColonyError ? error.code : "INTERNAL", error instanceof ColonyError ? describeError(error) : "the server failed on this request; its log says why");
}

export function problemResponse(body: Problem, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status: body.status, headers: { "content-type": "application/problem+json", ...headers } });
}

const WHERE: Readonly<Record<string, string>> = { json: "body", query: "query parameter", param: "path parameter", header: "header" };

/** A request the route's schema refuses: a 400 naming the first field at fault. */
export function invalidRequest(error: ZodError, target: string): ApiProblem {
  const issue = error.issues[0];
  const field = issue && issue.path.length > 0 ? issue.path.map(String).join(".") : target === "json" ? "body" : target;
  const where = WHERE[target] ?? target;
  return new ApiProblem(400, "INVALID_REQUEST", `${where} ${field}: ${issue?.message ?? "invalid"}`, { field });
}

/** Problem responses for a route's documentation. */
export function problems(...statuses: number[]): Record<number, { description: string; content: { "application/problem+json": { schema: typeof problemSchema } } }> {
  return Object.fromEntries(statuses.map((status) => [status, { description: STATUS_CODES[status] ?? "Error", content: { "application/problem+json": { schema: problemSchema } } }]));
}
