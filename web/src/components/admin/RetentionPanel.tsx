import { useState } from "react";
import { adminApi } from "../../api/admin";
import { useToast } from "../../contexts/ToastContext";
import { Button } from "../ui/Button";
import { errorText, useAdminData } from "./useAdminData";
import { AdminTable } from "./AdminTable";

export function RetentionPanel() {
  const { data, error, reload } = useAdminData(() => adminApi.retention());
  const groups = useAdminData(() => adminApi.groups());
  const { toast } = useToast();
  const [busy, setBusy] = useState(false);
  const save = async (name: string, patch: { retention_days?: number | null; retention_on?: boolean }) => {
    try {
      await adminApi.patchGroup(name, patch);
    } catch (exc) {
      toast(errorText(exc));
    }
    reload();
    groups.reload();
  };
  return (
    <div className="admin__stack">
      <section className="admin__card">
        <h2>Retention</h2>
        <p className="admin__muted">
          Per group: delete conversations nobody has touched for N days. A member gets the strictest policy of their groups. Workers delete in small batches,
          hourly. The preview counts what a sweep would delete now, before you turn a policy on.
        </p>
        {error && <p className="admin__error">{error}</p>}
        <AdminTable
          head={
            <>
              <th>Group</th>
              <th>Days untouched</th>
              <th>On</th>
              <th className="num">Would delete now</th>
            </>
          }
        >
          {groups.data?.groups.map((g) => {
            const preview = data?.groups.find((p) => p.name === g.name);
            return (
              <tr key={g.name} data-group={g.name}>
                <td>{g.name}</td>
                <td>
                  <input
                    className="admin__small-input"
                    type="number"
                    min={1}
                    aria-label={`Days for ${g.name}`}
                    defaultValue={g.retention_days ?? ""}
                    onBlur={(e) => {
                      const v = e.target.value.trim() === "" ? null : Number(e.target.value);
                      if (v !== g.retention_days) void save(g.name, { retention_days: v, ...(v === null ? { retention_on: false } : {}) });
                    }}
                  />
                </td>
                <td>
                  <input
                    type="checkbox"
                    aria-label={`Retention on for ${g.name}`}
                    checked={g.retention_on}
                    disabled={g.retention_days === null}
                    onChange={(e) => void save(g.name, { retention_on: e.target.checked })}
                  />
                </td>
                <td className="num">{preview ? `${preview.conversations.toLocaleString()} (of ${preview.users} members)` : "—"}</td>
              </tr>
            );
          })}
        </AdminTable>
        {data?.last && (
          <p className="admin__muted">
            Last sweep {new Date(data.last.at * 1000).toLocaleString()}: {data.last.deleted} conversations deleted.
          </p>
        )}
        <Button
          disabled={busy || !data?.enabled}
          onClick={async () => {
            setBusy(true);
            try {
              await adminApi.runRetention();
              toast("A retention sweep is queued for the workers.", "info");
            } catch (exc) {
              toast(errorText(exc));
            }
            setBusy(false);
          }}
        >
          Run a sweep now
        </Button>
      </section>
    </div>
  );
}
