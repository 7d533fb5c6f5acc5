/**
 * Tools (issue 15): a stored reply's tool steps as the client shows its
 * calls (the live events update them: `tools.ts`).
 */
import type { Message } from "../protocol.gen";
import type { ToolView } from "./types";

const PREVIEW_CHARS = 500;

export function toolsFromSteps(m: Message): ToolView[] {
  return (m.steps ?? []).flatMap((step, index) =>
    (step.calls ?? []).map((call) => ({
      callId: call.id,
      step: index,
      server: call.server,
      tool: call.tool,
      arguments: call.arguments,
      status: call.status ?? "running",
      preview: (call.result ?? "").slice(0, PREVIEW_CHARS),
      durationMs: call.duration_ms ?? null,
      turnId: null,
    })),
  );
}
