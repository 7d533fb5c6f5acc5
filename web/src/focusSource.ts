/**
 * Whether the user is moving around with Tab (data-focus-source="keyboard" on
 * <html>) or the pointer. Text fields always match :focus-visible, so a box
 * that wraps one (the composer) shows its ring only for keyboard navigation.
 */
export function trackFocusSource(root: HTMLElement = document.documentElement): () => void {
  const keyboard = (e: KeyboardEvent) => {
    if (e.key === "Tab") root.dataset.focusSource = "keyboard";
  };
  const pointer = () => {
    root.dataset.focusSource = "pointer";
  };
  document.addEventListener("keydown", keyboard, true);
  document.addEventListener("pointerdown", pointer, true);
  return () => {
    document.removeEventListener("keydown", keyboard, true);
    document.removeEventListener("pointerdown", pointer, true);
  };
}
