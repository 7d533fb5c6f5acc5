import { useCallback, useEffect, useMemo, useState, type ReactNode } from "react";
import { api, ApiError } from "../api/client";
import type { User } from "../api/types";
import { STORAGE_KEYS, safeRemove } from "../net/session";
import { createStrictContext } from "./strictContext";

interface AuthValue {
  /** undefined while the first /api/auth/me is in flight. */
  user: User | null | undefined;
  login: (username: string, password: string) => Promise<void>;
  signup: (username: string, password: string, invite?: string) => Promise<void>;
  logout: () => Promise<void>;
  /** The server said the session is gone (e.g. the socket was refused): check, and show log-in if so. */
  recheck: (reason?: string) => Promise<void>;
  /** Why the last session ended, when the server said (shown on the sign-in page). */
  signedOutReason: string | null;
}

const [AuthContext, useAuth] = createStrictContext<AuthValue>("Auth");
export { useAuth };

/** Forget what this tab kept for the previous user. */
function clearTabState(): void {
  for (const key of Object.values(STORAGE_KEYS)) safeRemove(sessionStorage, key);
}

export function AuthProvider({ children }: { children: ReactNode }) {
  const [user, setUser] = useState<User | null | undefined>(undefined);
  const [signedOutReason, setSignedOutReason] = useState<string | null>(null);

  const recheck = useCallback(async (reason?: string) => {
    try {
      setUser(await api.me());
    } catch (exc) {
      if (exc instanceof ApiError && (exc.status === 401 || exc.status === 403)) {
        // The plain "signed out" (a log-out elsewhere) needs no explaining.
        setSignedOutReason(reason && !/^you have been signed out$/i.test(reason) ? reason : null);
        setUser(null);
      }
      // Other failures (server restarting) keep what we had: the socket retries anyway.
      else setUser((u) => (u === undefined ? null : u));
    }
  }, []);

  useEffect(() => {
    void recheck();
  }, [recheck]);

  const login = useCallback(async (username: string, password: string) => {
    const { user: u } = await api.login(username, password);
    clearTabState();
    setSignedOutReason(null);
    setUser(u);
  }, []);

  const signup = useCallback(async (username: string, password: string, invite?: string) => {
    const { user: u } = await api.signup(username, password, invite);
    clearTabState();
    setUser(u);
  }, []);

  const logout = useCallback(async () => {
    try {
      await api.logout();
    } finally {
      clearTabState();
      setUser(null);
    }
  }, []);

  const value = useMemo(
    () => ({ user, login, signup, logout, recheck, signedOutReason }),
    [user, login, signup, logout, recheck, signedOutReason],
  );
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}
