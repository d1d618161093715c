/**
 * `confhub edit`: config.ini edited safely by hand, as visudo and kubectl edit do it. The editor
 * gets a private copy; on save the copy is checked and applied through the settings store (so it
 * is validated like an API write, audited, and merged if the file changed meanwhile). A copy that
 * is not valid is offered back to the editor with the reasons on top, never written.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppError, isAppError } from '../core/errors.js';
import type { Actor } from '../core/actor.js';
import { decodeText } from './revision.js';
import type { SettingsStore, UpdateResult } from './store.js';

/** Marks the lines the session puts on top of a copy that was refused; they are removed again. */
const PROBLEM_PREFIX = '# confhub edit: ';

export interface EditSessionOptions {
  readonly store: SettingsStore;
  readonly actor: Actor;
  /** Opens the editor on a file and resolves with its exit code. */
  readonly runEditor: (file: string) => Promise<number>;
  /** Asks what to do after a refused copy: true edits again, false gives the edit up. */
  readonly again: (problems: readonly string[]) => Promise<boolean>;
}

export type EditOutcome = { readonly kind: 'unchanged' } | { readonly kind: 'abandoned' } | { readonly kind: 'applied'; readonly result: UpdateResult };

/**
 * The editor command from VISUAL, then EDITOR, then vi: split on spaces (`code --wait`), run
 * without a shell, so no value of them is ever interpreted.
 */
export function editorCommand(env: NodeJS.ProcessEnv): string[] {
  const value = (env.VISUAL ?? '').trim() || (env.EDITOR ?? '').trim() || 'vi';
  return value.split(/\s+/);
}

export function runEditorProcess(command: readonly string[]): (file: string) => Promise<number> {
  return (file) =>
    new Promise((resolve, reject) => {
      const [program, ...args] = command;
      const child = spawn(program!, [...args, file], { stdio: 'inherit' });
      child.on('error', (error) =>
        reject(
          new AppError('INVALID_REQUEST', {
            message: 'no editor',
            details: `the editor ${program} could not be started (${(error as NodeJS.ErrnoException).code ?? 'error'}); set VISUAL or EDITOR`,
            cause: error,
          }),
        ),
      );
      child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
    });
}

function withoutProblems(text: string): string {
  return text
    .split(/(?<=\n)/)
    .filter((line) => !line.startsWith(PROBLEM_PREFIX))
    .join('');
}

function problemsOf(error: unknown): string[] {
  if (!isAppError(error)) throw error;
  const errors = error.data.errors ?? [];
  return errors.length > 0 ? errors.map((e) => e.message) : [error.details];
}

/** Errors that mean "this copy is not acceptable": the editor gets it back. Others end the session. */
const REFUSALS = new Set(['VALIDATION_FAILED', 'CONFIG_INVALID', 'INI_SYNTAX', 'SECRET_UNREADABLE', 'CONFIG_CONFLICT', 'PRECONDITION_FAILED']);

export async function editConfig({ store, actor, runEditor, again }: EditSessionOptions): Promise<EditOutcome> {
  const read = store.read().text;
  // Private: the copy holds the file as stored (secrets stay sealed), still only its owner reads it.
  const dir = mkdtempSync(join(tmpdir(), 'confhub-edit-'));
  const file = join(dir, 'config.ini');
  // A closed terminal or a kill must not leave the copy (and what was typed into it) behind. ^C
  // reaches the editor too, which uses it for itself (as visudo does, the session ignores it).
  const signals = ['SIGHUP', 'SIGINT', 'SIGTERM'] as const;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signal === 'SIGINT') return;
    rmSync(dir, { recursive: true, force: true });
    process.exit(128 + (signal === 'SIGHUP' ? 1 : 15));
  };
  for (const signal of signals) process.on(signal, onSignal);
  try {
    writeFileSync(file, read, { mode: 0o600 });
    for (;;) {
      const code = await runEditor(file);
      if (code !== 0) throw new AppError('INVALID_REQUEST', { message: 'editor failed', details: `the editor exited with ${code}; config.ini is unchanged` });
      const text = withoutProblems(decodeText(readFileSync(file), 'the edited config.ini'));
      if (text === read) return { kind: 'unchanged' };
      try {
        return { kind: 'applied', result: await store.edit({ read, text, actor }) };
      } catch (error) {
        if (!isAppError(error) || !REFUSALS.has(error.code)) throw error;
        const problems = problemsOf(error);
        if (!(await again(problems))) return { kind: 'abandoned' };
        writeFileSync(file, `${problems.map((p) => `${PROBLEM_PREFIX}${p.replace(/\r?\n/g, ' ')}\n`).join('')}${text}`, { mode: 0o600 });
      }
    }
  } finally {
    for (const signal of signals) process.off(signal, onSignal);
    rmSync(dir, { recursive: true, force: true });
  }
}
