/**
 * The `command` method: a frontend runs a capsule's slash command (`/name args` in chat).
 *
 * - A handler-backed `[[command]]` runs in its capsule (its export receives `arguments`: the
 *   argument text) for the caller's principal, session and
 *   workspace (`CapsuleRegistry.runCommand`); its reply text is shown:
 *   `{ kind: "output", text, is_error }`.
 * - A file-backed `[[command]]` is text for the conversation: `{ kind: "prompt", text }`, the
 *   file's text followed by the arguments; the frontend sends it as the next user turn.
 *
 * @module
 */
import { CapsuleCode, CapsuleError, type CapsuleRegistry } from "../capsule/mod.ts";
import type { JsonValue } from "../events/mod.ts";

/** Where a command runs. */
export interface CommandScope {
  /** The caller's principal. */
  readonly principal: string;
  /** The caller's session. */
  readonly session: string;
  /** The session's workspace id, if bound. */
  readonly workspaceId?: string;
}

/** Runs command `name` with `args` in `registry` for `scope`; see the module doc. */
export async function runCapsuleCommand(
  registry: CapsuleRegistry,
  scope: CommandScope,
  command: { readonly name: string; readonly args: string },
): Promise<JsonValue> {
  const view = {
    principal: scope.principal,
    ...(scope.workspaceId === undefined ? {} : { workspaceId: scope.workspaceId }),
  };
  const known = registry.commands(view).find((c) => c.name === command.name);
  if (known === undefined) {
    throw new CapsuleError(
      CapsuleCode.CAPSULE_NOT_FOUND,
      `No loaded capsule has the command "/${command.name}": see /help for the list`,
      { data: { name: command.name } },
    );
  }
  if (known.kind === "file") {
    const file = registry.listCommands(view).find((c) => c.name === command.name);
    const text = file?.text ?? "";
    return { kind: "prompt", text: command.args === "" ? text : `${text}\n\n${command.args}` };
  }
  const reply = await registry.runCommand(command.name, command.args, scope);
  return { kind: "output", text: reply.content, is_error: reply.isError };
}
