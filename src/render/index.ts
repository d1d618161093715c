/**
 * The built-in renderers by format name, and the one call the sync plan makes: render, then
 * re-parse the output with the format's own rules before anything is staged.
 */
import type { FormatName } from '../targets/target-spec.js';
import { cockpitRenderer } from './cockpit.js';
import { envRenderer } from './env.js';
import { giteaRenderer } from './gitea.js';
import { iniRenderer } from './ini.js';
import { jsonRenderer } from './json.js';
import { nginxProxyManagerRenderer } from './nginx_proxy_manager.js';
import { portainerRenderer } from './portainer.js';
import { renderFailed } from './render-input.js';
import { supervisorEnvRenderer } from './supervisor-env.js';
import { templateRenderer } from './template.js';
import type { RenderInput, Renderer } from './types.js';
import { yamlRenderer } from './yaml.js';

export type { RenderInput, RenderSection, Renderer } from './types.js';

export const RENDERERS: ReadonlyMap<FormatName, Renderer> = new Map(
  [
    giteaRenderer,
    portainerRenderer,
    nginxProxyManagerRenderer,
    cockpitRenderer,
    envRenderer,
    iniRenderer,
    jsonRenderer,
    yamlRenderer,
    templateRenderer,
    supervisorEnvRenderer,
  ].map((renderer) => [renderer.format, renderer] as const),
);

/** Renders one target and verifies the output; throws AppError RENDER_FAILED on either failing. */
export function renderTarget(format: FormatName, input: RenderInput): string {
  const renderer = RENDERERS.get(format);
  if (!renderer) throw renderFailed(input.target, `no renderer for format ${String(format)}`);
  const output = renderer.render(input);
  renderer.verify(output, input);
  return output;
}
