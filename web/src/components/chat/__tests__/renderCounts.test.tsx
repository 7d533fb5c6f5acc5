/**
 * While a reply streams, only what shows the reply should re-render. The
 * whole signed-in tree is mounted on a fake socket and a fake HTTP API, a
 * reply is streamed chunk by chunk (each chunk its own batch, as a slow model
 * sends them), and each component's renders are counted. (A wrapper that
 * calls the component as a function owns its hooks, so it renders exactly
 * when the component would; React's Profiler reports fewer commits than
 * renders inside act().)
 */
import { act, cleanup, render, screen } from "@testing-library/react";
import { memo, type MemoExoticComponent, type ReactNode } from "react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { AuthProvider } from "../../../contexts/AuthContext";
import { ChatProvider } from "../../../contexts/ChatContext";
import { ThemeProvider } from "../../../contexts/ThemeContext";
import { ToastProvider } from "../../../contexts/ToastContext";
import { FakeSocket } from "../../../net/__tests__/fakeSocket";
import { ev, msg, resetIds, view } from "../../../state/__tests__/fixtures";
import { ChatView } from "../ChatView";
import { ConnectionStatus } from "../ConnectionStatus";
import { Sidebar } from "../Sidebar";

const CONV = "conv1";
const question = msg("u1", "user", "Tell me a story", { created_at: 200 });
const loaded = view(CONV, { title: "A story", messages: { u1: question }, current_id: "u1" });

function json(body: unknown): Response {
  return new Response(JSON.stringify(body), { status: 200, headers: { "Content-Type": "application/json" } });
}

function fakeApi(url: string): Response {
  const path = new URL(url, "http://test").pathname;
  if (path === "/api/auth/me") return json({ id: "u", username: "ann" });
  if (path === "/api/models") return json({ models: [{ id: "scripted", label: "Scripted", default: true }] });
  if (path === "/api/conversations") {
    const summary = { id: CONV, title: "A story", model: "scripted", created_at: 100, updated_at: 200 };
    return json({ items: [summary], next_cursor: null });
  }
  if (path === `/api/conversations/${CONV}`) return json(loaded);
  return new Response("{}", { status: 404 });
}

const commits: Record<string, number> = {};
type Component<P> = (props: P) => ReactNode;
/** Count a component's renders; a memo() component stays memoized (its inner function is counted). */
function counted<P extends object>(name: string, component: Component<P> | MemoExoticComponent<Component<P>>) {
  const inner = "type" in component ? component.type : component;
  const wrapper = (props: P) => {
    commits[name] = (commits[name] ?? 0) + 1;
    return inner(props);
  };
  return "type" in component ? memo(wrapper) : wrapper;
}
const CountedSidebar = counted("Sidebar", Sidebar);
const CountedConnectionStatus = counted("ConnectionStatus", ConnectionStatus);
const CountedChatView = counted("ChatView", ChatView);

// Children of ChatView that only need a slice (the title and menu; the text box) are counted in place.
vi.mock("../ChatHeader", async (importOriginal) => {
  const real = await importOriginal<typeof import("../ChatHeader")>();
  return { ...real, ChatHeader: counted("ChatHeader", real.ChatHeader) };
});
vi.mock("../Composer", async (importOriginal) => {
  const real = await importOriginal<typeof import("../Composer")>();
  return { ...real, Composer: counted("Composer", real.Composer) };
});

const wait = (ms: number) => act(() => new Promise<void>((r) => setTimeout(r, ms)));

describe("render counts while a reply streams", () => {
  beforeEach(() => {
    resetIds();
    for (const key of Object.keys(commits)) delete commits[key];
    FakeSocket.all = [];
    sessionStorage.clear();
    window.history.replaceState(null, "", `/c/${CONV}`);
    vi.stubGlobal("WebSocket", FakeSocket);
    vi.stubGlobal("fetch", vi.fn((input: RequestInfo | URL) => Promise.resolve(fakeApi(String(input)))));
    vi.stubGlobal("matchMedia", (q: string) => ({ matches: false, media: q, addEventListener() {}, removeEventListener() {} }));
    Element.prototype.scrollTo = function () {}; // jsdom has no layout
    vi.stubGlobal("ResizeObserver", class { observe() {} unobserve() {} disconnect() {} });
  });
  afterEach(() => {
    cleanup();
    vi.unstubAllGlobals();
  });

  it("Sidebar and ConnectionStatus do not re-render per chunk; the chat does", async () => {
    render(
      <ThemeProvider>
        <AuthProvider>
          <ToastProvider>
            <ChatProvider>
              <CountedSidebar isDrawer={false} onClose={() => {}} />
              <CountedConnectionStatus />
              <CountedChatView sidebarHidden={false} onOpenSidebar={() => {}} />
            </ChatProvider>
          </ToastProvider>
        </AuthProvider>
      </ThemeProvider>,
    );
    await screen.findByRole("link", { name: "A story" });
    await wait(20);
    const socket = FakeSocket.all[0]!;
    await act(async () => {
      socket.open();
      socket.hello();
    });
    await act(async () =>
      socket.receive(ev.start({ turn_id: "t1", conversation_id: CONV, message_id: "a1", parent_id: "u1", model: "scripted" })),
    );
    await wait(40);

    const before = { ...commits };
    const CHUNKS = 30;
    for (let i = 0; i < CHUNKS; i++) {
      // act() commits once when its scope ends: one chunk per scope, past the socket hook's 16 ms batch.
      await act(async () => {
        socket.receive(ev.chunk("t1", `word${i} `));
        await new Promise<void>((r) => setTimeout(r, 25));
      });
    }
    const during = Object.fromEntries(Object.keys(commits).map((k) => [k, (commits[k] ?? 0) - (before[k] ?? 0)]));
    // Before the split (one context for all chat state) every one of these rendered 30 times.
    console.info(`renders during ${CHUNKS} streamed chunks: ${JSON.stringify(during)}`);

    expect(during.ChatView).toBeGreaterThanOrEqual(CHUNKS / 2);
    expect(during.Sidebar ?? 0).toBe(0);
    expect(during.ConnectionStatus ?? 0).toBe(0);
    expect(during.ChatHeader ?? 0).toBe(0);
    expect(during.Composer ?? 0).toBe(0);
  });
});
