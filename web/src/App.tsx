import { lazy, Suspense } from "react";
import { AppShell } from "./components/chat/AppShell";
import { AuthScreen } from "./components/chat/AuthScreen";
import { ChoosePassword } from "./components/chat/ChoosePassword";
import { Spinner } from "./components/ui/Spinner";
import { useAuth } from "./contexts/AuthContext";

const KnowledgePage = lazy(() => import("./components/knowledge/KnowledgePage").then((m) => ({ default: m.KnowledgePage })));
const AdminConsole = lazy(() => import("./components/admin/AdminConsole").then((m) => ({ default: m.AdminConsole })));

function loading(label: string) {
  return (
    <div className="app-loading">
      <Spinner label={label} />
    </div>
  );
}

export function App() {
  const { user } = useAuth();
  if (user === undefined) return loading("Loading tidechat");
  if (!user) return <AuthScreen />;
  if (user.must_change_password) return <ChoosePassword />;
  const path = window.location.pathname.replace(/\/$/, "");
  if (path === "/knowledge") {
    return <Suspense fallback={loading("Loading your knowledge")}>{<KnowledgePage key={user.id} />}</Suspense>;
  }
  if (path === "/admin" && user.is_admin) {
    return <Suspense fallback={loading("Loading the admin console")}>{<AdminConsole key={user.id} />}</Suspense>;
  }
  // Keyed by user: a different account never sees the previous one's state.
  return <AppShell key={user.id} />;
}
