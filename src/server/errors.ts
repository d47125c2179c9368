/**
 * Why a server does not start. Both are the user's to fix (`ConfigError`, exit 2 in the CLI), and
 * both are thrown before anything listens.
 */
import { ConfigError } from "../core/errors.ts";

/** A server asked to listen beyond this machine without a token: anyone who can reach it could write. */
export class UnsafeBindError extends ConfigError {
  readonly host: string;

  constructor(host: string) {
    super(`${host} is not a loopback address: the API would be open to anyone who can reach it; pass a token (--token or COLONY_TOKEN) so that every request needs "Authorization: Bearer <token>", or listen on 127.0.0.1`);
    this.host = host;
  }
}

/** The address cannot be listened on: the port is taken, not ours to take, or the address is not this machine's. */
export class ListenError extends ConfigError {
  readonly host: string;
  readonly port: number;

  constructor(host: string, port: number, cause: NodeJS.ErrnoException) {
    const why =
      cause.code === "EADDRINUSE"
        ? "the port is in use; pick another with --port (0 picks a free one)"
        : cause.code === "EACCES"
          ? "permission denied; ports below 1024 need privileges, pick another with --port"
          : cause.code === "EADDRNOTAVAIL"
            ? "no interface of this machine has that address"
            : cause.message;
    super(`cannot listen on ${host}:${port}: ${why}`, { cause });
    this.host = host;
    this.port = port;
  }
}
