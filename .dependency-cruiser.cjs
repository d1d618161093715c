/**
 * The layering rules of the design ("Layout"): core/ imports nothing from src/; ini/ and render/
 * touch no fs, clock, env or network; only settings/ writes config.ini; nothing below http/
 * imports http/; no import cycles. Checked by `npm run layering`, which test/run.sh runs before
 * the suites: a broken rule fails the test command instead of waiting for a review to notice.
 *
 * Paths are relative to the repository root; node built-ins are matched with and without `node:`.
 * Type-only imports count (tsPreCompilationDeps): a layer that needs another layer's types
 * depends on it just the same.
 *
 * `.cjs` because package.json says "type": "module": a `.js` config would be read as ESM.
 */

/** Modules a process or thread starts from (main.ts is the composition root). */
const ENTRY_POINTS = ['^src/cli[.]ts$', '^src/server[.]ts$', '^src/main[.]ts$', '^src/sync/worker[.]ts$', '^src/console/console[.]ts$'];

/** Node built-ins and packages that reach the file system, the network, other processes or threads. */
const IO_MODULES = [
  '^(node:)?fs(/promises)?$',
  '^(node:)?(net|tls|dgram|dns|dns/promises|http|https|http2)$',
  '^(node:)?(child_process|worker_threads|cluster)$',
  '(^|/)node_modules/(dockerode|docker-modem|xmlrpc|chokidar|better-sqlite3)/',
];

/** Built-ins that read the clock or schedule work: renderers and the INI dialect take time as data. */
const CLOCK_MODULES = ['^(node:)?(timers|timers/promises|perf_hooks)$'];

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'core-is-a-leaf',
      severity: 'error',
      comment: 'src/core/ is the shared vocabulary (errors, actor, backoff, deadline, mask): it imports nothing else from src/, so every layer can use it without a cycle.',
      from: { path: '^src/core/' },
      to: { path: '^src/', pathNot: '^src/core/' },
    },
    {
      name: 'pure-ini-and-render',
      severity: 'error',
      comment:
        'src/ini/ (the dialect) and src/render/ (renderers) are pure: data in, text out. No fs, network, child processes, threads or clock; ' +
        'process.env is caught by the linter (biome.json, noProcessEnv). What they need from outside is passed in.',
      from: { path: '^src/(ini|render)/' },
      to: { path: [...IO_MODULES, ...CLOCK_MODULES] },
    },
    {
      name: 'pure-ini-and-render-transitively',
      severity: 'error',
      comment:
        'The same purity through other src/ modules: nothing src/ini/ or src/render/ imports, directly or not, may reach fs, network, processes or threads. ' +
        'Type-only imports are followed too (the tool cannot tell them apart in reachability rules): take types from modules that do no I/O, such as src/targets/target-spec.ts.',
      from: { path: '^src/(ini|render)/' },
      to: { path: IO_MODULES, reachable: true },
    },
    {
      name: 'atomic-writes-only-where-reviewed',
      severity: 'error',
      comment:
        'Only src/settings/ writes config.ini at run time (the store, through stageFile). The other importers of src/fs/atomic-write.ts are ' +
        'each allowed for one reason: bootstrap/shipped-defaults.ts installs config.ini and system.ini when missing (first start); ' +
        'bootstrap/template-merge.ts writes its own record (config.ini goes through the store); secrets/ writes the master key files; ' +
        'sync/target-writer.ts writes the rendered service files (under [sync] output_roots and never over confhub own files: targets/path-rules.ts, fs/contained-path.ts); ' +
        'the composition root (main.ts) and sync/worker.ts only call removeStaleTempFiles at start-up. ' +
        'A new importer is a new writer: add it here only with its reason. (The tool sees modules, not imported names.)',
      from: {
        path: '^src/',
        pathNot: [
          '^src/fs/',
          '^src/settings/',
          '^src/bootstrap/(shipped-defaults|template-merge)[.]ts$',
          '^src/secrets/(master-key|rekey)[.]ts$',
          '^src/sync/(target-writer|worker)[.]ts$',
          '^src/main[.]ts$',
        ],
      },
      to: { path: '^src/fs/atomic-write[.]ts$' },
    },
    {
      name: 'http-is-the-top',
      severity: 'error',
      comment: 'src/http/ (the Express app and routes) sits on top: only the composition root (main.ts) may import it.',
      from: { path: '^src/', pathNot: ['^src/http/', '^src/main[.]ts$'] },
      to: { path: '^src/http/' },
    },
    {
      name: 'sync-worker-stays-small',
      severity: 'error',
      comment:
        'The sync worker thread loads every module it reaches again, into its own heap: the HTTP stack, the database, the metrics and zod ' +
        '(about 3 MiB of heap alone) belong to the main thread; Docker and supervisord are reached through the small clients of src/reload/ ' +
        '(dockerode and xmlrpc cost about 25 and 8 MiB of RSS per thread).',
      from: { path: '^src/sync/worker[.]ts$' },
      to: { path: 'node_modules/(zod|express|express-rate-limit|prom-client|better-sqlite3|dockerode|xmlrpc)/', reachable: true },
    },
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'An import cycle: layers are a direction, not a tangle. Move what both sides need to the lower one (often src/core/).',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'no-orphans',
      severity: 'error',
      comment: 'A module nothing imports and that imports nothing: unused. Remove it or use it.',
      from: { orphan: true, path: '^src/', pathNot: ['[.]d[.]ts$', ...ENTRY_POINTS] },
      to: {},
    },
    {
      name: 'reachable-from-an-entry-point',
      severity: 'error',
      comment: 'A src/ module no entry point (cli, server, main, sync worker, console) reaches, even through other modules: dead code.',
      from: { path: ENTRY_POINTS },
      to: { path: '^src/', pathNot: ['[.]d[.]ts$', ...ENTRY_POINTS], reachable: false },
    },
    {
      name: 'not-to-dev-dep',
      severity: 'error',
      comment: 'src/ ships in the image and devDependencies do not (the Dockerfile prunes them). Type-only imports are erased and fine.',
      from: { path: '^src/' },
      to: { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['type-only'], pathNot: ['node_modules/@types/'] },
    },
    {
      name: 'no-non-package-json',
      severity: 'error',
      comment: 'A package that is not in package.json "dependencies": it works here by accident (hoisted) and breaks in the image.',
      from: { path: '^src/' },
      to: { dependencyTypes: ['npm-no-pkg', 'npm-unknown'] },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment: 'An import that resolves to nothing on disk.',
      from: { path: '^src/' },
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: ['node_modules'] },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
    skipAnalysisNotInRules: true,
  },
};
