/**
 * Light or dark: the system's choice (prefers-color-scheme) unless the toggle picked one, which
 * is kept in localStorage. The choice is an attribute on <html> that the stylesheet reads.
 */
import { useEffect, useState } from "preact/hooks";

export type ThemeChoice = "system" | "light" | "dark";
const KEY = "colony.theme";

function stored(): ThemeChoice {
  try {
    const value = window.localStorage.getItem(KEY);
    return value === "light" || value === "dark" ? value : "system";
  } catch {
    return "system";
  }
}

function apply(choice: ThemeChoice): void {
  const root = document.documentElement;
  if (choice === "system") root.removeAttribute("data-theme");
  else root.setAttribute("data-theme", choice);
}

export function initTheme(): void {
  apply(stored());
}

/** The theme in effect now, whatever chose it. */
export function effectiveTheme(choice: ThemeChoice): "light" | "dark" {
  if (choice !== "system") return choice;
  return window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

export function useTheme(): [ThemeChoice, (choice: ThemeChoice) => void] {
  const [choice, setChoice] = useState(stored);
  const [, setSystem] = useState(0);
  useEffect(() => {
    const media = window.matchMedia("(prefers-color-scheme: dark)");
    const listener = () => setSystem((n) => n + 1);
    media.addEventListener("change", listener);
    return () => media.removeEventListener("change", listener);
  }, []);
  const set = (next: ThemeChoice) => {
    try {
      if (next === "system") window.localStorage.removeItem(KEY);
      else window.localStorage.setItem(KEY, next);
    } catch {
      // storage disabled: the choice lasts for this page
    }
    apply(next);
    setChoice(next);
  };
  return [choice, set];
}
