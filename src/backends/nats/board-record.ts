/**
 * What a board's KV bucket holds: one message per write or delete, as JSON, on the subject of its
 * (encoded) key. Anyone with access can publish on those subjects too; what is not a record as
 * `NatsBoardStore` writes it, on its own key's subject, is not read as one.
 */
import { z } from "zod";
import { storedTags, type Tags } from "../../core/json.ts";

/** What one message in the bucket holds: the log record, plus when the key was (re)created. */
export interface Stored {
  op: "write" | "delete";
  key: string;
  version: number;
  author: string;
  at: number;
  createdAt: number;
  json: string | null;
  /** A list of names in records written before tags carried values: read as each tagged true. */
  tags: Tags;
  /** Tells this write from any other, to find out whether an unanswered one was stored (absent in older records). */
  id?: string | undefined;
}

/** KV keys are subject tokens; board keys are any UTF-8. base64url maps one onto the other. */
export const encodeKey = (key: string) => Buffer.from(key, "utf8").toString("base64url");

const storedSchema = z.object({
  op: z.enum(["write", "delete"]),
  key: z.string().min(1),
  version: z.number().int().min(1),
  author: z.string(),
  at: z.number(),
  createdAt: z.number(),
  json: z.string().nullable(),
  tags: z.union([z.array(z.string()), z.record(z.string(), z.json())]).transform(storedTags),
  id: z.string().optional(),
});

export type ReadStored = { ok: true; stored: Stored } | { ok: false; reason: string };

/** The record in `data`, read from the subject of encoded key `token`; otherwise why it is none. */
export function readStored(data: Uint8Array, token: string): ReadStored {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(data).toString("utf8"));
  } catch {
    return { ok: false, reason: data.length === 0 ? "empty (a KV delete or purge, which Colony never makes)" : "not JSON" };
  }
  const checked = storedSchema.safeParse(parsed);
  if (!checked.success) {
    const issue = checked.error.issues[0];
    return { ok: false, reason: `not a board record${issue?.path.length ? ` at ${issue.path.join(".")}` : ""}: ${issue?.message ?? "invalid"}` };
  }
  const stored = checked.data;
  if ((stored.op === "write") !== (stored.json !== null)) return { ok: false, reason: `a ${stored.op} record with${stored.json === null ? "out" : ""} a value` };
  if (encodeKey(stored.key) !== token) return { ok: false, reason: `a record of key ${JSON.stringify(stored.key)} on another key's subject` };
  // The board parses the value when it folds the record: text that is not JSON would throw there.
  if (stored.json !== null && !isJson(stored.json)) return { ok: false, reason: `the value of key ${JSON.stringify(stored.key)} is not JSON` };
  return { ok: true, stored };
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}
