import { useState } from "react";
import { useChatActions } from "../../contexts/ChatContext";
import type { ToolView } from "../../state/types";
import { Button } from "../ui/Button";
import "./tools.css";

const STATUS_LABELS: Record<ToolView["status"], string> = {
  running: "running…",
  waiting: "waiting for you",
  ok: "done",
  error: "failed",
  timeout: "timed out",
  interrupted: "interrupted",
  denied: "denied",
  stopped: "stopped",
};

function duration(ms: number | null): string {
  if (ms === null) return "";
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** Tools (issue 15): a call waiting for the user's approval, inline in the reply. */
function Approval({ tool }: { tool: ToolView }) {
  const actions = useChatActions();
  const [answered, setAnswered] = useState(false);
  const answer = (approve: boolean) => {
    if (!tool.turnId) return;
    setAnswered(true);
    actions.approveTool(tool.turnId, tool.callId, approve);
  };
  return (
    <div className="tool-approval" role="group" aria-label={`Approve ${tool.server}/${tool.tool}`}>
      <p>
        Allow <code>{`${tool.server}/${tool.tool}`}</code> with <code>{tool.arguments}</code>?
      </p>
      <Button size="sm" onClick={() => answer(true)} disabled={answered || !tool.turnId}>
        Allow
      </Button>
      <Button size="sm" onClick={() => answer(false)} disabled={answered || !tool.turnId}>
        Deny
      </Button>
    </div>
  );
}

/** A reply's tool calls: a compact list, collapsed, each expandable to its arguments and result. */
export function ToolSteps({ tools }: { tools: ToolView[] }) {
  if (tools.length === 0) return null;
  const waiting = tools.filter((t) => t.status === "waiting");
  return (
    <div className="tool-steps">
      {waiting.map((t) => (
        <Approval key={t.callId} tool={t} />
      ))}
      <details className="tool-steps__list">
        <summary>
          Used {tools.length} tool call{tools.length === 1 ? "" : "s"}
        </summary>
        <ol>
          {tools.map((t) => (
            <li key={t.callId} className={`tool-step tool-step--${t.status}`} data-call-id={t.callId}>
              <details>
                <summary>
                  <code>{`${t.server}/${t.tool}`}</code>{" "}
                  <span className="tool-step__status">{STATUS_LABELS[t.status]}</span>{" "}
                  <span className="tool-step__time">{duration(t.durationMs)}</span>
                </summary>
                <p className="tool-step__label">Arguments</p>
                <pre>{t.arguments}</pre>
                {t.preview && (
                  <>
                    <p className="tool-step__label">Result</p>
                    <pre>{t.preview}</pre>
                  </>
                )}
              </details>
            </li>
          ))}
        </ol>
      </details>
    </div>
  );
}
