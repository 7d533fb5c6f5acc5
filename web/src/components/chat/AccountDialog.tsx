import { useCallback, useEffect, useId, useState, type FormEvent } from "react";
import { api, ApiError } from "../../api/client";
import type { SignIn } from "../../api/types";
import { describeUserAgent } from "../../state/userAgent";
import { Button } from "../ui/Button";
import { Dialog } from "../ui/Dialog";
import "./account.css";

export interface AccountDialogProps {
  open: boolean;
  onClose: () => void;
}

const when = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

function lastActive(signIn: SignIn, now: number): string {
  const seconds = now / 1000 - signIn.last_used_at;
  if (signIn.current || seconds < 120) return "Active now";
  return `Last active ${when.format(signIn.last_used_at * 1000)}`;
}

function passwordError(error: unknown): string {
  if (!(error instanceof ApiError)) return "Something went wrong. Please try again.";
  if (error.status === 401) return "The current password is wrong.";
  if (error.status === 429) return error.retryAfter !== null ? `Too many attempts. Try again in ${error.retryAfter} seconds.` : "Too many attempts. Try again later.";
  return error.message;
}

/** The account: change the password, see where it is signed in, end a sign-in. */
export function AccountDialog({ open, onClose }: AccountDialogProps) {
  const [signIns, setSignIns] = useState<SignIn[] | null>(null);
  const [listError, setListError] = useState<string | null>(null);
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [repeat, setRepeat] = useState("");
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<{ kind: "error" | "done"; text: string } | null>(null);
  const messageId = useId();

  const load = useCallback(async () => {
    try {
      // This browser first, then the most recently used.
      const { sessions } = await api.signIns();
      setSignIns([...sessions].sort((a, b) => Number(b.current) - Number(a.current) || b.last_used_at - a.last_used_at));
      setListError(null);
    } catch {
      setListError("Couldn't load your sign-ins.");
    }
  }, []);

  useEffect(() => {
    if (!open) return;
    setCurrent("");
    setNext("");
    setRepeat("");
    setMessage(null);
    void load();
  }, [open, load]);

  const mismatch = repeat !== "" && next !== repeat;

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (next.length < 8) {
      setMessage({ kind: "error", text: "The new password needs at least 8 characters." });
      return;
    }
    if (mismatch) return;
    setBusy(true);
    try {
      await api.changePassword(current, next);
      setCurrent("");
      setNext("");
      setRepeat("");
      setMessage({ kind: "done", text: "Password changed. You were signed out everywhere else." });
      await load();
    } catch (exc) {
      setMessage({ kind: "error", text: passwordError(exc) });
    } finally {
      setBusy(false);
    }
  };

  const end = async (signIn: SignIn) => {
    try {
      await api.endSignIn(signIn.id);
    } catch {
      setListError("Couldn't end that sign-in. Please try again.");
    }
    await load();
  };

  const now = Date.now();
  return (
    <Dialog open={open} title="Account" onClose={onClose} className="dialog--wide account" footer={<Button onClick={onClose}>Close</Button>}>
      <section aria-labelledby="account-password">
        <h3 id="account-password" className="account__heading">
          Change password
        </h3>
        <form className="account__form" onSubmit={submit} aria-describedby={message ? messageId : undefined}>
          <label className="field">
            <span>Current password</span>
            <input type="password" autoComplete="current-password" value={current} onChange={(e) => setCurrent(e.target.value)} required />
          </label>
          <label className="field">
            <span>New password</span>
            <input type="password" autoComplete="new-password" minLength={8} value={next} onChange={(e) => setNext(e.target.value)} required />
          </label>
          <label className="field">
            <span>Repeat new password</span>
            <input
              type="password"
              autoComplete="new-password"
              value={repeat}
              aria-invalid={mismatch}
              onChange={(e) => setRepeat(e.target.value)}
              required
            />
          </label>
          {mismatch && <p className="account__hint">The new passwords don't match.</p>}
          {message && (
            <p id={messageId} className={`account__message account__message--${message.kind}`} role={message.kind === "error" ? "alert" : "status"}>
              {message.text}
            </p>
          )}
          <div>
            <Button type="submit" variant="primary" disabled={busy || !current || !next || !repeat || mismatch}>
              Change password
            </Button>
          </div>
        </form>
      </section>
      <section aria-labelledby="account-signins">
        <h3 id="account-signins" className="account__heading">
          Where you're signed in
        </h3>
        {listError && (
          <p className="account__message account__message--error" role="alert">
            {listError}
          </p>
        )}
        <ul className="account__signins" aria-label="Sign-ins">
          {(signIns ?? []).map((s) => (
            <li key={s.id} className="account__signin">
              <div>
                <div className="account__device">
                  {describeUserAgent(s.user_agent)}
                  {s.current && <span className="account__badge">This browser</span>}
                </div>
                <div className="account__meta">
                  Signed in {when.format(s.created_at * 1000)} · {lastActive(s, now)}
                </div>
              </div>
              {!s.current && (
                <Button size="sm" variant="danger" onClick={() => void end(s)} aria-label={`Sign out ${describeUserAgent(s.user_agent)}, signed in ${when.format(s.created_at * 1000)}`}>
                  Sign out
                </Button>
              )}
            </li>
          ))}
        </ul>
      </section>
    </Dialog>
  );
}
