/**
 * Key, author, tag and value rules of a board. A value must survive a JSON round trip unchanged,
 * so values that `JSON.stringify` would silently alter (undefined, NaN, a Date, a Map, a class
 * instance, a symbol key, a getter) are refused with the path to the offending part rather than
 * stored wrong; so is -0, which JSON has no way to write. The value is read once, by the walk that
 * checks it and writes its JSON text, so what is stored is exactly what was checked.
 */
import { InvalidAuthorError, InvalidKeyError, InvalidValueError } from "./errors.ts";

export const MAX_KEY_BYTES = 512;
/**
 * Like a key. A sub-agent writes as `name@id`, and its name may be 128 characters of up to 3 bytes
 * each, so 256 bytes would refuse the writes of some agents that were allowed to start.
 */
export const MAX_AUTHOR_BYTES = 512;
export const MAX_TAG_BYTES = 128;
export const MAX_TAGS = 64;
export const DEFAULT_MAX_VALUE_BYTES = 1024 * 1024;
const MAX_DEPTH = 256;

// C0 controls, DEL and C1 controls: matching them is the point here.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** Why a short name (a key, an author, a tag, an agent's name) is not acceptable, or undefined if it is. */
export function nameProblem(text: string, maxBytes: number, what: string): string | undefined {
  if (text.length === 0) return `${what} is 1 to ${maxBytes} bytes, got an empty string`;
  if (!text.isWellFormed()) return "it holds a lone surrogate, so it is not valid UTF-8";
  // A UTF-16 code unit is at most 3 bytes of UTF-8, so only long names need their bytes counted.
  if (text.length * 3 > maxBytes) {
    const bytes = Buffer.byteLength(text, "utf8");
    if (bytes > maxBytes) return `${what} is 1 to ${maxBytes} bytes of UTF-8, got ${bytes}`;
  }
  const control = CONTROL.exec(text);
  if (control) {
    const code = control[0].charCodeAt(0).toString(16).padStart(4, "0");
    return `control character U+${code} at index ${control.index}`;
  }
  return undefined;
}

export function checkKey(key: unknown): asserts key is string {
  if (typeof key !== "string") throw new InvalidKeyError(String(key), `a key is a string, got ${typeof key}`);
  const problem = nameProblem(key, MAX_KEY_BYTES, "a key");
  if (problem !== undefined) throw new InvalidKeyError(key, problem);
}

/** Every write and delete names who made it; the name is stored in each log record, so it is bounded like a key. */
export function checkAuthor(author: unknown): asserts author is string {
  if (typeof author !== "string" || author.length === 0) {
    const got = typeof author === "string" ? "an empty string" : author === null ? "null" : typeof author;
    throw new InvalidAuthorError(author, `every write names its author: pass { author: "name" } (got ${got})`);
  }
  const problem = nameProblem(author, MAX_AUTHOR_BYTES, "an author");
  if (problem !== undefined) throw new InvalidAuthorError(author, `${problem}; name the author with a short printable string`);
}

/** A JSON value, as a tag holds one. */
export type JsonValue = null | boolean | number | string | readonly JsonValue[] | { readonly [name: string]: JsonValue };

/** An entry's tags: a name → value each, as `{ status: "pending_review", confidence: 0.85 }`. */
export type Tags = { readonly [name: string]: JsonValue };

/** Tags as a write may give them: an object, or a list of names, shorthand for each tagged `true`. */
export type TagsInput = Tags | readonly string[];

/** All of an entry's tags, serialised, at most: tags are for selecting entries, not for their content. */
export const MAX_TAGS_BYTES = 16 * 1024;

/** No tags, shared: frozen. */
export const NO_TAGS: Tags = Object.freeze({});

/**
 * The tags to store: a fresh copy, read once and checked (names like other names, at most
 * MAX_TAGS of them, values JSON, all of it at most MAX_TAGS_BYTES serialised). A list of names is
 * shorthand for each tagged `true`.
 */
export function checkTags(key: string, tags: unknown): Tags {
  if (tags === undefined) return NO_TAGS;
  if (Array.isArray(tags)) {
    // Copied before it is checked, so that a getter cannot show the check one tag and the store another.
    const names: unknown[] = Array.from(tags);
    if (names.length > MAX_TAGS) throw new InvalidValueError(key, "tags", `at most ${MAX_TAGS} tags, got ${names.length}`);
    for (const [i, name] of names.entries()) {
      if (typeof name !== "string") throw new InvalidValueError(key, `tags[${i}]`, `a tag name is a string, got ${name === null ? "null" : typeof name}`);
      const problem = nameProblem(name, MAX_TAG_BYTES, "a tag name");
      if (problem !== undefined) throw new InvalidValueError(key, `tags[${i}]`, problem);
    }
    // fromEntries, not assignment: a tag named __proto__ is a tag like any other.
    return Object.fromEntries((names as string[]).map((name) => [name, true]));
  }
  if (typeof tags !== "object" || tags === null) {
    throw new InvalidValueError(key, "tags", `tags are an object of name → JSON value, or a list of names (each tagged true); got ${tags === null ? "null" : typeof tags}`);
  }
  const copy = JSON.parse(toJson(key, tags, MAX_TAGS_BYTES, "tags")) as Tags;
  const names = Object.keys(copy);
  if (names.length > MAX_TAGS) throw new InvalidValueError(key, "tags", `at most ${MAX_TAGS} tags, got ${names.length}`);
  for (const name of names) {
    const problem = nameProblem(name, MAX_TAG_BYTES, "a tag name");
    if (problem !== undefined) throw new InvalidValueError(key, `tags[${JSON.stringify(name)}]`, problem);
  }
  return copy;
}

