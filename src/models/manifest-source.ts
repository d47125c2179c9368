/**
 * A manifest's text as data: parsed YAML with every node's line, and errors that point at one.
 * Only plain YAML gets through: explicit tags other than the core ones (`!!js/function`,
 * `!!binary`, custom `!tags`) are refused, so a manifest can name code but never carry it.
 */
import { readFile } from "node:fs/promises";
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from "yaml";
import { ConfigError, describeError } from "../core/errors.ts";

/** Where in a manifest: keys and indexes from the top, as zod and the YAML tree both count them. */
export type ManifestPath = readonly PropertyKey[];

/**
 * A manifest that cannot be used: its message reads `agents.yaml:12 agents[1].model: unknown
 * provider "opena"` (the file as it was given, the line of the node at fault, its path).
 */
export class ManifestError extends ConfigError {
  override readonly code: string = "MANIFEST";
  readonly file: string;
  readonly line: number | undefined;
  /** The offending node's path in JS notation (`agents[1].model`); empty for the whole file. */
  readonly path: string;

  constructor(file: string, line: number | undefined, path: string, problem: string, options?: { cause?: unknown }) {
    super(`${file}${line === undefined ? "" : `:${line}`}${path === "" ? ":" : ` ${path}:`} ${problem}`, options);
    this.file = file;
    this.line = line;
    this.path = path;
  }
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

/** `agents[1].model`, `prices["local:qwen"].input`. */
export function jsPath(path: ManifestPath): string {
  return path
    .map((segment, i) => {
      if (typeof segment === "number") return `[${segment}]`;
      const key = String(segment);
      if (!IDENTIFIER.test(key)) return `[${JSON.stringify(key)}]`;
      return i === 0 ? key : `.${key}`;
    })
    .join("");
}

/** Tags a plain YAML value may carry; anything else would make YAML build something other than data. */
const CORE_TAGS = new Set(["str", "int", "float", "bool", "null", "map", "seq"].map((t) => `tag:yaml.org,2002:${t}`));

function shownTag(tag: string): string {
  return tag.startsWith("tag:yaml.org,2002:") ? `!!${tag.slice("tag:yaml.org,2002:".length)}` : tag;
}

export interface ManifestSource {
  /** The path as the caller gave it: what messages name. */
  readonly file: string;
  /** The document as plain data (maps, lists, strings, numbers, booleans, null). */
  readonly data: unknown;
  /** Throws a `ManifestError` at `path`: the line of its node, or of the nearest parent there is. */
  fail(path: ManifestPath, problem: string, cause?: unknown): never;
}

/**
 * The node a path leads to, for its line. A map key's own node is taken (the line where
 * `model:` is written, even when its value is a block below it); where the path leaves the tree
 * (a key that is missing, an alias), the last node it reached.
 */
function nodeAt(doc: Document, path: ManifestPath): Node | undefined {
  let node: unknown = doc.contents;
  let found: Node | undefined = isMap(node) || isSeq(node) || isScalar(node) ? node : undefined;
  for (const segment of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(segment));
      if (!pair) break;
      found = pair.key as Node;
      node = pair.value;
    } else if (isSeq(node) && typeof segment === "number") {
      const item = node.items[segment];
      if (isAlias(item)) return item;
      if (!isMap(item) && !isSeq(item) && !isScalar(item)) break;
      found = item;
      node = item;
    } else break;
  }
  return found;
}

/** Reads and parses a manifest; a missing file, bad YAML or a refused tag is a `ManifestError`. */
export async function readManifestSource(file: string, path: string): Promise<ManifestSource> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ManifestError(file, undefined, "", code === "ENOENT" ? "no such file" : `cannot be read: ${describeError(error)}`, { cause: error });
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const lineOf = (offset: number | undefined): number | undefined => (offset === undefined ? undefined : lines.linePos(offset).line);
  const fail = (at: ManifestPath, problem: string, cause?: unknown): never => {
    throw new ManifestError(file, lineOf(nodeAt(doc, at)?.range?.[0]), jsPath(at), problem, cause === undefined ? undefined : { cause });
  };
  const syntax = doc.errors[0];
  if (syntax) throw new ManifestError(file, lineOf(syntax.pos[0]), "", `YAML syntax error: ${syntax.message}`, { cause: syntax });
  refuseTags(doc.contents, [], fail);
  const warning = doc.warnings[0];
  if (warning) throw new ManifestError(file, lineOf(warning.pos[0]), "", `YAML: ${warning.message}`, { cause: warning });
  let data: unknown;
  try {
    // Aliases are data too, but each one is counted so that a few lines cannot expand to gigabytes.
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (error) {
    throw new ManifestError(file, undefined, "", `YAML: ${describeError(error)}`, { cause: error });
  }
  return { file, data, fail };
}

function refuseTags(node: unknown, path: PropertyKey[], fail: ManifestSource["fail"]): void {
  if (isAlias(node) || !(isMap(node) || isSeq(node) || isScalar(node))) return;
  if (node.tag !== undefined && !CORE_TAGS.has(node.tag)) {
    fail(path, `the YAML tag ${shownTag(node.tag)} is refused: a manifest is plain data (strings, numbers, lists, maps) and never code; put code in a module and name it (module: ./file.ts)`);
  }
  if (isSeq(node)) node.items.forEach((item, i) => refuseTags(item, [...path, i], fail));
  if (isMap(node)) {
    for (const pair of node.items) {
      if (!isScalar(pair.key)) fail(path, "map keys are plain names, not lists or maps");
      const key = pair.key.value;
      refuseTags(pair.key, [...path, String(key)], fail);
      refuseTags(pair.value, [...path, String(key)], fail);
    }
  }
}
