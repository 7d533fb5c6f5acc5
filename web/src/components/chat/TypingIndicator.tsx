export function TypingIndicator({ label = "The assistant is typing" }: { label?: string }) {
  return (
    <span className="typing" role="img" aria-label={label}>
      <span />
      <span />
      <span />
    </span>
  );
}
