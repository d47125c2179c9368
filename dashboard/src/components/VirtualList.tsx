/**
 * A list that renders only the rows in view, through @tanstack/virtual-core (the same core the
 * React and Vue adapters wrap; this is the adapter for Preact hooks). Rows have a fixed height,
 * so thousands of them cost nothing to lay out. Arrow keys, Home and End move the focus between
 * rows (to the element marked `data-row-focus`), scrolling the next one into view first, since a
 * row out of view is not in the page.
 */
import type { ComponentChildren, TargetedKeyboardEvent } from "preact";
import { useLayoutEffect, useReducer, useRef } from "preact/hooks";
import { Virtualizer, elementScroll, observeElementOffset, observeElementRect, type VirtualizerOptions } from "@tanstack/virtual-core";

type Options = Pick<VirtualizerOptions<HTMLDivElement, HTMLElement>, "count" | "estimateSize" | "getScrollElement" | "overscan" | "getItemKey">;

export function useVirtualizer(options: Options): Virtualizer<HTMLDivElement, HTMLElement> {
  const [, rerender] = useReducer((n: number) => n + 1, 0);
  const full: VirtualizerOptions<HTMLDivElement, HTMLElement> = {
    observeElementRect,
    observeElementOffset,
    scrollToFn: elementScroll,
    ...options,
    onChange: () => rerender(undefined),
  };
  const ref = useRef<Virtualizer<HTMLDivElement, HTMLElement> | undefined>(undefined);
  ref.current ??= new Virtualizer(full);
  const virtualizer = ref.current;
  virtualizer.setOptions(full);
  useLayoutEffect(() => virtualizer._didMount(), [virtualizer]);
  useLayoutEffect(() => {
    virtualizer._willUpdate();
  });
  return virtualizer;
}

export interface VirtualListProps<T> {
  items: readonly T[];
  rowHeight: number;
  keyOf: (item: T) => string;
  renderRow: (item: T, index: number) => ComponentChildren;
  testId?: string;
  className?: string;
  label: string;
  empty?: ComponentChildren;
}

export function VirtualList<T>({ items, rowHeight, keyOf, renderRow, testId, className, label, empty }: VirtualListProps<T>) {
  const scroller = useRef<HTMLDivElement>(null);
  const virtualizer = useVirtualizer({
    count: items.length,
    estimateSize: () => rowHeight,
    getScrollElement: () => scroller.current,
    overscan: 8,
    getItemKey: (index) => {
      const item = items[index];
      return item === undefined ? index : keyOf(item);
    },
  });

  const onKeyDown = (event: TargetedKeyboardEvent<HTMLDivElement>) => {
    const row = (event.target as HTMLElement).closest<HTMLElement>("[data-index]");
    if (!row || row.parentElement?.parentElement !== scroller.current) return;
    const index = Number(row.dataset.index);
    let next: number | undefined;
    if (event.key === "ArrowDown") next = index + 1;
    else if (event.key === "ArrowUp") next = index - 1;
    else if (event.key === "Home") next = 0;
    else if (event.key === "End") next = items.length - 1;
    if (next === undefined || next < 0 || next >= items.length) return;
    // Arrows inside a field of a row stay the field's.
    const tag = (event.target as HTMLElement).tagName;
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT") return;
    event.preventDefault();
    const target = next;
    virtualizer.scrollToIndex(target, { align: "auto" });
    requestAnimationFrame(() => {
      const next = scroller.current?.querySelector<HTMLElement>(`[data-index="${target}"]`);
      next?.querySelector<HTMLElement>("[data-row-focus]")?.focus();
    });
  };

  const rows = virtualizer.getVirtualItems();
  return (
    <div ref={scroller} class={`vlist ${className ?? ""}`} data-testid={testId} role="list" aria-label={label} onKeyDown={onKeyDown}>
      {items.length === 0 && empty ? <div class="vlist-empty">{empty}</div> : null}
      <div class="vlist-inner" style={{ height: `${virtualizer.getTotalSize()}px` }}>
        {rows.map((row) => {
          const item = items[row.index];
          if (item === undefined) return null;
          return (
            <div
              key={row.key}
              class="vlist-row"
              data-index={row.index}
              role="listitem"
              aria-setsize={items.length}
              aria-posinset={row.index + 1}
              style={{ height: `${rowHeight}px`, transform: `translateY(${row.start}px)` }}
            >
              {renderRow(item, row.index)}
            </div>
          );
        })}
      </div>
    </div>
  );
}
