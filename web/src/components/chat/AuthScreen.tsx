import { useEffect, useId, useRef, useState } from "react";
import { api, ApiError, authErrorMessage } from "../../api/client";
import type { AuthStatus } from "../../api/types";
import { useAuth } from "../../contexts/AuthContext";
import { AuthCard, AuthForm } from "./AuthCard";

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

/** The token of an invite link (`/invite#<token>`: the fragment never reaches a server log). */
function inviteToken(): string | null {
  if (window.location.pathname.replace(/\/$/, "") !== "/invite") return null;
  const token = window.location.hash.slice(1);
  return token || null;
}

/** What the page says about signing up, by the mode an admin set. */
function signupNote(status: AuthStatus | null): string | null {
  if (!status?.has_users) return null;
  if (status.signup_mode === "closed") return "Sign-up is closed on this server. Ask its admin for an account.";
  if (status.signup_mode === "invite_only") return "Sign-up is by invitation: open the invite link an admin sent you.";
  return null;
}

/** Log in or create an account; errors in words a person understands. */
export function AuthScreen() {
  const { login, signup, signedOutReason } = useAuth();
  const [invite] = useState(inviteToken);
  const [invitedName, setInvitedName] = useState<string | null>(null);
  const [inviteError, setInviteError] = useState<string | null>(null);
  const [status, setStatus] = useState<AuthStatus | null>(null);
  const [mode, setMode] = useState<Mode>(invite ? "signup" : "login");
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
        if (!alive) return;
        setStatus(s);
        if (!s.has_users && !touched.current) setMode("signup");
      })
      .catch(() => {})
      .finally(() => alive && setReady(true));
    return () => {
      alive = false;
    };
  }, []);

  useEffect(() => {
    if (!invite) return;
    api
      .invite(invite)
      .then((i) => {
        setInvitedName(i.username);
        if (i.username) setUsername(i.username);
      })
      .catch(() => setInviteError("This invite link does not work any more (used or expired). Ask for a new one."));
  }, [invite]);

  // Sign-up is offered when the server takes it: open, a fresh install, or an invite link.
  const canSignUp = invite !== null || !status || !status.has_users || status.signup_mode === "open";
  const note = invite ? null : signupNote(status);

  const submit = async () => {
    if (mode === "signup" && password.length < MIN_PASSWORD) {
      setError({ message: `Use at least ${MIN_PASSWORD} characters for your password.`, fields: ["password"] });
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await (mode === "login" ? login(username.trim(), password) : signup(username.trim(), password, invite ?? undefined));
      if (invite) window.history.replaceState(null, "", "/");
    } catch (exc) {
      setError({ message: authErrorMessage(exc, mode), fields: fieldsOf(exc, mode) });
      setBusy(false);
    }
  };
  const invalid = (field: Field) => (error?.fields.includes(field) ? true : undefined);
  const describedBy = (field: Field) => (error?.fields.includes(field) ? errorId : undefined);

  return (
    <AuthCard
      logo
      ready={ready}
      title={mode === "login" ? "Welcome back" : "Create your account"}
      subtitle={mode === "login" ? "Log in to tidechat to continue." : invite ? "You have been invited to tidechat." : "Sign up to start chatting."}
    >
      {signedOutReason && !error && (
        <p className="auth__note auth__note--top" role="status" data-testid="signed-out-reason">
          You were signed out: {signedOutReason}.
        </p>
      )}
      {inviteError && (
        <p className="auth__error" role="alert">
          {inviteError}
        </p>
      )}
      <AuthForm
        onSubmit={submit}
        error={error?.message ?? null}
        errorId={errorId}
        busy={busy}
        filled={!!username.trim() && !!password}
        submitLabel={mode === "login" ? "Log in" : "Sign up"}
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
            readOnly={mode === "signup" && invitedName !== null}
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
      </AuthForm>
      {note && (
        <p className="auth__note" data-testid="signup-note">
          {note}
        </p>
      )}
      {(canSignUp || mode === "signup") && (
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
      )}
    </AuthCard>
  );
}
