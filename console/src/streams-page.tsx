/** Any stream's health, by path (API keys): e.g. `/orders/eu` or `/sessions/<id>`. */
import { useState } from "preact/hooks";
import type { ConsoleApi } from "./api";
import { navigate } from "./router";
import { StreamHealth } from "./stream-health";

export function StreamsPage({ api, path }: { api: ConsoleApi; path: string | null }) {
  const [value, setValue] = useState(path ?? "");
  const submit = (event: Event) => {
    event.preventDefault();
    const trimmed = value.trim();
    if (trimmed === "") return;
    navigate({ name: "streams", path: trimmed.startsWith("/") ? trimmed : `/${trimmed}` });
  };
  return (
    <div class="stack">
      <h1>Stream health</h1>
      <form class="panel toolbar" onSubmit={submit}>
        <div class="field grow">
          <label for="stream-path">Stream path</label>
          <input
            id="stream-path"
            value={value}
            placeholder="/orders/eu"
            spellcheck={false}
            onInput={(e) => setValue((e.target as HTMLInputElement).value)}
          />
        </div>
        <button type="submit">Show subscriptions</button>
      </form>
      {path !== null && <StreamHealth key={path} api={api} stream={path} />}
    </div>
  );
}
