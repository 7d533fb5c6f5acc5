import { adminApi, type DayUsage } from "../../api/admin";
import { compact, useAdminData } from "./useAdminData";
import { AdminTable } from "./AdminTable";

const COLOURS = ["#0f766e", "#2563eb", "#c2410c", "#7c3aed", "#be185d", "#4d7c0f", "#0e7490", "#a16207"];

/** Tokens per model per day, stacked bars in plain SVG (no chart library). */
export function UsageChart({ days }: { days: DayUsage[] }) {
  const models = [...new Set(days.flatMap((d) => Object.keys(d.models)))].sort();
  const total = (d: DayUsage) => Object.values(d.models).reduce((s, c) => s + c.prompt_tokens + c.completion_tokens, 0);
  const max = Math.max(1, ...days.map(total));
  const W = 720;
  const H = 220;
  const pad = { left: 48, bottom: 24, top: 8 };
  const bw = (W - pad.left) / Math.max(1, days.length);
  const y = (v: number) => H - pad.bottom - (v / max) * (H - pad.bottom - pad.top);
  return (
    <figure className="admin__chart">
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`Tokens per day for the last ${days.length} days, by model`}>
        {[0, 0.5, 1].map((f) => (
          <g key={f}>
            <line x1={pad.left} x2={W} y1={y(max * f)} y2={y(max * f)} className="admin__grid" />
            <text x={pad.left - 6} y={y(max * f) + 4} textAnchor="end" className="admin__axis">
              {compact(Math.round(max * f))}
            </text>
          </g>
        ))}
        {days.map((d, i) => {
          let base = 0;
          return (
            <g key={d.day}>
              <title>{`${d.day}: ${Object.entries(d.models)
                .map(([m, c]) => `${m} ${c.turns} messages, ${(c.prompt_tokens + c.completion_tokens).toLocaleString()} tokens`)
                .join("; ") || "nothing"}`}</title>
              {models.map((m, k) => {
                const c = d.models[m];
                if (!c) return null;
                const v = c.prompt_tokens + c.completion_tokens;
                const top = y(base + v);
                const rect = <rect key={m} x={pad.left + i * bw + 1} width={Math.max(1, bw - 2)} y={top} height={y(base) - top} fill={COLOURS[k % COLOURS.length]} />;
                base += v;
                return rect;
              })}
              {i % 5 === 0 && (
                <text x={pad.left + i * bw + bw / 2} y={H - 6} textAnchor="middle" className="admin__axis">
                  {d.day.slice(5)}
                </text>
              )}
            </g>
          );
        })}
      </svg>
      <figcaption className="admin__legend">
        {models.length === 0 && <span className="admin__muted">No usage in this period.</span>}
        {models.map((m, k) => (
          <span key={m}>
            <i style={{ background: COLOURS[k % COLOURS.length] }} /> {m}
          </span>
        ))}
      </figcaption>
    </figure>
  );
}

export function UsagePanel() {
  const { data, error } = useAdminData(() => adminApi.usage(30));
  const days = data?.days ?? [];
  const sums = new Map<string, { turns: number; tokens: number }>();
  for (const d of days)
    for (const [m, c] of Object.entries(d.models)) {
      const s = sums.get(m) ?? { turns: 0, tokens: 0 };
      s.turns += c.turns;
      s.tokens += c.prompt_tokens + c.completion_tokens;
      sums.set(m, s);
    }
  return (
    <div className="admin__stack">
      <section className="admin__card">
        <h2>Tokens per day, last 30 days</h2>
        {error && <p className="admin__error">{error}</p>}
        {data && <UsageChart days={days} />}
      </section>
      <section className="admin__card">
        <h2>By model</h2>
        <AdminTable
          head={
            <>
              <th>Model</th>
              <th className="num">Messages</th>
              <th className="num">Tokens</th>
            </>
          }
        >
          {[...sums.entries()].map(([m, s]) => (
            <tr key={m}>
              <td>{m}</td>
              <td className="num">{s.turns.toLocaleString()}</td>
              <td className="num">{s.tokens.toLocaleString()}</td>
            </tr>
          ))}
        </AdminTable>
      </section>
    </div>
  );
}