/**
 * Tags as a store read them back. Entries written before tags carried values hold a list of
 * names; each reads as tagged `true`, as the shorthand writes it today.
 */
export function storedTags(raw: unknown): Tags {
  if (Array.isArray(raw)) return Object.fromEntries(raw.map((name) => [String(name), true]));
  return typeof raw === "object" && raw !== null ? (raw as Tags) : NO_TAGS;
}

/**
 * `text` cut to at most `maxBytes` of UTF-8, ending in a marker saying how much was cut, and made
 * well-formed. For what must be recorded whatever its size (a task's failure message): refusing
 * it would lose the record.
 */
export function truncateUtf8(text: string, maxBytes: number): string {
  const whole = text.toWellFormed();
  if (whole.length * 3 <= maxBytes) return whole;
  const bytes = Buffer.from(whole, "utf8");
  if (bytes.length <= maxBytes) return whole;
  // The marker's own length depends on the count it prints; the longest count bounds it.
  const room = maxBytes - Buffer.byteLength(`… (${bytes.length} bytes cut)`, "utf8");
  let end = Math.max(0, room);
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--; // not inside a multi-byte character
  return `${bytes.toString("utf8", 0, end)}… (${bytes.length - end} bytes cut)`;
}

type Segment = string | number | symbol;

interface Walk {
  readonly key: string;
  readonly maxBytes: number;
  /** What is written: an entry's value, or its tags. */
  readonly root: "value" | "tags";
  /** Where the object being written is, from `value` down; a primitive's own place is passed along, not pushed. */
  readonly path: Segment[];
  /** The objects the walk is inside of, innermost last: a cycle is one of them met again. */
  readonly ancestors: object[];
  /** UTF-16 code units written so far: a lower bound of the UTF-8 bytes, so a huge value stops early. */
  units: number;
}

/**
 * Checks `value` and returns its JSON text; throws `InvalidValueError` naming what to fix. One walk
 * does both: `JSON.stringify` after a separate check would read the value a second time, and a
 * getter or a Proxy could then store something other than what was checked.
 */
export function toJson(key: string, value: unknown, maxBytes: number, root: "value" | "tags" = "value"): string {
  const walk: Walk = { key, maxBytes, root, path: [], ancestors: [], units: 0 };
  const json = write(walk, value, root);
  if (json.length * 3 <= maxBytes) return json; // at most 3 UTF-8 bytes per UTF-16 code unit
  const bytes = Buffer.byteLength(json, "utf8");
  if (bytes > maxBytes) tooLarge(walk, `${bytes} bytes serialised`);
  return json;
}

function write(walk: Walk, value: unknown, at: Segment): string {
  switch (typeof value) {
    case "string":
      // Its JSON text is at least as long: a string that cannot fit is not scanned first.
      if (walk.units + value.length > walk.maxBytes) tooLarge(walk, `at least ${walk.units + value.length} bytes serialised`);
      return counted(walk, literal(value) ?? fail(walk, at, "a string with a lone surrogate is not valid UTF-8"));
    case "number":
      if (!Number.isFinite(value)) fail(walk, at, `${value} is not a JSON number`);
      // JSON.stringify writes -0 as 0, which reads back as another number (Object.is tells).
      if (value === 0 && 1 / value < 0) fail(walk, at, "-0 is not a JSON number (JSON has no negative zero); write 0");
      return counted(walk, String(value));
    case "boolean":
      return value ? "true" : "false";
    case "object":
      return value === null ? "null" : writeObject(walk, value, at);
    default:
      fail(walk, at, `${typeof value} is not JSON`);
  }
}

// What JSON escapes in a well-formed string: quotes, backslashes and C0 controls.
// eslint-disable-next-line no-control-regex
const NEEDS_ESCAPE = /["\\\u0000-\u001f]/;

/**
 * `text` as a JSON string literal, or undefined if it holds a lone surrogate (not valid UTF-8).
 * JSON.stringify only for the few that need escapes; for short strings (most keys and values) one
 * scan of the characters beats a regex and isWellFormed.
 */
function literal(text: string): string | undefined {
  if (text.length > 64) {
    if (!text.isWellFormed()) return undefined;
    return NEEDS_ESCAPE.test(text) ? JSON.stringify(text) : `"${text}"`;
  }
  let plain = true;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c) plain = false;
    else if (c >= 0xd800 && c <= 0xdfff) return text.isWellFormed() ? JSON.stringify(text) : undefined;
  }
  return plain ? `"${text}"` : JSON.stringify(text);
}

