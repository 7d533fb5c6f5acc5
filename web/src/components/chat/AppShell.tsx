import { useEffect, useState } from "react";
import { ChatProvider } from "../../contexts/ChatContext";
import { ToastProvider } from "../../contexts/ToastContext";
import { useMediaQuery } from "../../hooks/useMediaQuery";
import { ChatView } from "./ChatView";
import { Sidebar } from "./Sidebar";
import "./shell.css";

const COLLAPSED_KEY = "tidechat:sidebar-collapsed";

/**
 * The signed-in layout. Wide screens: a sidebar that can collapse (remembered).
 * Phones: the sidebar is a drawer over the chat, the chat inert behind it.
 */
export function AppShell() {
  const phone = useMediaQuery("(max-width: 768px)");
  const [collapsed, setCollapsed] = useState(() => localStorage.getItem(COLLAPSED_KEY) === "1");
  const [drawerOpen, setDrawerOpen] = useState(false);

  useEffect(() => {
    try {
      localStorage.setItem(COLLAPSED_KEY, collapsed ? "1" : "0");
    } catch {
      // not remembered, that's all
    }
  }, [collapsed]);
  useEffect(() => {
    if (!phone) setDrawerOpen(false);
  }, [phone]);
  useEffect(() => {
    void import("./Markdown"); // fetch the renderer now, before the first message needs it
  }, []);

  const sidebarVisible = phone ? drawerOpen : !collapsed;
  const className = ["shell", phone ? "shell--phone" : "", sidebarVisible ? "shell--sidebar-open" : "shell--sidebar-closed"].join(" ");

  return (
    <ToastProvider>
      <ChatProvider>
        <div className={className}>
          <div className="shell__sidebar" inert={!sidebarVisible}>
            <Sidebar isDrawer={phone} onClose={() => (phone ? setDrawerOpen(false) : setCollapsed(true))} />
          </div>
          {phone && drawerOpen && <div className="shell__backdrop" onClick={() => setDrawerOpen(false)} aria-hidden />}
          <div className="shell__main" inert={phone && drawerOpen}>
            <ChatView sidebarHidden={!sidebarVisible} onOpenSidebar={() => (phone ? setDrawerOpen(true) : setCollapsed(false))} />
          </div>
        </div>
      </ChatProvider>
    </ToastProvider>
  );
}
