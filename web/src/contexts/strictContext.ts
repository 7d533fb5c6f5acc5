import { createContext, useContext, type Context } from "react";

/**
 * A context and its hook; the hook throws outside the provider, so a
 * component mounted in the wrong place fails loudly in development instead of
 * silently reading a default.
 */
export function createStrictContext<T>(name: string): [Context<T | null>, () => T] {
  const context = createContext<T | null>(null);
  context.displayName = name;
  const useStrict = (): T => {
    const value = useContext(context);
    if (value === null) throw new Error(`use${name} must be used inside <${name}Provider>`);
    return value;
  };
  return [context, useStrict];
}
