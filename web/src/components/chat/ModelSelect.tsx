import { ChevronDown } from "lucide-react";
import type { ModelInfo } from "../../api/types";
import "./header.css";

export interface ModelSelectProps {
  models: ModelInfo[];
  value: string | null;
  onChange: (id: string) => void;
  disabled?: boolean;
}

/** The model for this conversation. A native select: keyboard, screen readers and phones handle it well. */
export function ModelSelect({ models, value, onChange, disabled }: ModelSelectProps) {
  if (models.length === 0) return null;
  const known = models.some((m) => m.id === value);
  return (
    <div className="model-select">
      <select aria-label="Model" value={value ?? ""} onChange={(e) => onChange(e.target.value)} disabled={disabled}>
        {!known && value && <option value={value}>{value}</option>}
        {models.map((m) => (
          <option key={m.id} value={m.id}>
            {m.label ?? m.id}
          </option>
        ))}
      </select>
      <ChevronDown size={16} aria-hidden />
    </div>
  );
}
