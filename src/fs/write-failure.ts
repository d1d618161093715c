/**
 * Why a file could not be written, as an error a user can act on. A full disk is
 * 507 INSUFFICIENT_STORAGE naming the file whose disk is full; EDQUOT (the user's quota on that
 * disk used up) is full too, for confhub. Anything else keeps the system's reason (EACCES,
 * EROFS…), which says what to fix. Never a path or content: the label is what the user knows.
 */
import { AppError } from '../core/errors.js';

const DISK_FULL: Readonly<Record<string, string>> = { ENOSPC: 'no space left', EDQUOT: 'disk quota exceeded' };

function codeOf(error: unknown): string | undefined {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** ENOSPC or EDQUOT: writing again can work once space is freed, without any other change. */
export function isDiskFull(error: unknown): boolean {
  const code = codeOf(error);
  return code !== undefined && Object.hasOwn(DISK_FULL, code);
}

/** `label` names the file, as users know it ("config.ini", "the output of target gitea"). */
export function diskFullError({ label, error }: { label: string; error: unknown }): AppError<'INSUFFICIENT_STORAGE'> {
  const code = codeOf(error)!;
  return new AppError('INSUFFICIENT_STORAGE', { details: `the disk holding ${label} is full (${code}: ${DISK_FULL[code]})`, cause: error });
}

/** The error a write of `label` that failed with `error` answers; the file itself is unchanged. */
export function writeFailure({ label, error }: { label: string; error: unknown }): AppError {
  if (isDiskFull(error)) return diskFullError({ label, error });
  const code = codeOf(error);
  return new AppError('INTERNAL_ERROR', { details: `${label} could not be written${code ? ` (${code})` : ''}`, cause: error });
}

/** What the system says of a directory confhub may not use, and what fixes it. */
const NOT_WRITABLE: Readonly<Record<string, string>> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOTDIR: 'a part of the path is a file, not a directory',
};

/**
 * A start that cannot create or write its data directory (an init container's volume owned by
 * another user, a read-only mount): one line naming the path and the fix, for the CLI to print.
 */
export function unusableDirectory(error: unknown): AppError | undefined {
  const code = codeOf(error);
  const { path, address } = (error ?? {}) as { path?: unknown; address?: unknown };
  const where = typeof path === 'string' ? path : typeof address === 'string' ? address : undefined;
  if (code === undefined || !Object.hasOwn(NOT_WRITABLE, code) || where === undefined) return undefined;
  const details =
    `cannot write ${where} (${code}: ${NOT_WRITABLE[code]}): run confhub as a user that may write its data directory ` +
    "(chown the volume, or the container's --user), or set CONFHUB_DATA_DIR to a directory it can write";
  return new AppError('STARTUP_CONFIG_INVALID', { message: details, details, cause: error });
}
