import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";
import { AuthProvider } from "./contexts/AuthContext";
import { ThemeProvider } from "./contexts/ThemeContext";
import { trackFocusSource } from "./focusSource";
import { claimTabSession } from "./net/tabClaim";
import "./styles/theme.css";
import "./styles/base.css";

trackFocusSource();

// A duplicated tab must not share its original's session: settle that before anything reads it.
void claimTabSession().then(() =>
  createRoot(document.getElementById("root")!).render(
    <StrictMode>
      <ThemeProvider>
        <AuthProvider>
          <App />
        </AuthProvider>
      </ThemeProvider>
    </StrictMode>,
  ),
);
