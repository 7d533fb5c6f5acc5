import { useEffect } from "react";
import { useChatActions } from "../../contexts/ChatContext";
import { Button } from "../ui/Button";
import { Dialog } from "../ui/Dialog";

/** Every keyboard shortcut, as the help dialog lists them. */
export const SHORTCUTS: { keys: string[]; does: string }[] = [
  { keys: ["Ctrl", "Shift", "O"], does: "New chat" },
  { keys: ["Ctrl", "K"], does: "Search conversations" },
  { keys: ["Shift", "Esc"], does: "Focus the message box" },
  { keys: ["Enter"], does: "Send the message" },
  { keys: ["Shift", "Enter"], does: "New line in the message" },
  { keys: ["Esc"], does: "Stop the reply" },
  { keys: ["F2"], does: "Rename the focused conversation" },
  { keys: ["Shift", "F10"], does: "Options of the focused conversation" },
  { keys: ["Ctrl", "/"], does: "Show these shortcuts" },
];

export function focusComposer(): void {
  document.querySelector<HTMLTextAreaElement>("textarea[aria-label='Message']")?.focus();
}

export interface ShortcutsProps {
  /** Make the sidebar visible (expand it, or open the drawer on a phone) before its search box takes focus. */
  revealSidebar: () => void;
  helpOpen: boolean;
  setHelpOpen: (open: boolean) => void;
}

/**
 * The app's shortcuts (Ctrl or ⌘), and the dialog that lists them. Keys a
 * browser keeps for itself are avoided (Ctrl+N, Ctrl+T); these are the ones
 * ChatGPT users already know.
 */
export function Shortcuts({ revealSidebar, helpOpen, setHelpOpen }: ShortcutsProps) {
  const { open } = useChatActions();

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const mod = e.ctrlKey || e.metaKey;
      const key = e.key.toLowerCase();
      if (mod && e.shiftKey && key === "o") {
        open(null);
        requestAnimationFrame(focusComposer);
      } else if (mod && !e.shiftKey && key === "k") {
        revealSidebar();
        requestAnimationFrame(() => document.querySelector<HTMLInputElement>("input[aria-label='Search conversations']")?.focus());
      } else if (e.shiftKey && e.key === "Escape" && !document.querySelector("dialog[open]")) {
        focusComposer();
      } else if (mod && (e.key === "/" || e.code === "Slash")) {
        setHelpOpen(true);
      } else {
        return;
      }
      e.preventDefault();
    };
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, [open, revealSidebar, setHelpOpen]);

  return (
    <Dialog
      open={helpOpen}
      title="Keyboard shortcuts"
      onClose={() => setHelpOpen(false)}
      footer={
        <Button variant="primary" onClick={() => setHelpOpen(false)}>
          Close
        </Button>
      }
    >
      <p>On a Mac, ⌘ works wherever Ctrl is listed.</p>
      <table className="shortcuts">
        <tbody>
          {SHORTCUTS.map((s) => (
            <tr key={s.does}>
              <th scope="row">{s.does}</th>
              <td>
                {s.keys.map((k, i) => (
                  <span key={k}>
                    {i > 0 && " + "}
                    <kbd>{k}</kbd>
                  </span>
                ))}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </Dialog>
  );
}
