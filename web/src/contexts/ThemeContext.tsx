import { useCallback, useEffect, useMemo, useState, type ReactNode } from "react";
import { createStrictContext } from "./strictContext";

export type ThemePreference = "system" | "light" | "dark";

const KEY = "tidechat:theme";

interface ThemeValue {
  preference: ThemePreference;
  setPreference: (p: ThemePreference) => void;
}

const [ThemeContext, useTheme] = createStrictContext<ThemeValue>("Theme");
export { useTheme };

function readPreference(): ThemePreference {
  try {
    const value = localStorage.getItem(KEY);
    return value === "light" || value === "dark" ? value : "system";
  } catch {
    return "system";
  }
}

/** Light and dark via CSS variables: "system" follows prefers-color-scheme, the others pin it. */
export function ThemeProvider({ children }: { children: ReactNode }) {
  const [preference, setPreferenceState] = useState<ThemePreference>(readPreference);

  useEffect(() => {
    const root = document.documentElement;
    if (preference === "system") delete root.dataset.theme;
    else root.dataset.theme = preference;
    try {
      if (preference === "system") localStorage.removeItem(KEY);
      else localStorage.setItem(KEY, preference);
    } catch {
      // storage disabled: the choice lasts for this page only
    }
  }, [preference]);

  const setPreference = useCallback((p: ThemePreference) => setPreferenceState(p), []);
  const value = useMemo(() => ({ preference, setPreference }), [preference, setPreference]);
  return <ThemeContext.Provider value={value}>{children}</ThemeContext.Provider>;
}
