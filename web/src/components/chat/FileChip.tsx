import { AlertTriangle, Check, FileText, X } from "lucide-react";
import { type Chip, chipLabel } from "../../hooks/useAttachments";
import "./composer.css";

/** One uploading or uploaded file: its name, its progress (or why it failed), and a remove button. */
export function FileChip({ chip, state, onRemove }: { chip: Chip; state?: string; onRemove: () => void }) {
  return (
    <li className={`file-chip file-chip--${chip.phase}`} data-testid="file-chip" data-phase={chip.phase}>
      {chip.phase === "ready" ? <Check size={14} aria-hidden /> : chip.phase === "failed" ? <AlertTriangle size={14} aria-hidden /> : <FileText size={14} aria-hidden />}
      <span className="file-chip__name">{chip.name}</span>
      <span className="file-chip__state" aria-live="polite">
        {state ?? chipLabel(chip)}
      </span>
      <button type="button" className="file-chip__remove" aria-label={`Remove ${chip.name}`} onClick={onRemove}>
        <X size={12} aria-hidden />
      </button>
    </li>
  );
}
