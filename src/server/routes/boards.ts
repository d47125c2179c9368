/**
 * Boards: entries (now, or as of a log position), the log, compare-and-set writes and deletes by
 * `If-Match` / `If-None-Match`, and the log live. Keys are path segments, so a key with a `/` is
 * sent encoded (`findings%2Fa`), as `encodeURIComponent` does.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { boardSummary, viewAt, type Board } from "../../core/board.ts";
import { VersionConflictError, quote } from "../../core/errors.ts";
import type { TagsInput } from "../../core/json.ts";
import type { Api, ServerContext } from "../context.ts";
import { BodyCache } from "../body-cache.ts";
import { ApiProblem, problemSchema, problems } from "../problem.ts";
import { boardName, boardSummarySchema, entrySchema, json, limit, logRecordSchema, position } from "../schemas.ts";
import { eventStream, horizon } from "../sse.ts";

/** How many serialised entry lists the server keeps (a board's entries at one log position never change). */
const BODIES_KEPT = 16;

const IF_MATCH = z
  .string()
  .regex(/^(?:\*|\d{1,15}|"\d{1,15}")$/, { message: 'is an entry\'s version (3 or "3", as its ETag) or *' })
  .optional()
  .openapi({ description: "Write only if the entry is at this version (its ETag); * = only if it exists" });
const etag = (version: number) => `"${version}"`;

const boardParam = z.object({ name: boardName.openapi({ param: { name: "name", in: "path" } }) });
const entryParams = boardParam.extend({ key: z.string().openapi({ param: { name: "key", in: "path" }, description: "The key, URL-encoded" }) });
const conflict412 = (description: string) => ({
  description,
  content: { "application/problem+json": { schema: problemSchema.extend({ current: entrySchema.nullable().openapi({ description: "The entry as it is now; null if there is none" }) }).openapi("VersionConflict") } },
});

