import { Waves } from "lucide-react";
import type { ReactNode } from "react";
import { Button } from "../ui/Button";
import "./auth.css";

interface AuthCardProps {
  title: string;
  subtitle: ReactNode;
  /** The tidechat waves above the title (the sign-in screen shows them). */
  logo?: boolean;
  /** data-ready on <main>, for tests waiting for the screen to settle. */
  ready?: boolean;
  children: ReactNode;
}

/** The centred card of the screens before the app: sign in / sign up, choose a password. */
export function AuthCard({ title, subtitle, logo = false, ready, children }: AuthCardProps) {
  return (
    <main className="auth" data-ready={ready || undefined}>
      <div className="auth__card">
        {logo && (
          <div className="auth__logo" aria-hidden>
            <Waves size={26} />
          </div>
        )}
        <h1 className="auth__title">{title}</h1>
        <p className="auth__subtitle">{subtitle}</p>
        {children}
      </div>
    </main>
  );
}

interface AuthFormProps {
  onSubmit: () => Promise<void>;
  /** Shown under the fields as an alert; errorId lets fields point at it (aria-describedby). */
  error: string | null;
  errorId?: string;
  busy: boolean;
  /** Every required field is filled. */
  filled: boolean;
  submitLabel: string;
  children: ReactNode;
}

/** The fields, then the error and the submit button ("Please wait…" while busy). */
export function AuthForm({ onSubmit, error, errorId, busy, filled, submitLabel, children }: AuthFormProps) {
  return (
    <form
      className="auth__form"
      onSubmit={(e) => {
        e.preventDefault();
        void onSubmit();
      }}
    >
      {children}
      {error && (
        <p id={errorId} className="auth__error" role="alert">
          {error}
        </p>
      )}
      <Button type="submit" variant="primary" disabled={busy || !filled} className="auth__submit">
        {busy ? "Please wait…" : submitLabel}
      </Button>
    </form>
  );
}
