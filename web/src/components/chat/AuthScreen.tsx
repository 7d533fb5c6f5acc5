import { Waves } from "lucide-react";
import { useEffect, useId, useRef, useState } from "react";
import { api, ApiError, authErrorMessage } from "../../api/client";
import { useAuth } from "../../contexts/AuthContext";
import { Button } from "../ui/Button";
import "./auth.css";

type Mode = "login" | "signup";
type Field = "username" | "password";

/** The server's minimum (gateway/auth.py), checked here first so the answer is instant. */
const MIN_PASSWORD = 8;

/** Which field an error is about, so only that one is marked (both for a failed log-in: we can't tell). */
function fieldsOf(exc: unknown, mode: Mode): Field[] {
  if (!(exc instanceof ApiError)) return [];
  if (exc.status === 409) return ["username"];
  if (exc.status === 401) return ["username", "password"];
  if (mode === "signup" && exc.status === 400) {
    if (/password/i.test(exc.message)) return ["password"];
    if (/username/i.test(exc.message)) return ["username"];
  }
  return [];
}

/** Log in or create an account; errors in words a person understands. */
export function AuthScreen() {
  const { login, signup } = useAuth();
  const [mode, setMode] = useState<Mode>("login");
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<{ message: string; fields: Field[] } | null>(null);
  const [busy, setBusy] = useState(false);
  // Whether the server said if anyone has an account yet (data-ready: tests wait for it).
  const [ready, setReady] = useState(false);
  const touched = useRef(false);
  const errorId = useId();

  // A fresh install has no account yet: open on sign-up (the first account is the admin).
  useEffect(() => {
    let alive = true;
    api
      .authStatus()
      .then((s) => {
        if (alive && !s.has_users && !touched.current) setMode("signup");
      })
      .catch(() => {})
      .finally(() => alive && setReady(true));
    return () => {
      alive = false;
    };
  }, []);

  const submit = async () => {
    if (mode === "signup" && password.length < MIN_PASSWORD) {
      setError({ message: `Use at least ${MIN_PASSWORD} characters for your password.`, fields: ["password"] });
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await (mode === "login" ? login(username.trim(), password) : signup(username.trim(), password));
    } catch (exc) {
      setError({ message: authErrorMessage(exc, mode), fields: fieldsOf(exc, mode) });
      setBusy(false);
    }
  };
  const invalid = (field: Field) => (error?.fields.includes(field) ? true : undefined);
  const describedBy = (field: Field) => (error?.fields.includes(field) ? errorId : undefined);

  return (
    <main className="auth" data-ready={ready || undefined}>
      <div className="auth__card">
        <div className="auth__logo" aria-hidden>
          <Waves size={26} />
        </div>
        <h1 className="auth__title">{mode === "login" ? "Welcome back" : "Create your account"}</h1>
        <p className="auth__subtitle">{mode === "login" ? "Log in to tidechat to continue." : "Sign up to start chatting."}</p>
        <form
          className="auth__form"
          onSubmit={(e) => {
            e.preventDefault();
            void submit();
          }}
        >
          <label className="field">
            <span>Username</span>
            <input
              name="username"
              autoComplete="username"
              autoCapitalize="none"
              spellCheck={false}
              required
              autoFocus
              value={username}
              onChange={(e) => setUsername(e.target.value)}
              aria-invalid={invalid("username")}
              aria-describedby={describedBy("username")}
            />
          </label>
          <label className="field">
            <span>Password</span>
            <input
              name="password"
              type="password"
              autoComplete={mode === "login" ? "current-password" : "new-password"}
              required
              value={password}
              onChange={(e) => setPassword(e.target.value)}
              aria-invalid={invalid("password")}
              aria-describedby={describedBy("password")}
            />
          </label>
          {error && (
            <p id={errorId} className="auth__error" role="alert">
              {error.message}
            </p>
          )}
          <Button type="submit" variant="primary" disabled={busy || !username.trim() || !password} className="auth__submit">
            {busy ? "Please wait…" : mode === "login" ? "Log in" : "Sign up"}
          </Button>
        </form>
        <p className="auth__switch">
          {mode === "login" ? "No account yet?" : "Already have an account?"}{" "}
          <button
            type="button"
            className="link-button"
            onClick={() => {
              touched.current = true;
              setMode(mode === "login" ? "signup" : "login");
              setError(null);
            }}
          >
            {mode === "login" ? "Sign up" : "Log in"}
          </button>
        </p>
      </div>
    </main>
  );
}
