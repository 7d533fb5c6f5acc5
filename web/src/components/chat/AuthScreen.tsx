import { Waves } from "lucide-react";
import { useId, useState } from "react";
import { authErrorMessage } from "../../api/client";
import { useAuth } from "../../contexts/AuthContext";
import { Button } from "../ui/Button";
import "./auth.css";

type Mode = "login" | "signup";

/** Log in or create an account; errors in words a person understands. */
export function AuthScreen() {
  const { login, signup } = useAuth();
  const [mode, setMode] = useState<Mode>("login");
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const errorId = useId();

  const submit = async () => {
    setBusy(true);
    setError(null);
    try {
      await (mode === "login" ? login(username.trim(), password) : signup(username.trim(), password));
    } catch (exc) {
      setError(authErrorMessage(exc, mode));
      setBusy(false);
    }
  };

  return (
    <main className="auth">
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
          aria-describedby={error ? errorId : undefined}
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
              aria-invalid={error ? true : undefined}
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
              aria-invalid={error ? true : undefined}
            />
          </label>
          {error && (
            <p id={errorId} className="auth__error" role="alert">
              {error}
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
