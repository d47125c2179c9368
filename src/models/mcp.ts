/**
 * Tools from MCP servers (`@ai-sdk/mcp`): a model agent names servers, local ones started over
 * stdio with only the environment it lists, remote ones over HTTP without following redirects.
 * Their tools are named `server.tool` for permissions. The clients live as long as one run of
 * the agent and are closed when it ends, however it ends.
 */
import type { Tool } from "ai";
import { ConfigError } from "../core/errors.ts";
import { DEFAULT_ENV } from "../core/subagent-types.ts";

export type McpServer =
  | {
      /** A local server: the command to start (stdio transport). */
      command: string;
      args?: string[];
      cwd?: string;
      /** Names of environment variables it gets, with this process's values; default `DEFAULT_ENV`. */
      env?: string[];
    }
  | { url: string; headers?: Record<string, string> };

export interface McpConnection {
  /** By the name permissions use: `server.tool`. */
  tools: Map<string, Tool>;
  close(): Promise<void>;
}

/** Checks the servers an agent names; throws `ConfigError` naming the bad field. */
export function checkMcpServers(servers: unknown, who: string): Record<string, McpServer> {
  if (servers === undefined) return {};
  if (typeof servers !== "object" || servers === null || Array.isArray(servers)) throw new ConfigError(`${who}: mcp maps a server name to { command, args? } or { url }`);
  for (const [name, server] of Object.entries(servers as Record<string, unknown>)) {
    if (!/^[A-Za-z][\w-]{0,31}$/.test(name)) throw new ConfigError(`${who}: mcp server name ${JSON.stringify(name)}: letters, digits, _ and -, starting with a letter, at most 32`);
    const s = server as Partial<Record<string, unknown>>;
    const local = typeof s.command === "string" && s.command.length > 0;
    const remote = typeof s.url === "string";
    if (local === remote) throw new ConfigError(`${who}: mcp.${name} is either { command, args? } (a local server) or { url } (a remote one)`);
    if (remote) {
      const url = URL.parse(s.url as string);
      if (!url || !["http:", "https:"].includes(url.protocol)) throw new ConfigError(`${who}: mcp.${name}.url is an http(s) URL, got ${JSON.stringify(s.url)}`);
    }
    for (const list of ["args", "env"] as const) {
      const value = s[list];
      if (value !== undefined && (!Array.isArray(value) || value.some((v) => typeof v !== "string"))) throw new ConfigError(`${who}: mcp.${name}.${list} is a list of strings`);
    }
  }
  return servers as Record<string, McpServer>;
}

/** Connects to every server and lists its tools; on any failure, closes what it opened. */
export async function connectMcp(servers: Record<string, McpServer>, who: string): Promise<McpConnection> {
  const { createMCPClient } = await import("@ai-sdk/mcp");
  const clients: { close(): Promise<void> }[] = [];
  const close = async (): Promise<void> => {
    await Promise.allSettled(clients.map((client) => client.close()));
  };
  const tools = new Map<string, Tool>();
  try {
    for (const [name, server] of Object.entries(servers)) {
      let transport: Parameters<typeof createMCPClient>[0]["transport"];
      if ("command" in server) {
        const { StdioMCPTransport } = await import("@ai-sdk/mcp/mcp-stdio");
        const env: Record<string, string> = {};
        for (const key of server.env ?? DEFAULT_ENV) if (process.env[key] !== undefined) env[key] = process.env[key];
        transport = new StdioMCPTransport({ command: server.command, args: server.args ?? [], env, ...(server.cwd !== undefined && { cwd: server.cwd }) });
      } else {
        transport = { type: "http", url: server.url, redirect: "error", ...(server.headers && { headers: server.headers }) };
      }
      let client;
      try {
        client = await createMCPClient({ transport });
      } catch (error) {
        throw new ConfigError(`${who}: MCP server ${name} did not start: ${(error as Error).message}`, { cause: error });
      }
      clients.push(client);
      for (const [tool, definition] of Object.entries(await client.tools())) tools.set(`${name}.${tool}`, definition as Tool);
    }
  } catch (error) {
    await close();
    throw error;
  }
  return { tools, close };
}