function writeObject(walk: Walk, value: object, at: Segment): string {
  const { path, ancestors } = walk;
  // A scan of at most MAX_DEPTH ancestors, usually a handful, is cheaper than hashing every object into a Set.
  if (ancestors.includes(value)) fail(walk, at, "the value refers to itself (a cycle)");
  if (path.length >= MAX_DEPTH) fail(walk, at, `nested deeper than ${MAX_DEPTH} levels`);
  const array = Array.isArray(value);
  if (!array) {
    const proto = Object.getPrototypeOf(value) as unknown;
    if (proto !== Object.prototype && proto !== null) {
      const name = (value as { constructor?: { name?: string } }).constructor?.name ?? "an object with a custom prototype";
      fail(walk, at, `${name} is not a plain object; convert it to JSON data first`);
    }
  }
  path.push(at);
  ancestors.push(value);
  const json = array ? writeArray(walk, value as unknown[]) : writePlain(walk, value);
  ancestors.pop();
  path.pop();
  return json;
}

/**
 * Elements are read by index, once each. A getter on an element (it takes defineProperty) runs
 * once and what it returns is what is checked and stored: refusing it would need a property
 * descriptor per element, which makes arrays of numbers several times slower to write.
 */
function writeArray(walk: Walk, array: unknown[]): string {
  const length = array.length;
  let json = "[";
  for (let i = 0; i < length; i++) {
    const element = array[i];
    if (element === undefined && !(i in array)) fail(walk, i, "a hole in an array is not JSON; fill it (with null, say)");
    json += (i === 0 ? "" : ",") + write(walk, element, i);
  }
  return json + "]";
}

/**
 * Properties are read through their descriptors, so a getter is refused, never run. Object.keys
 * lists the keys in the order JSON.stringify writes them; a symbol key or a non-enumerable one
 * would be left out silently, so their counts are checked (Reflect.ownKeys instead made whole
 * writes half again slower).
 */
function writePlain(walk: Walk, object: object): string {
  const names = Object.keys(object);
  if (Object.getOwnPropertySymbols(object).length > 0 || Object.getOwnPropertyNames(object).length !== names.length) {
    hiddenProperty(walk, object);
  }
  let json = "{";
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    const quotedName = literal(name) ?? fail(walk, name, "a key with a lone surrogate is not valid UTF-8");
    const property = Reflect.getOwnPropertyDescriptor(object, name);
    if (property === undefined) fail(walk, name, "the property vanished while it was read");
    if (property.get !== undefined || property.set !== undefined) fail(walk, name, "a getter is not JSON data; store the value it returns instead");
    if (!property.enumerable) fail(walk, name, NOT_ENUMERABLE);
    json += (i === 0 ? "" : ",") + counted(walk, quotedName) + ":" + write(walk, property.value, name);
  }
  return json + "}";
}

const NOT_ENUMERABLE = "a non-enumerable property is not JSON; make it enumerable or leave it out";

/** Fails at the first property JSON would leave out: a symbol key or a non-enumerable one. */
function hiddenProperty(walk: Walk, object: object): never {
  const symbol = Object.getOwnPropertySymbols(object)[0];
  if (symbol !== undefined) fail(walk, symbol, "a symbol key is not JSON; use a string key");
  const name = Object.getOwnPropertyNames(object).find((n) => !Object.prototype.propertyIsEnumerable.call(object, n));
  fail(walk, name ?? "?", NOT_ENUMERABLE);
}

function counted(walk: Walk, json: string): string {
  walk.units += json.length;
  if (walk.units > walk.maxBytes) tooLarge(walk, `at least ${walk.units} bytes serialised`);
  return json;
}

function tooLarge(walk: Walk, size: string): never {
  throw new InvalidValueError(
    walk.key,
    walk.root,
    `${size}, over the limit of ${walk.maxBytes}${walk.root === "value" ? " (raise maxValueBytes to allow it)" : "; tags are for selecting entries: put what is large in the value"}`,
    "VALUE_TOO_LARGE",
  );
}

function fail(walk: Walk, at: Segment, reason: string): never {
  const where = [...walk.path, at].map((p, i) => (i === 0 ? String(p) : segment(p))).join("");
  throw new InvalidValueError(walk.key, where, reason);
}

function segment(p: Segment): string {
  if (typeof p === "number") return `[${p}]`;
  if (typeof p === "symbol") return `[${p.toString()}]`;
  // JSON escapes keep a lone surrogate in a key printable.
  return p.isWellFormed() ? `.${p}` : `[${JSON.stringify(p)}]`;
}

/** Parses stored JSON into a deeply frozen value: views share values, so nobody may mutate one. */
export function parseFrozen(json: string): unknown {
  return deepFreeze(JSON.parse(json));
}

export function deepFreeze(value: unknown): unknown {
  if (typeof value === "object" && value !== null) {
    for (const child of Object.values(value)) if (typeof child === "object" && child !== null) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
