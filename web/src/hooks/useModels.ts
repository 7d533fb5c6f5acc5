import { useEffect, useState } from "react";
import { api } from "../api/client";
import type { ModelInfo } from "../api/types";

/** What the user may pick (GET /api/models), fetched once. */
export function useModels(): { models: ModelInfo[]; defaultModel: string | null } {
  const [models, setModels] = useState<ModelInfo[]>([]);
  useEffect(() => {
    let alive = true;
    api
      .models()
      .then((r) => alive && setModels(r.models))
      .catch(() => alive && setModels([]));
    return () => {
      alive = false;
    };
  }, []);
  const defaultModel = (models.find((m) => m.default) ?? models[0])?.id ?? null;
  return { models, defaultModel };
}
