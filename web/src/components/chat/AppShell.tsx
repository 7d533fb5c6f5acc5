import { useCallback, useEffect, useRef, useState } from "react";
import { ChatProvider } from "../../contexts/ChatContext";
import { ToastProvider } from "../../contexts/ToastContext";
import { useMediaQuery } from "../../hooks/useMediaQuery";
import { ChatView } from "./ChatView";
import { focusComposer, Shortcuts } from "./Shortcuts";
import { Sidebar } from "./Sidebar";
import "./shell.css";

const COLLAPSED_KEY = "tidechat:sidebar-collapsed";

/**
 * The signed-in layout. Wide screens: a sidebar that can collapse (remembered).
 * Phones: the sidebar is a drawer over the chat, the chat inert behind it; the
 * drawer takes focus when it opens and gives it back to what opened it.
 */
export function AppShell() {
  const phone = useMediaQuery("(max-width: 768px)");
  const [collapsed, setCollapsed] = useState(() => localStorage.getItem(COLLAPSED_KEY) === "1");
  const [drawerOpen, setDrawerOpen] = useState(false);
  const [helpOpen, setHelpOpen] = useState(false);
  const sidebarRef = useRef<HTMLDivElement>(null);
  const opener = useRef<HTMLElement | null>(null);

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

  const openDrawer = useCallback(() => {
    opener.current = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    setDrawerOpen(true);
  }, []);
  // Into the drawer when it opens; back to its opener when it closes (unless focus went somewhere on purpose).
  useEffect(() => {
    if (!phone) return;
    if (drawerOpen) {
      sidebarRef.current?.querySelector<HTMLElement>("button, a[href], input")?.focus();
      return;
    }
    const active = document.activeElement;
    const lost = active === null || active === document.body || sidebarRef.current?.contains(active);
    if (lost && opener.current?.isConnected) opener.current.focus();
    opener.current = null;
  }, [drawerOpen, phone]);
  // Escape closes the drawer wherever focus is (menus and dialogs inside handle their own first).
  useEffect(() => {
    if (!phone || !drawerOpen) return;
    const onKey = (e: KeyboardEvent) => {
      if (e.key === "Escape" && !e.defaultPrevented && !document.querySelector("dialog[open], [role=menu]")) setDrawerOpen(false);
    };
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, [phone, drawerOpen]);

  const revealSidebar = useCallback(() => (phone ? openDrawer() : setCollapsed(false)), [phone, openDrawer]);

  const sidebarVisible = phone ? drawerOpen : !collapsed;
  const className = ["shell", phone ? "shell--phone" : "", sidebarVisible ? "shell--sidebar-open" : "shell--sidebar-closed"].join(" ");

  return (
    <ToastProvider>
      <ChatProvider>
        <a
          className="skip-link"
          href="#message-box"
          onClick={(e) => {
            e.preventDefault();
            if (phone) setDrawerOpen(false);
            focusComposer();
          }}
        >
          Skip to message box
        </a>
        <div className={className}>
          <div className="shell__sidebar" inert={!sidebarVisible} ref={sidebarRef}>
            <Sidebar
              isDrawer={phone}
              onClose={() => (phone ? setDrawerOpen(false) : setCollapsed(true))}
              onShowShortcuts={() => setHelpOpen(true)}
            />
          </div>
          {phone && drawerOpen && <div className="shell__backdrop" onClick={() => setDrawerOpen(false)} aria-hidden />}
          <div className="shell__main" inert={phone && drawerOpen}>
            {/* On a phone the header keeps its "Open sidebar" button under the drawer: focus returns to it. */}
            <ChatView sidebarHidden={phone || !sidebarVisible} onOpenSidebar={phone ? openDrawer : () => setCollapsed(false)} />
          </div>
        </div>
        <Shortcuts revealSidebar={revealSidebar} helpOpen={helpOpen} setHelpOpen={setHelpOpen} />
      </ChatProvider>
    </ToastProvider>
  );
}
