/** How numbers, times and values read on screen. */

export function tokens(n: number | undefined): string {
  if (n === undefined) return "–";
  if (n >= 1_000_000) return `${(n / 1_000_000).toFixed(n >= 10_000_000 ? 0 : 1)}M`;
  if (n >= 10_000) return `${Math.round(n / 1000)}k`;
  return String(n);
}

export function cost(usd: number | null | undefined): string {
  if (usd === undefined) return "–";
  if (usd === null) return "unknown";
  if (usd === 0) return "$0";
  if (usd < 0.000001) return "<$0.000001";
  // Two significant digits below a cent, so that a thousandth of a cent is not shown as nothing.
  if (usd < 0.01) return `$${usd.toPrecision(2).replace(/(\.\d*?)0+$/, "$1").replace(/\.$/, "")}`;
  return `$${usd.toFixed(2)}`;
}

export function duration(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return "–";
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} min`;
  return `${Math.floor(h / 24)} d`;
}

/** How long ago or how long for, coarsely: the clock it is measured on ticks every few seconds. */
export function age(ms: number): string {
  return ms < 1000 ? "<1 s" : duration(ms);
}

export function time(at: number | undefined): string {
  if (at === undefined) return "–";
  const d = new Date(at);
  const today = new Date();
  const sameDay = d.toDateString() === today.toDateString();
  return sameDay ? d.toLocaleTimeString() : d.toLocaleString();
}

/** A value on one line, cut to `max` characters. */
export function preview(value: unknown, max = 120): string {
  let text: string;
  if (typeof value === "string") text = JSON.stringify(value);
  else if (value === undefined) text = "undefined";
  else {
    try {
      text = JSON.stringify(value) ?? String(value);
    } catch {
      text = String(value);
    }
  }
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

export function pretty(value: unknown): string {
  if (value === undefined) return "undefined";
  try {
    return JSON.stringify(value, null, 2) ?? String(value);
  } catch {
    return String(value);
  }
}

export function tagList(tags: Record<string, unknown> | undefined): string[] {
  if (!tags) return [];
  return Object.entries(tags).map(([name, value]) => (value === true ? name : `${name}=${typeof value === "string" ? value : JSON.stringify(value)}`));
}
