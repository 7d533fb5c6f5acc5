import { useState } from "react";
import { ToastProvider } from "../../contexts/ToastContext";
import { PageHeader } from "../ui/PageHeader";
import { Toasts } from "../chat/Toasts";
import { AuditPanel } from "./AuditPanel";
import { GroupsPanel } from "./GroupsPanel";
import { ModerationPanel } from "./ModerationPanel";
import { RetentionPanel } from "./RetentionPanel";
import { UsagePanel } from "./UsagePanel";
import { UsersPanel } from "./UsersPanel";
import "./admin.css";

const TABS = [
  { id: "users", label: "Users" },
  { id: "groups", label: "Groups & models" },
  { id: "usage", label: "Usage" },
  { id: "audit", label: "Audit log" },
  { id: "moderation", label: "Moderation" },
  { id: "retention", label: "Retention" },
] as const;
type Tab = (typeof TABS)[number]["id"];

function tabFromHash(): Tab {
  const wanted = window.location.hash.slice(1);
  return TABS.find((t) => t.id === wanted)?.id ?? "users";
}

/** `/admin`: the console (admins only; the API refuses anyone else anyway). */
export function AdminConsole() {
  const [tab, setTab] = useState<Tab>(tabFromHash);
  const choose = (next: Tab) => {
    setTab(next);
    window.history.replaceState(null, "", `/admin#${next}`);
  };
  return (
    <ToastProvider>
      <div className="admin">
        <PageHeader title="Admin console" />
        <nav className="admin__tabs" role="tablist" aria-label="Console sections">
          {TABS.map((t) => (
            <button
              key={t.id}
              role="tab"
              type="button"
              aria-selected={tab === t.id}
              className={`admin__tab ${tab === t.id ? "admin__tab--on" : ""}`}
              onClick={() => choose(t.id)}
            >
              {t.label}
            </button>
          ))}
        </nav>
        <main className="admin__main" role="tabpanel">
          {tab === "users" && <UsersPanel />}
          {tab === "groups" && <GroupsPanel />}
          {tab === "usage" && <UsagePanel />}
          {tab === "audit" && <AuditPanel />}
          {tab === "moderation" && <ModerationPanel />}
          {tab === "retention" && <RetentionPanel />}
        </main>
      </div>
      <Toasts />
    </ToastProvider>
  );
}
