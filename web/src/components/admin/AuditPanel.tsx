import { Download } from "lucide-react";
import { useEffect, useState } from "react";
import { adminApi, type AuditEntry, type AuditQuery } from "../../api/admin";
import { Button } from "../ui/Button";
import { errorText } from "./useAdminData";
import { AdminTable } from "./AdminTable";

function details(e: AuditEntry): string {
  return Object.entries(e.detail)
    .filter(([, v]) => v !== null && v !== "" && !(Array.isArray(v) && v.length === 0))
    .map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(", ") : String(v)}`)
    .join(" · ");
}

export function AuditPanel() {
  const [filter, setFilter] = useState<AuditQuery>({ category: "", kind: "", user: "" });
  const [entries, setEntries] = useState<AuditEntry[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  const load = async (before: string | null) => {
    try {
      const page = await adminApi.audit({ ...filter, before });
      setEntries((old) => (before ? [...old, ...page.entries] : page.entries));
      setNext(page.next);
      setError(null);
    } catch (exc) {
      setError(errorText(exc));
    }
  };
  useEffect(() => {
    const t = setTimeout(() => void load(null), 250);
    return () => clearTimeout(t);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [filter]);

  return (
    <section className="admin__card">
      <div className="admin__toolbar">
        <h2>Audit log</h2>
        <a className="btn btn--secondary btn--md" href={adminApi.auditExportUrl(filter)} download>
          <Download size={16} aria-hidden /> Export (JSON lines)
        </a>
      </div>
      <div className="admin__filters">
        <label className="field">
          <span>Kind</span>
          <select value={filter.category} onChange={(e) => setFilter({ ...filter, category: e.target.value as AuditQuery["category"] })}>
            <option value="">Everything</option>
            <option value="admin">Admin actions</option>
            <option value="security">Security events</option>
          </select>
        </label>
        <label className="field">
          <span>Event</span>
          <input placeholder="e.g. signin. or user.disabled" value={filter.kind} onChange={(e) => setFilter({ ...filter, kind: e.target.value })} />
        </label>
        <label className="field">
          <span>User</span>
          <input placeholder="name or id" value={filter.user} onChange={(e) => setFilter({ ...filter, user: e.target.value })} />
        </label>
      </div>
      {error && <p className="admin__error">{error}</p>}
      <AdminTable
        className="admin__audit"
        head={
          <>
            <th>When</th>
            <th>Event</th>
            <th>By</th>
            <th>On</th>
            <th>Details</th>
          </>
        }
      >
        {entries.map((e) => (
          <tr key={e.id} data-kind={e.kind}>
            <td className="admin__nowrap">{new Date(e.ts * 1000).toLocaleString()}</td>
            <td>
              <code>{e.kind}</code>
            </td>
            <td>{e.actor?.name || e.actor?.id || <span className="admin__muted">{e.address ?? "—"}</span>}</td>
            <td>{e.target?.name || e.target?.id || "—"}</td>
            <td className="admin__muted">{details(e)}</td>
          </tr>
        ))}
      </AdminTable>
      {entries.length === 0 && !error && <p className="admin__muted">Nothing matches.</p>}
      {next && (
        <Button variant="ghost" onClick={() => void load(next)}>
          Older entries
        </Button>
      )}
    </section>
  );
}
