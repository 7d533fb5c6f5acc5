import { MoreHorizontal, Plus, Search } from "lucide-react";
import { useState } from "react";
import { adminApi, type AdminUserRow } from "../../api/admin";
import type { SignupMode } from "../../api/types";
import { useAuth } from "../../contexts/AuthContext";
import { useToast } from "../../contexts/ToastContext";
import { Button } from "../ui/Button";
import { ConfirmDialog } from "../ui/ConfirmDialog";
import { Dialog } from "../ui/Dialog";
import { Menu } from "../ui/Menu";
import { compact, errorText, useAdminData, when } from "./useAdminData";
import { MemberDialog, NewUserDialog, QuotaDialog } from "./UserDialogs";
import { AdminTable } from "./AdminTable";

const MODES: { id: SignupMode; label: string; hint: string }[] = [
  { id: "open", label: "Open", hint: "anyone can create an account" },
  { id: "invite_only", label: "Invite only", hint: "only with an invite link from an admin" },
  { id: "closed", label: "Closed", hint: "admins create accounts" },
];

function SignupModeChoice() {
  const { data, error, reload } = useAdminData(() => adminApi.settings());
  const { toast } = useToast();
  // Shown at once (the server's answer follows): a radio that lags its click reads as broken.
  const [chosen, setChosen] = useState<SignupMode | null>(null);
  const current = chosen ?? data?.signup_mode;
  return (
    <fieldset className="admin__card admin__signup">
      <legend>Sign-up</legend>
      {error && <p className="admin__error">{error}</p>}
      <div className="admin__radios">
        {MODES.map((m) => (
          <label key={m.id} className="admin__radio">
            <input
              type="radio"
              name="signup-mode"
              value={m.id}
              checked={current === m.id}
              disabled={!data}
              onChange={async () => {
                setChosen(m.id);
                try {
                  await adminApi.setSignupMode(m.id);
                  toast(`Sign-up is now ${m.label.toLowerCase()}.`, "info");
                } catch (exc) {
                  toast(errorText(exc));
                  setChosen(null);
                }
                reload();
              }}
            />
            <span>
              <strong>{m.label}</strong> <span className="admin__muted">— {m.hint}</span>
            </span>
          </label>
        ))}
      </div>
    </fieldset>
  );
}

