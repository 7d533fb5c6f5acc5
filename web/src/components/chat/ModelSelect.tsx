import { ChevronDown, Wrench } from "lucide-react";
import type { ModelInfo } from "../../api/types";
import "./header.css";

export interface ModelSelectProps {
  models: ModelInfo[];
  value: string | null;
  onChange: (id: string) => void;
  disabled?: boolean;
}

/** What an option says of a model: its name, and that it has tools. */
export function modelOptionLabel(m: ModelInfo): string {
  const name = m.label ?? m.id;
  return m.tools?.length ? `${name} · tools` : name;
}

/**
 * The model for this conversation. A native select: keyboard, screen readers and phones handle it well.
 * Models with tools (GET /api/models `tools`: their servers' ids) say so in the list, and the chosen one
 * shows a tools badge naming its servers.
 */
export function ModelSelect({ models, value, onChange, disabled }: ModelSelectProps) {
  if (models.length === 0) return null;
  const known = models.some((m) => m.id === value);
  const tools = models.find((m) => m.id === value)?.tools ?? [];
  return (
    <>
      <div className="model-select">
        <select aria-label="Model" value={value ?? ""} onChange={(e) => onChange(e.target.value)} disabled={disabled}>
          {!known && value && <option value={value}>{value}</option>}
          {models.map((m) => (
            <option key={m.id} value={m.id}>
              {modelOptionLabel(m)}
            </option>
          ))}
        </select>
        <ChevronDown size={16} aria-hidden />
      </div>
      {tools.length > 0 && (
        <span className="tools-badge" role="note" title={`This model can call tools: ${tools.join(", ")}`} aria-label={`Tools: ${tools.join(", ")}`}>
          <Wrench size={13} aria-hidden />
          <span className="tools-badge__text">{tools.join(", ")}</span>
        </span>
      )}
    </>
  );
}
