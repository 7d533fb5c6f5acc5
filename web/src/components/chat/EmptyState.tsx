import { Waves } from "lucide-react";
import type { Suggestion } from "../../api/types";
import "./chat.css";

/**
 * A new, empty chat: a greeting and a few things to try. The suggestions are the chosen
 * model's (GET /api/models): short questions for the small local model, longer tasks for a
 * capable remote one.
 */
export function EmptyState({ suggestions, onPick }: { suggestions: Suggestion[]; onPick: (prompt: string) => void }) {
  return (
    <div className="empty-state">
      <div className="empty-state__logo" aria-hidden>
        <Waves size={28} />
      </div>
      <h2 className="empty-state__title">What can I help with?</h2>
      {suggestions.length > 0 && (
        <ul className="empty-state__suggestions" aria-label="Suggestions">
          {suggestions.map((s) => (
            <li key={s.prompt}>
              <button type="button" className="suggestion" onClick={() => onPick(s.prompt)}>
                <span className="suggestion__title">{s.title}</span>
                <span className="suggestion__prompt">{s.prompt}</span>
              </button>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
