import { Monitor, Moon, Sun } from "lucide-react";
import { useTheme, type ThemePreference } from "../../contexts/ThemeContext";
import { IconButton } from "../ui/IconButton";

const NEXT: Record<ThemePreference, ThemePreference> = { system: "light", light: "dark", dark: "system" };
const LABEL: Record<ThemePreference, string> = { system: "System theme", light: "Light theme", dark: "Dark theme" };

/** Cycles system → light → dark; the choice is kept in localStorage. */
export function ThemeToggle() {
  const { preference, setPreference } = useTheme();
  const Icon = preference === "light" ? Sun : preference === "dark" ? Moon : Monitor;
  return (
    <IconButton label={`${LABEL[preference]} (switch to ${LABEL[NEXT[preference]].toLowerCase()})`} onClick={() => setPreference(NEXT[preference])}>
      <Icon size={18} />
    </IconButton>
  );
}
