import { AppShell } from "./components/chat/AppShell";
import { AuthScreen } from "./components/chat/AuthScreen";
import { Spinner } from "./components/ui/Spinner";
import { useAuth } from "./contexts/AuthContext";

export function App() {
  const { user } = useAuth();
  if (user === undefined) {
    return (
      <div className="app-loading">
        <Spinner label="Loading tidechat" />
      </div>
    );
  }
  // Keyed by user: a different account never sees the previous one's state.
  return user ? <AppShell key={user.id} /> : <AuthScreen />;
}
