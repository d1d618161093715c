/**
 * Debian's Chromium for the browser suites, driven by playwright-core with that executable (no
 * browser is downloaded). Suites skip, saying why, when it is not installed.
 */
import { type Browser, chromium } from 'playwright-core';
import { findProgram } from './engines.js';

export const CHROMIUM = findProgram('chromium');

/** Warns once per suite that it is skipped; answers whether Chromium is there. */
export function chromiumOrWarn(suite: string): boolean {
  if (!CHROMIUM) console.warn(`chromium is not installed (Debian: apt-get install chromium); skipping ${suite}`);
  return CHROMIUM !== undefined;
}

/** Headless, without the sandbox: the suites run as root, which Chromium's sandbox refuses. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM!, args: ['--no-sandbox'] });
}
