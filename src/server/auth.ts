/**
 * Who may call the API. With a token, every /api request carries `Authorization: Bearer <token>`,
 * compared in constant time. Without one the server listens on loopback only, and, since a web
 * page the user visits can still reach loopback, it answers only requests addressed to a loopback
 * name (a DNS-rebinding page addresses its own) and takes writes only from its own origin or the
 * `cors` one (a cross-site form post carries its page's).
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { BlockList, isIP } from "node:net";
import type { MiddlewareHandler } from "hono";
import { UnsafeBindError } from "./errors.ts";
import { ApiProblem } from "./problem.ts";

const loopback = new BlockList();
loopback.addSubnet("127.0.0.0", 8, "ipv4");
loopback.addAddress("::1", "ipv6");
loopback.addSubnet("::ffff:127.0.0.0", 104, "ipv6");

/** Whether a host name or address (IPv6 with or without brackets) is this machine's loopback. */
function isLoopback(host: string): boolean {
  const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  if (bare.toLowerCase() === "localhost") return true;
  const family = isIP(bare);
  return family !== 0 && loopback.check(bare, family === 4 ? "ipv4" : "ipv6");
}

/** Refuses, before anything listens, to serve beyond loopback without a token. */
export function checkBind(host: string, token: string | undefined): void {
  if (token === undefined && !isLoopback(host)) throw new UnsafeBindError(host);
}

const digest = (text: string) => createHash("sha256").update(text).digest();

/**
 * Checks `Authorization: Bearer <token>`. Both sides are hashed first, so the comparison takes as
 * long whatever was sent, and `timingSafeEqual` never sees two lengths.
 */
export function bearer(token: string): MiddlewareHandler {
  const expected = digest(token);
  return async (c, next) => {
    const given = /^Bearer +(\S+) *$/i.exec(c.req.header("authorization") ?? "")?.[1];
    const matches = timingSafeEqual(digest(given ?? ""), expected);
    if (given === undefined || !matches) {
      const detail = given === undefined ? 'this API needs "Authorization: Bearer <token>"' : "the bearer token is not this server's";
      throw new ApiProblem(401, "UNAUTHORIZED", detail, { field: "authorization" });
    }
    await next();
  };
}

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/** Without a token: loopback names only, and writes from this server's origin or the `cors` one only. */
export function loopbackOnly(cors: string | undefined): MiddlewareHandler {
  return async (c, next) => {
    const url = new URL(c.req.url);
    if (!isLoopback(url.hostname)) {
      throw new ApiProblem(403, "FORBIDDEN_HOST", `this server has no token, so it answers only requests addressed to a loopback name (127.0.0.1, localhost), not ${JSON.stringify(url.hostname)}`, { field: "host" });
    }
    const origin = c.req.header("origin");
    if (!SAFE_METHODS.has(c.req.method) && origin !== undefined && origin !== url.origin && origin !== cors) {
      throw new ApiProblem(403, "FORBIDDEN_ORIGIN", `this server has no token, so it takes writes only from its own pages${cors ? ` and ${cors}` : ""}, not from ${JSON.stringify(origin)}`, { field: "origin" });
    }
    await next();
  };
}
