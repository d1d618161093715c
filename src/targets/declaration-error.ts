/** The error of a declaration in system.ini, naming its section and key. */
import { AppError } from '../core/errors.js';

export function invalid(section: string, key: string | undefined, problem: string): AppError {
  const where = key ? `system.ini [${section}] ${key}` : `system.ini [${section}]`;
  return new AppError('TARGET_INVALID', { message: `${where}: ${problem}` });
}
