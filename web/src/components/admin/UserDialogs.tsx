import { useState } from "react";
import { adminApi, type AdminUserRow, type Created, type QuotaView } from "../../api/admin";
import { useToast } from "../../contexts/ToastContext";
import { Button } from "../ui/Button";
import { Dialog } from "../ui/Dialog";
import { errorText, useAdminData } from "./useAdminData";

export function NewUserDialog({ open, groups, onClose, onCreated }: { open: boolean; groups: string[]; onClose: () => void; onCreated: (c: Created) => void }) {
  const [method, setMethod] = useState<"password" | "invite">("password");
  const [username, setUsername] = useState("");
  const [isAdmin, setIsAdmin] = useState(false);
  const [chosen, setChosen] = useState<string[]>([]);
  const [hours, setHours] = useState(72);
  const [error, setError] = useState<string | null>(null);
  const submit = async () => {
    setError(null);
    try {
      const made = await adminApi.createUser({
        method,
        username: username.trim() || undefined,
        is_admin: isAdmin,
        groups: chosen,
        invite_hours: hours,
      });
      setUsername("");
      setChosen([]);
      setIsAdmin(false);
      onCreated(made);
    } catch (exc) {
      setError(errorText(exc));
    }
  };
  return (
    <Dialog
      open={open}
      title="New user"
      onClose={onClose}
      footer={
        <>
          <Button onClick={onClose}>Cancel</Button>
          <Button variant="primary" onClick={() => void submit()} disabled={method === "password" && !username.trim()}>
            {method === "password" ? "Create account" : "Create invite link"}
          </Button>
        </>
      }
    >
      <div className="admin__form">
        <div className="admin__radios">
          <label className="admin__radio">
            <input type="radio" checked={method === "password"} onChange={() => setMethod("password")} /> One-time password
          </label>
          <label className="admin__radio">
            <input type="radio" checked={method === "invite"} onChange={() => setMethod("invite")} /> Invite link
          </label>
        </div>
        <label className="field">
          <span>Username{method === "invite" ? " (optional: else the invitee chooses)" : ""}</span>
          <input value={username} onChange={(e) => setUsername(e.target.value)} autoCapitalize="none" spellCheck={false} />
        </label>
        {method === "invite" && (
          <label className="field">
            <span>Link works for (hours)</span>
            <input type="number" min={1} max={720} value={hours} onChange={(e) => setHours(Number(e.target.value) || 72)} />
          </label>
        )}
        <label className="admin__check">
          <input type="checkbox" checked={isAdmin} onChange={(e) => setIsAdmin(e.target.checked)} /> Admin
        </label>
        {groups.length > 0 && (
          <fieldset className="admin__checks">
            <legend>Groups</legend>
            {groups.map((g) => (
              <label key={g} className="admin__check">
                <input type="checkbox" checked={chosen.includes(g)} onChange={(e) => setChosen(e.target.checked ? [...chosen, g] : chosen.filter((x) => x !== g))} /> {g}
              </label>
            ))}
          </fieldset>
        )}
        {error && <p className="admin__error" role="alert">{error}</p>}
      </div>
    </Dialog>
  );
}

const QUOTA_FIELDS = [
  { id: "tokens_day", label: "Tokens per day" },
  { id: "turns_day", label: "Messages per day" },
] as const;

export function QuotaDialog({ user, onClose }: { user: AdminUserRow; onClose: () => void }) {
  const { data, error, reload } = useAdminData<QuotaView>(() => adminApi.quotas(user.id), [user.id]);
  const [draft, setDraft] = useState<Record<string, string>>({});
  const [saveError, setSaveError] = useState<string | null>(null);
  const value = (id: string) => draft[id] ?? (data?.own[id as keyof QuotaView["own"]]?.toString() ?? "");
  const save = async () => {
    setSaveError(null);
    const body: Record<string, number | null> = {};
    for (const f of QUOTA_FIELDS) {
      const v = value(f.id).trim();
      body[f.id] = v === "" ? null : Number(v);
    }
    try {
      await adminApi.setQuotas(user.id, body);
      onClose();
    } catch (exc) {
      setSaveError(errorText(exc));
      reload();
    }
  };
  return (
    <Dialog
      open
      title={`Quotas of ${user.username}`}
      onClose={onClose}
      footer={
        <>
          <Button onClick={onClose}>Cancel</Button>
          <Button variant="primary" onClick={() => void save()}>
            Save quotas
          </Button>
        </>
      }
    >
      <div className="admin__form">
        <p className="admin__muted">Empty: their groups' (the most generous), else the server's default. 0: no limit.</p>
        {error && <p className="admin__error">{error}</p>}
        {QUOTA_FIELDS.map((f) => {
          const eff = data?.effective[f.id];
          return (
            <label key={f.id} className="field">
              <span>
                {f.label}
                {eff && (
                  <span className="admin__muted">
                    {" "}
                    — now {eff.value === 0 ? "no limit" : eff.value.toLocaleString()} ({eff.source === "group" ? `group ${eff.group}` : eff.source})
                  </span>
                )}
              </span>
              <input name={f.id} type="number" min={0} value={value(f.id)} onChange={(e) => setDraft({ ...draft, [f.id]: e.target.value })} />
            </label>
          );
        })}
        {saveError && <p className="admin__error" role="alert">{saveError}</p>}
      </div>
    </Dialog>
  );
}

export function MemberDialog({ user, groups, onClose }: { user: AdminUserRow; groups: string[]; onClose: () => void }) {
  const [member, setMember] = useState<string[]>(user.groups);
  const { toast } = useToast();
  const toggle = async (g: string, on: boolean) => {
    try {
      await (on ? adminApi.addMember(g, user.id) : adminApi.removeMember(g, user.id));
      setMember(on ? [...member, g] : member.filter((x) => x !== g));
    } catch (exc) {
      toast(errorText(exc));
    }
  };
  return (
    <Dialog open title={`Groups of ${user.username}`} onClose={onClose} footer={<Button onClick={onClose}>Done</Button>}>
      {groups.length === 0 ? (
        <p className="admin__muted">No groups yet: make one under “Groups & models”.</p>
      ) : (
        <div className="admin__checks">
          {groups.map((g) => (
            <label key={g} className="admin__check">
              <input type="checkbox" checked={member.includes(g)} onChange={(e) => void toggle(g, e.target.checked)} /> {g}
            </label>
          ))}
        </div>
      )}
    </Dialog>
  );
}
