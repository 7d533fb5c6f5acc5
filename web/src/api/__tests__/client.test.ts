import { afterEach, describe, expect, it, vi } from "vitest";
import { api, ApiError, authErrorMessage, socketProtocols, socketUrl } from "../client";

function respond(status: number, body: unknown) {
  vi.stubGlobal("fetch", vi.fn(async () => new Response(body === null ? null : JSON.stringify(body), { status })));
}

afterEach(() => vi.unstubAllGlobals());

describe("HTTP errors", () => {
  it("carries the server's error code and message", async () => {
    respond(409, { error: { code: "bad_request", message: "username taken" } });
    const error = await api.signup("ann", "pw").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 409, code: "bad_request", message: "username taken" });
  });

  it("says something sensible when the body is not JSON", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => new Response("<html>bad gateway</html>", { status: 502 })));
    await expect(api.me()).rejects.toMatchObject({ status: 502, code: "internal" });
  });

  it("reports an unreachable server as a network problem", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => { throw new TypeError("Failed to fetch"); }));
    await expect(api.me()).rejects.toMatchObject({ status: 0, code: "network" });
  });

  it("treats 204 as no content", async () => {
    respond(204, null);
    await expect(api.deleteConversation("abc")).resolves.toBeUndefined();
  });

  it("turns auth failures into words for people", () => {
    const e = (status: number) => new ApiError(status, "x", "raw");
    expect(authErrorMessage(e(401), "login")).toBe("Wrong username or password.");
    expect(authErrorMessage(e(409), "signup")).toMatch(/taken/);
    // Sign-up refusals say why, in the server's words (closed, invite only, a used invite link).
    const refused = new ApiError(403, "forbidden", "sign-up needs an invite link on this server; ask its admin");
    expect(authErrorMessage(refused, "signup")).toBe("Sign-up needs an invite link on this server; ask its admin.");
    expect(authErrorMessage(new ApiError(403, "forbidden", ""), "signup")).toMatch(/Sign-up is closed/);
    const disabled = new ApiError(403, "account_disabled", "this account has been disabled by an admin");
    expect(authErrorMessage(disabled, "login")).toMatch(/disabled by an admin/);
    expect(authErrorMessage(e(429), "login")).toMatch(/Too many attempts/);
    expect(authErrorMessage(new ApiError(429, "rate_limited", "x", 4), "login")).toBe("Too many attempts. Try again in 4 seconds.");
    expect(authErrorMessage(new ApiError(429, "rate_limited", "x", 900), "login")).toBe("Too many attempts. Try again in 15 minutes.");
    expect(authErrorMessage(new Error("?"), "login")).toMatch(/Something went wrong/);
  });
});

describe("socket URL", () => {
  it("uses the page's origin and wss on https", () => {
    expect(socketUrl({ protocol: "https:", host: "chat.example" } as Location)).toBe("wss://chat.example/ws");
    expect(socketUrl({ protocol: "http:", host: "localhost:5173" } as Location)).toBe("ws://localhost:5173/ws");
  });

  it("names the session in the subprotocols, not the URL", () => {
    expect(socketProtocols("sid12345")).toEqual(["tidechat", "tidechat.session.sid12345"]);
  });
});
