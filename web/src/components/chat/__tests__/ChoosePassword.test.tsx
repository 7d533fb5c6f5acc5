import { fireEvent, render, screen, waitFor } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import { api } from "../../../api/client";
import { ChoosePassword } from "../ChoosePassword";

const recheck = vi.fn(async () => {});
vi.mock("../../../contexts/AuthContext", () => ({
  useAuth: () => ({ user: { username: "ada" }, recheck, logout: vi.fn(async () => {}) }),
}));

describe("ChoosePassword (on the shared AuthCard / AuthForm)", () => {
  it("submits only when both fields are filled, refuses a short password, then saves", async () => {
    const change = vi.spyOn(api, "changePassword").mockResolvedValue(undefined as never);
    render(<ChoosePassword />);
    expect(screen.getByRole("heading", { name: "Choose your password" })).toBeTruthy();
    expect(screen.getByText(/ada, you signed in with a one-time password/)).toBeTruthy();
    const save = screen.getByRole("button", { name: "Save and continue" }) as HTMLButtonElement;
    expect(save.disabled).toBe(true);

    fireEvent.change(screen.getByLabelText("One-time password"), { target: { value: "temp-pass" } });
    fireEvent.change(screen.getByLabelText("New password"), { target: { value: "short" } });
    expect(save.disabled).toBe(false);
    fireEvent.click(save);
    expect((await screen.findByRole("alert")).textContent).toBe("Use at least 8 characters for your password.");
    expect(change).not.toHaveBeenCalled();

    fireEvent.change(screen.getByLabelText("New password"), { target: { value: "long enough" } });
    fireEvent.click(save);
    await waitFor(() => expect(recheck).toHaveBeenCalled());
    expect(change).toHaveBeenCalledWith("temp-pass", "long enough");
    expect(screen.queryByRole("alert")).toBeNull();
  });
});
