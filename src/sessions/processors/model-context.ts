/**
 * The prompt of a model request that references the transcript, built at execution time:
 * content references read back and cut to the per-content budget (with a note saying how
 * much the model does not see), and, when the window exceeds the model's context budget, the
 * older messages compacted first (`context/compaction-requested` → `context/compacted`, keyed
 * by the request, so a crash mid-compaction resumes and records it once). Deterministic for
 * a given request, so a re-execution plans the same compaction. The model processor owns the
 * appends; this module is given its `append`.
 */
import type { LanguageModelV4, LanguageModelV4Prompt } from "@ai-sdk/provider";
import type { z } from "zod";
import type { StateOf } from "../../processors/contract";
import type { EmitInput } from "../../processors/processor";
import type { JsonValue, StreamEvent } from "../../streams/messages";
import { type ContentRef, readContent, truncateForPrompt, utf8Bytes } from "../content";
import { COMPACTION_SYSTEM, compactionInput, planCompaction, systemWithSummary } from "../context";
import type { modelContract } from "../contracts";
import type { ChatMessage, SessionEventPayload, toolSpecSchema } from "../events";
import { collectStream } from "../models/collect";
import { toPrompt } from "../prompt";
import { byteLength, messageSizes, readMessages } from "../transcript";
import type { ModelRuntime } from "./model";

type ToolSpec = z.infer<typeof toolSpecSchema>;
type Request = StateOf<typeof modelContract>["requests"][string];
type Append = (...events: EmitInput<typeof modelContract>[]) => Promise<StreamEvent[]>;

export interface Built {
  prompt: LanguageModelV4Prompt;
  tools: ToolSpec[];
}

export interface Compaction {
  through: number;
  summary: string;
}

export class ModelContext {
  constructor(private readonly runtime: ModelRuntime) {}

  /**
   * The messages with every content reference read back and every content cut to the
   * per-content budget (with a note saying how much the model does not see).
   */
  async resolve(
    messages: ChatMessage[],
    budget = this.runtime.contentBudgetBytes,
  ): Promise<ChatMessage[]> {
    const read = async (ref: ContentRef) => {
      const { text } = await readContent(ref, (offset) => this.runtime.readEvent(offset), {
        maxBytes: budget,
      });
      return truncateForPrompt(text, ref.bytes, budget);
    };
    const cut = (text: string) =>
      text.length * 3 <= budget ? text : truncateForPrompt(text, utf8Bytes(text), budget);
    const out: ChatMessage[] = [];
    for (const message of messages) {
      if (message.role === "tool") {
        const { resultRef, ...rest } = message;
        if (resultRef) {
          const text = await read(resultRef);
          out.push({ ...rest, result: resultRef.bytes <= budget ? parseJson(text) : text });
        } else {
          const json = JSON.stringify(message.result) ?? "null";
          out.push(utf8Bytes(json) <= budget ? rest : { ...rest, result: cut(json) });
        }
      } else {
        const { contentRef, ...rest } = message;
        out.push({ ...rest, content: contentRef ? await read(contentRef) : cut(message.content) });
      }
    }
    return out;
  }

  /** The latest compaction covering at most the first `n` messages. */
  #latestCompaction(n: number): Compaction | null {
    const tables = this.runtime.tables();
    const row = tables
      .exec<{ through: number; summary: string }>(
        `SELECT through, summary FROM ${tables.name("compactions")} WHERE through <= ? ORDER BY through DESC LIMIT 1`,
        n,
      )
      .toArray()[0];
    return row ? { through: row.through, summary: row.summary } : null;
  }

  /**
   * Builds the prompt of a request that references the transcript: waits for the history to
   * be committed through the request, compacts when the window exceeds the budget, then reads
   * the window. Deterministic for a given request, so a re-execution plans the same compaction.
   */
  async build(
    requestId: string,
    request: Request,
    spec: SessionEventPayload<"model/request-requested">,
    model: LanguageModelV4,
    signal: AbortSignal,
    known: Compaction | null,
    /** The model processor's `append` (keyed by the request: replays collapse). */
    append: Append,
  ): Promise<{ built: Built; compaction: Compaction | null }> {
    await this.runtime.waitForHistory(request.offset);
    const n = spec.messageCount ?? 0;
    const { system, tools } = this.runtime.session();
    const transcript = this.runtime.transcript();
    let compaction = known ?? this.#latestCompaction(n);
    const from = compaction?.through ?? 0;
    const fixedBytes =
      byteLength(system) +
      byteLength(JSON.stringify(tools)) +
      byteLength(compaction?.summary ?? "");
    const budget = this.runtime.contextBudget(spec.model);
    const through = planCompaction({
      budget,
      fixedBytes,
      from,
      // Referenced content counts with its stored size, up to the per-message cap it is cut to.
      sizes: messageSizes(transcript, from, n).map((m) => ({
        ...m,
        bytes: Math.min(m.bytes, this.runtime.contentBudgetBytes),
      })),
    });
    if (through !== null && !(known && known.through >= through)) {
      const range = { requestId, fromMessage: from, throughMessage: through };
      await append({
        type: "context/compaction-requested",
        payload: range,
        key: "compaction-requested",
        causeOffset: request.offset,
      });
      const perMessage = Math.max(1_024, Math.floor(budget / (2 * (through - from))));
      const covered = await this.resolve(
        readMessages(transcript, from, through).map((m) => m.message),
        Math.min(perMessage, this.runtime.contentBudgetBytes),
      );
      const result = await collectStream(
        model,
        {
          prompt: [
            { role: "system", content: COMPACTION_SYSTEM },
            {
              role: "user",
              content: [
                {
                  type: "text",
                  text: compactionInput(compaction?.summary ?? null, covered, perMessage),
                },
              ],
            },
          ],
          maxOutputTokens: Math.max(256, Math.floor(budget / 16)),
          abortSignal: signal,
          providerOptions: { scripted: { requestId, task: "compaction" } },
        },
        () => undefined,
      );
      // The stored event wins: a re-execution after a crash gets the first summary back.
      const summary = truncate(result.text, Math.floor(budget / 4));
      const [stored] = await append({
        type: "context/compacted",
        payload: { ...range, summary },
        key: "compacted",
        causeOffset: request.offset,
      });
      const payload = stored?.payload as { throughMessage: number; summary: string } | undefined;
      compaction = {
        through: payload?.throughMessage ?? through,
        summary: payload?.summary ?? summary,
      };
    }
    const start = compaction?.through ?? 0;
    const window = await this.resolve(readMessages(transcript, start, n).map((m) => m.message));
    return {
      built: {
        prompt: toPrompt(systemWithSummary(system, compaction?.summary ?? null), window),
        tools,
      },
      compaction,
    };
  }
}

function truncate(text: string, maxBytes: number): string {
  if (byteLength(text) <= maxBytes) return text;
  let out = text.slice(0, maxBytes);
  while (byteLength(out) > maxBytes) out = out.slice(0, -Math.max(1, Math.floor(out.length / 10)));
  return `${out}…`;
}

function parseJson(text: string): JsonValue {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