export function UsersPanel() {
  const { user: me } = useAuth();
  const [q, setQ] = useState("");
  const users = useAdminData(() => adminApi.users(q), [q]);
  const groups = useAdminData(() => adminApi.groups());
  const invites = useAdminData(() => adminApi.invites());
  const { toast } = useToast();
  const [creating, setCreating] = useState(false);
  const [toDelete, setToDelete] = useState<AdminUserRow | null>(null);
  const [shown, setShown] = useState<{ title: string; text: string; note: string } | null>(null);
  const [quotaFor, setQuotaFor] = useState<AdminUserRow | null>(null);
  const [groupsFor, setGroupsFor] = useState<AdminUserRow | null>(null);

  const act = async (fn: () => Promise<unknown>, done?: string) => {
    try {
      await fn();
      if (done) toast(done, "info");
    } catch (exc) {
      toast(errorText(exc));
    }
    users.reload();
  };

  return (
    <div className="admin__stack">
      <SignupModeChoice />
      <section className="admin__card">
        <div className="admin__toolbar">
          <h2>
            Users {users.data && <span className="admin__muted">({users.data.total}) · usage this month</span>}
          </h2>
          <label className="admin__search">
            <Search size={16} aria-hidden />
            <input type="search" placeholder="Search by name" aria-label="Search users" value={q} onChange={(e) => setQ(e.target.value)} />
          </label>
          <Button variant="primary" icon={<Plus size={16} />} onClick={() => setCreating(true)}>
            New user
          </Button>
        </div>
        {users.error && <p className="admin__error">{users.error}</p>}
        <AdminTable
          className="admin__users"
          head={
            <>
              <th>Name</th>
              <th>Groups</th>
              <th>Last active</th>
              <th className="num" title="This month">Messages</th>
              <th className="num" title="This month">Tokens</th>
              <th aria-label="Actions" />
            </>
          }
        >
          {users.data?.users.map((u) => (
            <tr key={u.id} data-user={u.username} className={u.disabled ? "admin__row--off" : ""}>
              <td>
                <span className="admin__name">{u.username}</span>
                {u.is_admin && <span className="admin__badge">admin</span>}
                {u.disabled && <span className="admin__badge admin__badge--off">disabled</span>}
                {u.must_change_password && <span className="admin__badge admin__badge--muted">one-time password</span>}
              </td>
              <td>{u.groups.length ? u.groups.join(", ") : <span className="admin__muted">—</span>}</td>
              <td>{when(u.last_active_at)}</td>
              <td className="num">{compact(u.turns_month)}</td>
              <td className="num">{compact(u.tokens_month)}</td>
              <td className="admin__actions">
                <Menu
                  label={`Actions for ${u.username}`}
                  trigger={<MoreHorizontal size={18} />}
                  items={[
                    u.disabled
                      ? { label: "Enable", onSelect: () => void act(() => adminApi.patchUser(u.id, { disabled: false }), `${u.username} is enabled.`) }
                      : {
                          label: "Disable",
                          onSelect: () => void act(() => adminApi.patchUser(u.id, { disabled: true }), `${u.username} is disabled and signed out.`),
                        },
                    u.is_admin
                      ? { label: "Remove admin", onSelect: () => void act(() => adminApi.patchUser(u.id, { is_admin: false })) }
                      : { label: "Make admin", onSelect: () => void act(() => adminApi.patchUser(u.id, { is_admin: true })) },
                    {
                      label: "Reset password",
                      onSelect: () =>
                        void act(async () => {
                          const { password } = await adminApi.resetPassword(u.id);
                          setShown({
                            title: `New password for ${u.username}`,
                            text: password,
                            note: "Shown once. They are signed out everywhere and choose their own password at next sign-in.",
                          });
                        }),
                    },
                    { label: "Groups…", onSelect: () => setGroupsFor(u) },
                    { label: "Quotas…", onSelect: () => setQuotaFor(u) },
                    ...(u.id === me?.id ? [] : [{ label: "Delete…", onSelect: () => setToDelete(u) }]),
                  ]}
                />
              </td>
            </tr>
          ))}
        </AdminTable>
      </section>
      {invites.data && invites.data.invites.length > 0 && (
        <section className="admin__card">
          <h2>Open invites</h2>
          <ul className="admin__list">
            {invites.data.invites.map((i) => (
              <li key={i.id}>
                <span>
                  {i.username ?? "anyone"} {i.is_admin && <span className="admin__badge">admin</span>}
                  <span className="admin__muted"> — expires {new Date(i.expires_at * 1000).toLocaleString()}</span>
                </span>
                <Button size="sm" variant="ghost" onClick={() => void adminApi.revokeInvite(i.id).then(invites.reload, (e) => toast(errorText(e)))}>
                  Revoke
                </Button>
              </li>
            ))}
          </ul>
        </section>
      )}
      <NewUserDialog
        open={creating}
        groups={groups.data?.groups.map((g) => g.name) ?? []}
        onClose={() => setCreating(false)}
        onCreated={(made) => {
          setCreating(false);
          users.reload();
          invites.reload();
          if (made.password && made.user)
            setShown({
              title: `Account ${made.user.username} created`,
              text: made.password,
              note: "Their one-time password, shown once: they choose their own at first sign-in.",
            });
          else if (made.invite_path)
            setShown({
              title: "Invite link created",
              text: window.location.origin + made.invite_path,
              note: "Shown once; it works once, until it expires.",
            });
        }}
      />
      <Dialog open={shown !== null} title={shown?.title ?? ""} onClose={() => setShown(null)} footer={<Button onClick={() => setShown(null)}>Done</Button>}>
        <p className="admin__secret" data-testid="shown-secret">
          {shown?.text}
        </p>
        <p className="admin__muted">{shown?.note}</p>
      </Dialog>
      <ConfirmDialog
        open={toDelete !== null}
        title={`Delete ${toDelete?.username ?? ""}?`}
        message="This deletes the account and all its conversations, usage and settings. It cannot be undone."
        confirmLabel="Delete for good"
        danger
        onCancel={() => setToDelete(null)}
        onConfirm={() => {
          const u = toDelete;
          setToDelete(null);
          if (u) void act(() => adminApi.deleteUser(u.id), `${u.username} is deleted.`);
        }}
      />
      {quotaFor && <QuotaDialog user={quotaFor} onClose={() => setQuotaFor(null)} />}
      {groupsFor && (
        <MemberDialog
          user={groupsFor}
          groups={groups.data?.groups.map((g) => g.name) ?? []}
          onClose={() => {
            setGroupsFor(null);
            users.reload();
          }}
        />
      )}
    </div>
  );
}
