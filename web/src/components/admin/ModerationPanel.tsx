import { adminApi } from "../../api/admin";
import { useAdminData } from "./useAdminData";

export function ModerationPanel() {
  const { data, error } = useAdminData(() => adminApi.moderation());
  return (
    <div className="admin__stack">
      <section className="admin__card">
        <h2>Moderation hook</h2>
        {error && <p className="admin__error">{error}</p>}
        {data &&
          (data.config ? (
            <pre className="admin__pre">{JSON.stringify(data.config, null, 2)}</pre>
          ) : (
            <p className="admin__muted">Off. Turn it on with a [moderation] table in the models file (see docs/admin.md).</p>
          ))}
      </section>
      <section className="admin__card">
        <h2>Flagged messages</h2>
        {data?.items.length === 0 && <p className="admin__muted">Nothing has been blocked.</p>}
        <ul className="admin__list">
          {data?.items.map((f) => (
            <li key={f.id} className="admin__flag">
              <div>
                <strong>{f.username || f.user_id}</strong> <span className="admin__badge admin__badge--muted">{f.direction === "input" ? "message" : "reply"}</span>{" "}
                <span className="admin__muted">
                  {new Date(f.ts * 1000).toLocaleString()} · {f.rule}
                  {f.model ? ` · ${f.model}` : ""}
                </span>
              </div>
              <blockquote>{f.excerpt}</blockquote>
              <div className="admin__muted">Reason shown: {f.reason}</div>
            </li>
          ))}
        </ul>
      </section>
    </div>
  );
}
