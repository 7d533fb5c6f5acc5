import { render, renderHook } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import { useChatActions, useChatStatus, useChatStore } from "../ChatContext";
import { useToast } from "../ToastContext";
import { useAuth } from "../AuthContext";
import { ThemeProvider, useTheme } from "../ThemeContext";

describe("context hooks", () => {
  it("throw outside their provider instead of reading a silent default", () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    expect(() => renderHook(() => useChatStore())).toThrow(/inside <ChatStoreProvider>/);
    expect(() => renderHook(() => useChatStatus())).toThrow(/inside <ChatStatusProvider>/);
    expect(() => renderHook(() => useToast())).toThrow(/inside <ToastActionsProvider>/);
    expect(() => renderHook(() => useChatActions())).toThrow(/inside <ChatActionsProvider>/);
    expect(() => renderHook(() => useAuth())).toThrow(/inside <AuthProvider>/);
  });

  it("work inside it", () => {
    function Probe() {
      return <span>{useTheme().preference}</span>;
    }
    const { container } = render(
      <ThemeProvider>
        <Probe />
      </ThemeProvider>,
    );
    expect(container.textContent).toBe("system");
  });
});
