/**
 * Key and value rules of a board. A value must survive a JSON round trip unchanged, so values that
 * `JSON.stringify` would silently alter (undefined, NaN, a Date, a Map, a class instance) are
 * refused with the path to the offending part rather than stored wrong.
 */
import { InvalidKeyError, InvalidValueError } from "./errors.ts";

export const MAX_KEY_BYTES = 512;
export const DEFAULT_MAX_VALUE_BYTES = 1024 * 1024;
const MAX_DEPTH = 256;

// C0 controls, DEL and C1 controls: matching them is the point here.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

export function checkKey(key: unknown): asserts key is string {
  if (typeof key !== "string") throw new InvalidKeyError(String(key), `a key is a string, got ${typeof key}`);
  if (key.length === 0) throw new InvalidKeyError(key, "a key is 1 to 512 bytes, got an empty string");
  if (!key.isWellFormed()) throw new InvalidKeyError(key, "it holds a lone surrogate, so it is not valid UTF-8");
  // A UTF-16 code unit is at most 3 bytes of UTF-8, so only long keys need their bytes counted.
  if (key.length * 3 > MAX_KEY_BYTES) {
    const bytes = Buffer.byteLength(key, "utf8");
    if (bytes > MAX_KEY_BYTES) throw new InvalidKeyError(key, `a key is 1 to 512 bytes of UTF-8, got ${bytes}`);
  }
  const control = CONTROL.exec(key);
  if (control) {
    const code = control[0].charCodeAt(0).toString(16).padStart(4, "0");
    throw new InvalidKeyError(key, `control character U+${code} at index ${control.index}`);
  }
}

export function checkTags(key: string, tags: unknown): string[] {
  if (tags === undefined) return [];
  if (!Array.isArray(tags) || tags.some((t) => typeof t !== "string" || t.length === 0)) {
    throw new InvalidValueError(key, "tags", "tags are an array of non-empty strings");
  }
  return [...new Set(tags as string[])];
}

/** Checks `value` and returns its JSON text; throws `InvalidValueError` naming what to fix. */
export function toJson(key: string, value: unknown, maxBytes: number): string {
  checkPlain(key, value, ["value"], new Set());
  const json = JSON.stringify(value);
  if (json.length * 3 <= maxBytes) return json; // at most 3 UTF-8 bytes per UTF-16 code unit
  const bytes = Buffer.byteLength(json, "utf8");
  if (bytes > maxBytes) {
    throw new InvalidValueError(
      key,
      "value",
      `${bytes} bytes serialised, over the limit of ${maxBytes} (raise maxValueBytes to allow it)`,
      "VALUE_TOO_LARGE",
    );
  }
  return json;
}

function checkPlain(key: string, value: unknown, path: (string | number)[], ancestors: Set<object>): void {
  switch (typeof value) {
    case "string":
      if (!value.isWellFormed()) fail(key, path, "a string with a lone surrogate is not valid UTF-8");
      return;
    case "boolean":
      return;
    case "number":
      if (!Number.isFinite(value)) fail(key, path, `${value} is not a JSON number`);
      return;
    case "object":
      break;
    default:
      fail(key, path, `${typeof value} is not JSON`);
  }
  if (value === null) return;
  if (ancestors.has(value)) fail(key, path, "the value refers to itself (a cycle)");
  if (path.length > MAX_DEPTH) fail(key, path, `nested deeper than ${MAX_DEPTH} levels`);
  ancestors.add(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      path.push(i);
      checkPlain(key, value[i], path, ancestors);
      path.pop();
    }
  } else {
    const proto = Object.getPrototypeOf(value) as unknown;
    if (proto !== Object.prototype && proto !== null) {
      const name = (value as object).constructor?.name ?? "an object with a custom prototype";
      fail(key, path, `${name} is not a plain object; convert it to JSON data first`);
    }
    for (const [k, v] of Object.entries(value)) {
      path.push(k);
      checkPlain(key, v, path, ancestors);
      path.pop();
    }
  }
  ancestors.delete(value);
}

function fail(key: string, path: (string | number)[], reason: string): never {
  const where = path
    .map((p, i) => (i === 0 ? String(p) : typeof p === "number" ? `[${p}]` : `.${p}`))
    .join("");
  throw new InvalidValueError(key, where, reason);
}

/** Parses stored JSON into a deeply frozen value: views share values, so nobody may mutate one. */
export function parseFrozen(json: string): unknown {
  return deepFreeze(JSON.parse(json));
}

function deepFreeze(value: unknown): unknown {
  if (typeof value === "object" && value !== null) {
    for (const child of Object.values(value)) if (typeof child === "object" && child !== null) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
