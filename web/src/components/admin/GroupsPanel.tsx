import { Plus, Trash2 } from "lucide-react";
import { useState } from "react";
import { adminApi, type Group, type ModelAccess } from "../../api/admin";
import { useToast } from "../../contexts/ToastContext";
import { Button } from "../ui/Button";
import { IconButton } from "../ui/IconButton";
import { errorText, useAdminData } from "./useAdminData";
import { AdminTable } from "./AdminTable";

function limitText(n: number | null): string {
  if (n === null) return "—";
  return n === 0 ? "no limit" : n.toLocaleString();
}

function numberOrNull(v: string): number | null {
  return v.trim() === "" ? null : Number(v);
}

export function GroupsPanel() {
  const groups = useAdminData(() => adminApi.groups());
  const models = useAdminData(() => adminApi.models());
  const { toast } = useToast();
  const [name, setName] = useState("");
  const names = groups.data?.groups.map((g) => g.name) ?? [];

  const create = async () => {
    try {
      await adminApi.createGroup(name.trim());
      setName("");
      groups.reload();
    } catch (exc) {
      toast(errorText(exc));
    }
  };

  return (
    <div className="admin__stack">
      <section className="admin__card">
        <div className="admin__toolbar">
          <h2>Groups</h2>
          <form
            className="admin__inline"
            onSubmit={(e) => {
              e.preventDefault();
              void create();
            }}
          >
            <input aria-label="New group name" placeholder="New group name" value={name} onChange={(e) => setName(e.target.value)} pattern="[A-Za-z0-9_.\-]{1,64}" />
            <Button type="submit" icon={<Plus size={16} />} disabled={!name.trim()}>
              Add group
            </Button>
          </form>
        </div>
        {groups.error && <p className="admin__error">{groups.error}</p>}
        {groups.data?.groups.length === 0 && <p className="admin__muted">No groups yet. Add people to groups from the Users tab.</p>}
        <AdminTable
          head={
            <>
              <th>Group</th>
              <th className="num">Members</th>
              <th>Tokens per day</th>
              <th>Messages per day</th>
              <th aria-label="Actions" />
            </>
          }
        >
          {groups.data?.groups.map((g) => (
            <GroupRow key={g.name} group={g} onChange={groups.reload} />
          ))}
        </AdminTable>
      </section>
      <section className="admin__card">
        <h2>Who may use which model</h2>
        <p className="admin__muted">No group ticked: everyone. The picker, the model list and the gateway all apply this at once.</p>
        {models.error && <p className="admin__error">{models.error}</p>}
        <ul className="admin__list">
          {models.data?.models.map((m) => (
            <ModelRow key={m.id} model={m} groups={names} onChange={models.reload} />
          ))}
        </ul>
      </section>
    </div>
  );
}

/** A daily limit, saved when the field loses focus (empty: the group sets none). */
function LimitInput({ label, value, onSave }: { label: string; value: number | null; onSave: (v: number | null) => void }) {
  return (
    <input
      className="admin__small-input"
      type="number"
      min={0}
      aria-label={label}
      placeholder={limitText(value)}
      defaultValue={value ?? ""}
      onBlur={(e) => {
        const next = numberOrNull(e.target.value);
        if (next !== value) onSave(next);
      }}
    />
  );
}

function GroupRow({ group, onChange }: { group: Group; onChange: () => void }) {
  const { toast } = useToast();
  const save = async (patch: Partial<Group>) => {
    try {
      await adminApi.patchGroup(group.name, patch);
    } catch (exc) {
      toast(errorText(exc));
    }
    onChange();
  };
  return (
    <tr>
      <td>
        <span className="admin__name">{group.name}</span>
      </td>
      <td className="num">{group.members}</td>
      <td>
        <LimitInput label={`Tokens per day for ${group.name}`} value={group.tokens_day} onSave={(v) => void save({ tokens_day: v })} />
      </td>
      <td>
        <LimitInput label={`Messages per day for ${group.name}`} value={group.turns_day} onSave={(v) => void save({ turns_day: v })} />
      </td>
      <td className="admin__actions">
        <IconButton label={`Delete group ${group.name}`} onClick={() => void adminApi.deleteGroup(group.name).then(onChange, (e) => toast(errorText(e)))}>
          <Trash2 size={16} />
        </IconButton>
      </td>
    </tr>
  );
}

function ModelRow({ model, groups, onChange }: { model: ModelAccess; groups: string[]; onChange: () => void }) {
  const { toast } = useToast();
  // Ticked at once; the saved state replaces it when the list reloads.
  const [pending, setPending] = useState<string[] | null>(null);
  const allowed = pending ?? model.groups;
  const set = async (next: string[] | null) => {
    setPending(next ?? []);
    try {
      await adminApi.setModelAccess(model.id, next);
      toast(next === null || next.length === 0 ? `${model.label}: everyone.` : `${model.label}: ${next.join(", ")} only.`, "info");
    } catch (exc) {
      toast(errorText(exc));
    }
    setPending(null);
    onChange();
  };
  return (
    <li className="admin__model" data-model={model.id}>
      <div>
        <strong>{model.label}</strong> <span className="admin__muted">({model.id}) — {model.groups.length ? model.groups.join(", ") : "everyone"}</span>
      </div>
      <div className="admin__checks admin__checks--row">
        {groups.map((g) => (
          <label key={g} className="admin__check">
            <input
              type="checkbox"
              aria-label={`${g} may use ${model.label}`}
              checked={allowed.includes(g)}
              onChange={(e) => void set(e.target.checked ? [...allowed, g] : allowed.filter((x) => x !== g))}
            />{" "}
            {g}
          </label>
        ))}
        {model.source === "console" && (
          <Button size="sm" variant="ghost" onClick={() => void set(null)}>
            Back to the models file
          </Button>
        )}
      </div>
    </li>
  );
}
