/** Messages that come and go: the outcome of an action, a failure. */
import { useEffect, useState } from "preact/hooks";

export interface Toast {
  id: number;
  text: string;
  tone: "info" | "error";
}

let toasts: Toast[] = [];
let nextId = 1;
const listeners = new Set<(toasts: Toast[]) => void>();

function publish(): void {
  for (const listener of listeners) listener(toasts);
}

export function dismiss(id: number): void {
  toasts = toasts.filter((t) => t.id !== id);
  publish();
}

export function toast(text: string, tone: Toast["tone"] = "info"): void {
  const id = nextId++;
  toasts = [...toasts.slice(-4), { id, text, tone }];
  publish();
  setTimeout(() => dismiss(id), tone === "error" ? 10_000 : 4_000);
}

export function useToasts(): Toast[] {
  const [value, setValue] = useState(toasts);
  useEffect(() => {
    listeners.add(setValue);
    return () => {
      listeners.delete(setValue);
    };
  }, []);
  return value;
}
