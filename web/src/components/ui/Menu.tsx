import { useEffect, useId, useRef, useState, type KeyboardEvent, type ReactNode, type RefObject } from "react";
import "./ui.css";

export interface MenuItem {
  label: string;
  icon?: ReactNode;
  onSelect: () => void;
  danger?: boolean;
}

export interface MenuProps {
  /** Accessible name of the button that opens the menu. */
  label: string;
  trigger: ReactNode;
  items: MenuItem[];
  align?: "start" | "end";
  triggerClassName?: string;
  /** -1 keeps the button out of the Tab order (a list row is one Tab stop; `openToken` opens it from the row). */
  triggerTabIndex?: number;
  /** Each new value opens the menu with its first item focused (e.g. Shift+F10 on the row). */
  openToken?: number;
  /** Where focus returns when the menu closes; default its button. */
  focusOnClose?: RefObject<HTMLElement | null>;
}

/** A menu button (WAI-ARIA menu pattern): arrows move, Enter picks, Esc closes and returns focus. */
export function Menu({ label, trigger, items, align = "end", triggerClassName, triggerTabIndex, openToken, focusOnClose }: MenuProps) {
  const [open, setOpen] = useState(false);
  const [active, setActive] = useState(0);
  const id = useId();
  const buttonRef = useRef<HTMLButtonElement>(null);
  const listRef = useRef<HTMLUListElement>(null);

  useEffect(() => {
    if (!open) return;
    const onPointer = (e: PointerEvent) => {
      if (!listRef.current?.contains(e.target as Node) && !buttonRef.current?.contains(e.target as Node)) setOpen(false);
    };
    document.addEventListener("pointerdown", onPointer);
    return () => document.removeEventListener("pointerdown", onPointer);
  }, [open]);

  useEffect(() => {
    if (open) listRef.current?.querySelectorAll<HTMLElement>("[role=menuitem]")[active]?.focus();
  }, [open, active]);

  // Only a new token opens it: a menu mounted again (the row was being renamed) stays closed.
  const seenToken = useRef(openToken);
  useEffect(() => {
    if (openToken === seenToken.current) return;
    seenToken.current = openToken;
    setActive(0);
    setOpen(true);
  }, [openToken]);

  const close = (refocus: boolean) => {
    setOpen(false);
    if (refocus) (focusOnClose?.current ?? buttonRef.current)?.focus();
  };

  const onKey = (e: KeyboardEvent) => {
    if (e.key === "ArrowDown") setActive((a) => (a + 1) % items.length);
    else if (e.key === "ArrowUp") setActive((a) => (a - 1 + items.length) % items.length);
    else if (e.key === "Home") setActive(0);
    else if (e.key === "End") setActive(items.length - 1);
    else if (e.key === "Escape") close(true);
    else if (e.key === "Tab") close(false);
    else return;
    e.preventDefault();
    e.stopPropagation();
  };

  return (
    <div className="menu">
      <button
        ref={buttonRef}
        type="button"
        className={triggerClassName ?? "icon-btn icon-btn--md"}
        aria-label={label}
        title={label}
        tabIndex={triggerTabIndex}
        aria-haspopup="menu"
        aria-expanded={open}
        aria-controls={open ? id : undefined}
        onClick={() => {
          setActive(0);
          setOpen((o) => !o);
        }}
        onKeyDown={(e) => {
          if (e.key === "ArrowDown" || e.key === "ArrowUp") {
            e.preventDefault();
            setActive(e.key === "ArrowDown" ? 0 : items.length - 1);
            setOpen(true);
          }
        }}
      >
        {trigger}
      </button>
      {open && (
        <ul ref={listRef} id={id} role="menu" aria-label={label} className={`menu__list menu__list--${align}`} onKeyDown={onKey}>
          {items.map((item, i) => (
            <li key={item.label} role="none">
              <button
                type="button"
                role="menuitem"
                tabIndex={i === active ? 0 : -1}
                className={`menu__item ${item.danger ? "menu__item--danger" : ""}`}
                onClick={() => {
                  close(true);
                  item.onSelect();
                }}
              >
                {item.icon}
                {item.label}
              </button>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
