/**
 * A stream's subscriptions as the Stream Durable Object reports them: delivery cursor, lag
 * behind the tail, health (active, failing with its next retry, parked on a stuck batch),
 * attempts and last error — with Resume (retry the stuck batch) and Skip (past it, with a
 * reason) for parked ones. Refreshed every few seconds while the tab is visible.
 */
import { useState } from "preact/hooks";
import { type ConsoleApi, describeError, type SubscriptionStatus } from "./api";
import { describeCallable, formatTime, label } from "./format";
import { usePoll } from "./use-poll";

const POLL_MS = 2_000;

export function StreamHealth({ api, stream }: { api: ConsoleApi; stream: string }) {
  const poll = usePoll(() => api.subscriptions(stream), [api, stream], POLL_MS);
  const subscriptions = poll.data?.subscriptions ?? [];
  const parked = subscriptions.filter((s) => s.status === "parked").length;
  const failing = subscriptions.filter((s) => s.status === "failing").length;

  return (
    <section class="panel" aria-labelledby="health-title">
      <div class="toolbar">
        <h2 id="health-title">
          Subscriptions of <span class="mono">{stream}</span>
        </h2>
        <span class="live-note">
          <span class="dot" aria-hidden="true" />
          {poll.updatedAt
            ? `Live · updated ${new Date(poll.updatedAt).toLocaleTimeString()}`
            : "Live"}
        </span>
      </div>
      {poll.error !== null && (
        <p class="error" role="alert">
          Could not load the subscriptions: {describeError(poll.error)}
        </p>
      )}
      {poll.data && (
        <p class="summary" data-testid="health-summary">
          {subscriptions.length} subscription{subscriptions.length === 1 ? "" : "s"}
          {parked > 0 && <strong class="error-text"> · {parked} parked</strong>}
          {failing > 0 && <strong class="warn-text"> · {failing} failing</strong>}
          {parked === 0 && failing === 0 && subscriptions.length > 0 && " · all healthy"}
        </p>
      )}
      {poll.data && subscriptions.length === 0 && (
        <p class="muted">Nothing subscribes to this stream.</p>
      )}
      <ul class="subscriptions">
        {subscriptions.map((sub) => (
          <SubscriptionCard
            key={sub.key}
            api={api}
            stream={stream}
            sub={sub}
            onChanged={poll.refresh}
          />
        ))}
      </ul>
    </section>
  );
}

function SubscriptionCard(props: {
  api: ConsoleApi;
  stream: string;
  sub: SubscriptionStatus;
  onChanged: () => void;
}) {
  const { sub } = props;
  const [reason, setReason] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const reasonId = `skip-reason-${sub.key}`;

  const run = async (what: string, call: () => Promise<unknown>) => {
    setBusy(true);
    setError(null);
    setDone(null);
    try {
      await call();
      setDone(`${what} done.`);
      props.onChanged();
    } catch (e) {
      setError(`${what} failed: ${describeError(e)}`);
    } finally {
      setBusy(false);
    }
  };

  return (
    <li class={`subscription ${sub.status}`} data-key={sub.key} data-status={sub.status}>
      <div class="sub-head">
        <span class={`badge health-${sub.status}`}>{label(sub.status)}</span>
        <h3 class="mono">{sub.key}</h3>
      </div>
      <dl class="facts">
        <div class="target">
          <dt>Target</dt>
          <dd class="mono small">{describeCallable(sub.callable)}</dd>
        </div>
        <div>
          <dt>Cursor</dt>
          <dd data-testid="cursor">{sub.cursor}</dd>
        </div>
        <div>
          <dt>Lag</dt>
          <dd data-testid="lag">
            {sub.lag} event{sub.lag === 1 ? "" : "s"}
          </dd>
        </div>
        <div>
          <dt>Attempts</dt>
          <dd>{sub.attempts}</dd>
        </div>
        {sub.status === "failing" && (
          <div>
            <dt>Next retry</dt>
            <dd>{formatTime(sub.nextRetryAt)}</dd>
          </div>
        )}
        {sub.status === "parked" && (
          <div>
            <dt>Stuck on</dt>
            <dd>
              {sub.stuckOffset === sub.stuckThrough
                ? `event ${sub.stuckOffset}`
                : `events ${sub.stuckOffset}–${sub.stuckThrough}`}
            </dd>
          </div>
        )}
        <div class="span">
          <dt>Consumes</dt>
          <dd class="small">{sub.eventTypes.join(", ")}</dd>
        </div>
        {sub.lastError && (
          <div class="span">
            <dt>Last error{sub.lastErrorRetryable === false ? " (not retryable)" : ""}</dt>
            <dd class="error-text small" data-testid="last-error">
              {sub.lastError}
            </dd>
          </div>
        )}
      </dl>
      {sub.status === "parked" && (
        <div class="parked-actions">
          <button
            type="button"
            disabled={busy}
            onClick={() => run("Resume", () => props.api.resume(props.stream, sub.key))}
          >
            Resume
          </button>
          <label for={reasonId}>Skip reason</label>
          <input
            id={reasonId}
            value={reason}
            maxLength={2000}
            onInput={(e) => setReason((e.target as HTMLInputElement).value)}
          />
          <button
            type="button"
            class="danger secondary"
            disabled={busy}
            onClick={() =>
              run("Skip", () =>
                props.api.skip(props.stream, sub.key, {
                  ...(sub.stuckOffset !== null ? { offset: sub.stuckOffset } : {}),
                  ...(reason.trim() ? { reason: reason.trim() } : {}),
                }),
              )
            }
          >
            Skip stuck events
          </button>
        </div>
      )}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {done && (
        <p class="ok-text" role="status">
          {done}
        </p>
      )}
    </li>
  );
}
