import { Waves } from "lucide-react";
import "./chat.css";

const SUGGESTIONS = [
  { title: "Explain a concept", prompt: "Explain how ocean tides work, simply." },
  { title: "Write some code", prompt: "Write a Python function that checks whether a string is a palindrome." },
  { title: "Compare options", prompt: "Make a table comparing SQLite, PostgreSQL and Redis." },
  { title: "Do some maths", prompt: "Derive the quadratic formula step by step." },
];

/** A new, empty chat: a greeting and a few things to try. */
export function EmptyState({ onPick }: { onPick: (prompt: string) => void }) {
  return (
    <div className="empty-state">
      <div className="empty-state__logo" aria-hidden>
        <Waves size={28} />
      </div>
      <h2 className="empty-state__title">What can I help with?</h2>
      <ul className="empty-state__suggestions" aria-label="Suggestions">
        {SUGGESTIONS.map((s) => (
          <li key={s.title}>
            <button type="button" className="suggestion" onClick={() => onPick(s.prompt)}>
              <span className="suggestion__title">{s.title}</span>
              <span className="suggestion__prompt">{s.prompt}</span>
            </button>
          </li>
        ))}
      </ul>
    </div>
  );
}
