import { useState } from "react";
import { api, ApiError } from "../../api/client";
import { useAuth } from "../../contexts/AuthContext";
import { AuthCard, AuthForm } from "./AuthCard";

/** Signed in with a one-time password an admin set: choose your own before anything else. */
export function ChoosePassword() {
  const { user, recheck, logout } = useAuth();
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async () => {
    if (next.length < 8) {
      setError("Use at least 8 characters for your password.");
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await api.changePassword(current, next);
      await recheck();
    } catch (exc) {
      setError(exc instanceof ApiError ? exc.message : "Something went wrong.");
      setBusy(false);
    }
  };
  return (
    <AuthCard
      title="Choose your password"
      subtitle={<>{user?.username}, you signed in with a one-time password from an admin. Choose your own to continue.</>}
    >
      <AuthForm onSubmit={submit} error={error} busy={busy} filled={!!current && !!next} submitLabel="Save and continue">
        <label className="field">
          <span>One-time password</span>
          <input type="password" autoComplete="current-password" required value={current} onChange={(e) => setCurrent(e.target.value)} />
        </label>
        <label className="field">
          <span>New password</span>
          <input type="password" autoComplete="new-password" required value={next} onChange={(e) => setNext(e.target.value)} />
        </label>
      </AuthForm>
      <p className="auth__switch">
        <button type="button" className="link-button" onClick={() => void logout()}>
          Log out
        </button>
      </p>
    </AuthCard>
  );
}
