/**
 * How Colony's names become NATS names, one to one. Buckets and streams are named
 * `${prefix}_${kind}` or `${prefix}_${kind}_${name}`, and a prefix or a board name may hold '_'
 * itself, so both are escaped first (`escapeName`). In an escaped part every '_' starts an escape
 * and is followed by two hex digits or by 'u' and four; no kind starts so (runs, agents, leases,
 * board, log, tasks, snap). So the first '_' that starts no escape ends the prefix, the kind follows,
 * and the rest is the name: two different (prefix, name) pairs never share a bucket or a stream.
 * One prefix is refused: "KV", whose task and log streams (`KV_tasks_…`) would be named like the
 * streams of prefix "tasks"'s buckets (`KV_` and the bucket's name).
 */
import { ConfigError } from "../../core/errors.ts";

/** nats-server refuses a longer stream name; a KV bucket's stream is `KV_` and the bucket's name. */
export const MAX_STREAM_NAME = 255;

/**
 * A name as a NATS name token (a bucket or stream name part, or one subject token), one to one:
 * letters, digits and '-' stand for themselves, so the names every deployment has used so far map
 * as they always did; any other UTF-16 code unit becomes '_' and two hex digits (below U+0100) or
 * '_u' and four. What comes out is letters, digits, '-' and '_' only: never a '.', a wildcard or
 * a space.
 *
 * @example
 * escapeName("team-a"); // "team-a"
 * escapeName("w.1"); // "w_2e1"
 * escapeName("w_1"); // "w_5f1"
 */
export function escapeName(value: string): string {
  return value.replace(/[^A-Za-z0-9-]/g, (c) => {
    const code = c.charCodeAt(0);
    return code < 0x100 ? `_${code.toString(16).padStart(2, "0")}` : `_u${code.toString(16).padStart(4, "0")}`;
  });
}

/** `escapeName` undone; undefined for what `escapeName` never returns. */
export function unescapeName(token: string): string | undefined {
  const value = token.replace(/_(?:u([0-9a-f]{4})|([0-9a-f]{2}))/g, (_, wide: string | undefined, narrow: string | undefined) =>
    String.fromCharCode(parseInt(wide ?? narrow!, 16)),
  );
  return escapeName(value) === token ? value : undefined;
}

/** Every bucket, stream and subject root of one prefix. */
export interface NatsNames {
  readonly runs: string;
  readonly agents: string;
  readonly leases: string;
  /** The bus's subjects are this followed by the bus subject. */
  readonly bus: string;
  /** A board's KV bucket and the mirror stream older boards kept their log in. */
  board(name: string): { bucket: string };
  /** A task board's stream and the one subject it stores, and the stream (and subject root) of its snapshots. */
  tasks(name: string): { stream: string; subject: string; snapshots: { stream: string; subject: string } };
  /** The board or task board whose data a stream of this prefix holds; undefined for any other stream. */
  holder(stream: string): { kind: "board" | "tasks"; name: string } | undefined;
}

/** ConfigError unless nats-server takes `stream` as a stream name. */
function checkStream(stream: string, what: string): void {
  if (stream.length <= MAX_STREAM_NAME) return;
  throw new ConfigError(
    `${what} makes the NATS stream name ${stream.slice(0, 40)}… ${stream.length} characters long, over nats-server's ${MAX_STREAM_NAME}: ` +
      "choose a shorter name or prefix (letters, digits and '-' take one character each, any other takes three or more)",
  );
}

/**
 * The names of a swarm under `prefix`.
 *
 * @example
 * natsNames("colony").board("main"); // { bucket: "colony_board_main" }
 * natsNames("c").board("q_board_r").bucket; // "c_board_q_5fboard_5fr", not prefix "c_board_q"'s board "r"
 */
export function natsNames(prefix: string): NatsNames {
  const p = escapeName(prefix);
  if (p === "KV") throw new ConfigError('prefix "KV" would name task board streams like the streams of KV buckets (KV_…); choose another prefix');
  const names: NatsNames = {
    runs: `${p}_runs`,
    agents: `${p}_agents`,
    leases: `${p}_leases`,
    bus: `${p}.bus.`,
    board(name) {
      const n = escapeName(name);
      const bucket = `${p}_board_${n}`;
      checkStream(`KV_${bucket}`, `board ${JSON.stringify(name)} under prefix ${JSON.stringify(prefix)}`);
      return { bucket };
    },
    tasks(name) {
      const n = escapeName(name);
      const [stream, snapshots] = [`${p}_tasks_${n}`, `${p}_snap_${n}`];
      checkStream(stream, `task board ${JSON.stringify(name)} under prefix ${JSON.stringify(prefix)}`);
      checkStream(snapshots, `task board ${JSON.stringify(name)} under prefix ${JSON.stringify(prefix)}`);
      return { stream, subject: `${p}.tasks.${n}`, snapshots: { stream: snapshots, subject: `${p}.snap.${n}` } };
    },
    holder(stream) {
      for (const [kind, start] of [["board", `KV_${p}_board_`], ["tasks", `${p}_tasks_`]] as const) {
        if (!stream.startsWith(start)) continue;
        const name = unescapeName(stream.slice(start.length));
        return name === undefined ? undefined : { kind, name };
      }
      return undefined;
    },
  };
  for (const bucket of [names.runs, names.agents, names.leases]) checkStream(`KV_${bucket}`, `prefix ${JSON.stringify(prefix)}`);
  return names;
}