export function boardRoutes(app: Api, ctx: ServerContext): void {
  const bodies = new BodyCache(BODIES_KEPT);
  const open = (name: string): Promise<Board> => ctx.colony.board(name);

  /** The version `If-Match` asks for: the one it names, or for `*` the current one, which must exist. */
  const expected = async (board: Board, key: string, ifMatch: string): Promise<number> => {
    if (ifMatch !== "*") return Number(ifMatch.replaceAll('"', ""));
    const current = await board.get(key);
    if (!current) throw new ApiProblem(412, "VERSION_CONFLICT", `If-Match: * but there is no entry ${quote(key)}`, { field: "if-match", extra: { current: null } });
    return current.version;
  };

  /** A compare-and-set that found another version: 412, with the entry as it is now. */
  const conflict = async (board: Board, error: VersionConflictError, field: string): Promise<ApiProblem> =>
    new ApiProblem(412, error.code, error.message, { field, extra: { current: (await board.get(error.key)) ?? null } });

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/boards",
      summary: "The backend's boards that have been written to, by name, with how many entries each holds and its log position",
      responses: { 200: json(z.object({ boards: z.array(boardSummarySchema) }), "Boards with at least one write, by name") },
    }),
    async (c) => {
      const { boards: names } = await ctx.colony.listBoards();
      const summaries = await Promise.all(names.map(async (name) => boardSummary(await open(name))));
      return c.json({ boards: summaries.filter((b) => b.seq > 0) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/boards/{name}/entries",
      summary: "A board's entries, now or as they were at a log position",
      request: {
        params: boardParam,
        query: z.object({
          prefix: z.string().optional().openapi({ description: "Only keys that start with this" }),
          at: position("The board as it was right after this log position").optional(),
        }),
      },
      responses: { 200: json(z.object({ board: z.string(), seq: z.number().int(), entries: z.array(entrySchema) }), "Entries in key order"), ...problems(400, 410) },
    }),
    async (c) => {
      const { name } = c.req.valid("param");
      const { prefix, at } = c.req.valid("query");
      const board = await open(name);
      const head = await board.refresh();
      let view = board.view();
      if (at !== undefined) {
        if (at > head) throw new ApiProblem(400, "INVALID_REQUEST", `query parameter at: board "${name}" has ${head} log records; pick a position from 0 to ${head}`, { field: "at" });
        const records = at === 0 ? [] : await board.history({ limit: at });
        // Rebuilding needs every record from the first: one the log no longer has is a horizon.
        if (at > 0 && records[0]?.seq !== 1) throw new ApiProblem(410, "HORIZON", `board "${name}" keeps its log from position ${records[0]?.seq ?? head + 1} only, so it cannot be rebuilt as of ${at}`, { field: "at" });
        view = viewAt(name, at, records);
      }
      // The same JSON c.json would send, made once per position.
      return c.body(bodies.get([name, prefix ?? "", view.seq], () => ({ board: name, seq: view.seq, entries: view.keys(prefix).map((key) => view.read(key)!) })), 200, { "content-type": "application/json" }) as never;
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/boards/{name}/entries/{key}",
      summary: "One entry, fresh from the store; its version is the ETag",
      request: { params: entryParams },
      responses: { 200: json(entrySchema, "The entry"), ...problems(400, 404) },
    }),
    async (c) => {
      const { name, key } = c.req.valid("param");
      const entry = await (await open(name)).get(key);
      if (!entry) throw new ApiProblem(404, "NOT_FOUND", `board "${name}" has no entry ${quote(key)}`, { field: "key" });
      c.header("ETag", etag(entry.version));
      return c.json(entry, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "put",
      path: "/api/boards/{name}/entries/{key}",
      summary: "Writes an entry: unconditionally, only at a version (If-Match), or only if new (If-None-Match: *)",
      request: {
        params: entryParams,
        headers: z.object({
          "if-match": IF_MATCH,
          "if-none-match": z.literal("*", { message: "is * (create only)" }).optional().openapi({ description: "* = only if there is no such entry" }),
        }),
        body: {
          required: true,
          content: {
            "application/json": {
              schema: z.strictObject({
                value: z.unknown().openapi({ description: "Plain JSON" }),
                tags: z.union([z.record(z.string(), z.unknown()), z.array(z.string())]).optional().openapi({ description: "Name → JSON value, or a list of names (each tagged true); replaces the entry's tags" }),
              }),
            },
          },
        },
      },
      responses: {
        200: json(entrySchema, "Written over an existing entry"),
        201: json(entrySchema, "Created"),
        412: conflict412("The entry is not at the version asked for (or exists, with If-None-Match): nothing was written"),
        ...problems(400, 413),
      },
    }),
    async (c) => {
      const { name, key } = c.req.valid("param");
      const { "if-match": ifMatch, "if-none-match": ifNoneMatch } = c.req.valid("header");
      const { value, tags } = c.req.valid("json");
      if (ifMatch !== undefined && ifNoneMatch !== undefined) throw new ApiProblem(400, "INVALID_REQUEST", "give If-Match or If-None-Match, not both", { field: "if-none-match" });
      const board = await open(name);
      const expectedVersion = ifNoneMatch !== undefined ? 0 : ifMatch !== undefined ? await expected(board, key, ifMatch) : undefined;
      // Unconditional: whether it creates is what the store held just before (a racing create may make both say so).
      const existed = expectedVersion === undefined ? (await board.get(key)) !== undefined : expectedVersion > 0;
      let entry;
      try {
        entry = await board.write(key, value, { author: ctx.author, tags: tags as TagsInput | undefined, expectedVersion });
      } catch (error) {
        if (error instanceof VersionConflictError) throw await conflict(board, error, ifNoneMatch !== undefined ? "if-none-match" : "if-match");
        throw error;
      }
      c.header("ETag", etag(entry.version));
      return existed ? c.json(entry, 200) : c.json(entry, 201);
    },
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/api/boards/{name}/entries/{key}",
      summary: "Deletes an entry (logged, taking the next version); with If-Match only at that version",
      request: { params: entryParams, headers: z.object({ "if-match": IF_MATCH }) },
      responses: {
        200: json(z.object({ key: z.string(), deleted: z.literal(true) }), "Deleted"),
        412: conflict412("Not at the version asked for: nothing was deleted"),
        ...problems(400, 404),
      },
    }),
    async (c) => {
      const { name, key } = c.req.valid("param");
      const { "if-match": ifMatch } = c.req.valid("header");
      const board = await open(name);
      const expectedVersion = ifMatch === undefined ? undefined : await expected(board, key, ifMatch);
      let deleted;
      try {
        deleted = await board.delete(key, { author: ctx.author, expectedVersion });
      } catch (error) {
        if (error instanceof VersionConflictError) throw await conflict(board, error, "if-match");
        throw error;
      }
      if (!deleted) throw new ApiProblem(404, "NOT_FOUND", `board "${name}" has no entry ${quote(key)}`, { field: "key" });
      return c.json({ key, deleted: true as const }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/boards/{name}/history",
      summary: "The write log, a page at a time",
      request: {
        params: boardParam,
        query: z.object({
          after: position("Records after this log position; default 0, the start").optional(),
          limit: limit(1000, "At most this many records; default 100").optional(),
          key: z.string().optional().openapi({ description: "Only this key's records" }),
        }),
      },
      responses: {
        200: json(z.object({ records: z.array(logRecordSchema), next: z.number().int().nullable().openapi({ description: "`after` for the next page; null when this page reached the end" }) }), "Records in log order"),
        ...problems(400),
      },
    }),
    async (c) => {
      const { name } = c.req.valid("param");
      const { after = 0, limit: pageSize = 100, key } = c.req.valid("query");
      const records = await (await open(name)).history({ since: after, limit: pageSize, key });
      return c.json({ records, next: records.length === pageSize ? records.at(-1)!.seq : null }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/boards/{name}/events",
      summary: "The board's log live (Server-Sent Events)",
      description:
        "`ready` { board, after } first; then `record` (a LogRecord, `id:` its seq) for every write and delete after `after`: the Last-Event-ID header, else ?after, else the board's position now. `horizon` { requested, from, detail } when the log does not hold that position: reload the entries; the stream goes on after `from`.",
      request: {
        params: boardParam,
        query: z.object({ after: position("Follow from after this log position (Last-Event-ID wins)").optional() }),
        headers: z.object({ "last-event-id": position("The last record's seq the client saw").optional() }),
      },
      responses: { 200: { description: "text/event-stream" }, ...problems(400) },
    }),
    async (c) => {
      const { name } = c.req.valid("param");
      const requested = c.req.valid("header")["last-event-id"] ?? c.req.valid("query").after;
      const board = await open(name);
      const head = await board.refresh();
      const oldest = (await board.history({ limit: 1 }))[0]?.seq ?? head + 1;
      return eventStream(c, ctx, async (send, signal) => {
        let since = requested ?? head;
        await send({ event: "ready", data: { board: name, after: since } });
        if (since > head) {
          await send(horizon(since, head, `board "${name}" has ${head} log records, fewer than ${since}: it is not the log that position came from`));
          since = head;
        } else if (since < oldest - 1) {
          await send(horizon(since, oldest - 1, `board "${name}" keeps its log from position ${oldest} only`));
          since = oldest - 1;
        }
        for await (const record of ctx.feeds.follow(board, since, signal)) await send({ event: "record", id: record.seq, data: record });
      });
    },
  );
}
