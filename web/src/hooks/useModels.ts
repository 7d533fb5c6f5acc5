import { useEffect, useState } from "react";
import { api } from "../api/client";
import type { ModelInfo, ModelsResponse } from "../api/types";

/** Until the server said: the gateway's default limit. */
const DEFAULT_MAX_MESSAGE_CHARS = 32_000;

/** What the user may pick (GET /api/models), fetched once, and the message length limit that comes with it. */
export function useModels(): { models: ModelInfo[]; defaultModel: string | null; maxMessageChars: number } {
  const [response, setResponse] = useState<ModelsResponse | null>(null);
  useEffect(() => {
    let alive = true;
    api
      .models()
      .then((r) => alive && setResponse(r))
      .catch(() => alive && setResponse(null));
    return () => {
      alive = false;
    };
  }, []);
  const models = response?.models ?? [];
  const defaultModel = (models.find((m) => m.default) ?? models[0])?.id ?? null;
  return { models, defaultModel, maxMessageChars: response?.max_message_chars ?? DEFAULT_MAX_MESSAGE_CHARS };
}
