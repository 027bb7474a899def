// @ts-check
// One-way imports between the layers of src/. A module may import from its own layer or
// from a LOWER one (earlier in LAYERS), never from a higher one. The wrong-way rules are
// generated below, one per (lower, higher) pair, named '<from>-must-not-import-<to>'.
// Run: npx depcruise src --config .dependency-cruiser.cjs

/** @type {{ rank: number; name: string; path: string }[]} */
const LAYERS = [
  { rank: 0, name: 'core', path: '^src/core/' },
  { rank: 1, name: 'errors', path: '^src/errors\\.ts$' },
  { rank: 1, name: 'version', path: '^src/version\\.ts$' },
  { rank: 2, name: 'config', path: '^src/config/' },
  { rank: 3, name: 'obs', path: '^src/obs/' },
  { rank: 4, name: 'store', path: '^src/store/' },
  { rank: 5, name: 'state', path: '^src/state/' },
  { rank: 6, name: 'pipeline', path: '^src/pipeline/' },
  { rank: 7, name: 'stream', path: '^src/stream/' },
  { rank: 8, name: 'http', path: '^src/http/' },
  { rank: 9, name: 'server', path: '^src/server\\.ts$' },
  { rank: 10, name: 'cli', path: '^src/cli/' },
  { rank: 10, name: 'client', path: '^src/client/' },
];

/** @type {import('dependency-cruiser').IForbiddenRuleType[]} */
const layerRules = LAYERS.flatMap((from) =>
  LAYERS.filter((to) => to.rank > from.rank).map((to) => ({
    name: `${from.name}-must-not-import-${to.name}`,
    comment:
      `src/${from.name} (layer ${from.rank}) imports src/${to.name} (layer ${to.rank}): imports must point DOWN the layers ` +
      '(core < errors/version < config < obs < store < state < pipeline < stream < http < server < cli/client). ' +
      'Move the shared piece down, or invert the dependency.',
    severity: /** @type {const} */ ('error'),
    from: { path: from.path },
    to: { path: to.path },
  })),
);

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    ...layerRules,
    {
      name: 'core-only-node-crypto',
      comment: 'src/core/ holds pure rules: the only Node builtin it may use is node:crypto.',
      severity: 'error',
      from: { path: '^src/core/' },
      to: { dependencyTypes: ['core'], pathNot: '^(node:)?crypto$' },
    },
    {
      name: 'core-must-not-import-outside-core',
      comment: 'src/core/ may import only src/core/ and npm packages (dependencies).',
      severity: 'error',
      from: { path: '^src/core/' },
      to: {
        // other src/ layers are already reported by the <core>-must-not-import-<x> rules
        pathNot: ['^src/core/', ...LAYERS.map((l) => l.path)],
        dependencyTypesNot: ['npm', 'core'],
      },
    },
    {
      name: 'verify-only-packages',
      comment:
        'src/verify/ is the independent auditor: it replays the log from the SPEC alone, so it may import only ' +
        'src/verify/, node built-ins and npm packages, never the service code it audits.',
      severity: 'error',
      from: { path: '^src/verify/' },
      to: { pathNot: ['^src/verify/'], dependencyTypesNot: ['npm', 'core'] },
    },
    {
      name: 'no-circular',
      comment: 'Circular import chain. Type-only cycles are tolerated; the layer rules still apply to them.',
      severity: 'error',
      from: {},
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
    {
      name: 'not-to-dev-dep',
      comment:
        'src/ imports a package that is only a devDependency: it will be missing in production. ' +
        'Move it to dependencies (type-only imports of @types/* are fine).',
      severity: 'error',
      from: { path: '^src/' },
      to: { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['type-only'], pathNot: ['node_modules/@types/'] },
    },
    {
      name: 'not-to-unresolvable',
      comment: 'Import that cannot be resolved to a file on disk (also guards against the layer rules passing vacuously).',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
    {
      name: 'no-non-package-json',
      comment: 'Import of an npm package not listed in package.json.',
      severity: 'error',
      from: {},
      to: { dependencyTypes: ['npm-no-pkg', 'npm-unknown'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // count `import type` edges too: a wrong-way type import is still a wrong-way import
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      // `import './x.js'` resolves to ./x.ts (dependency-cruiser maps .js -> .ts/.d.ts itself)
      extensions: ['.ts', '.d.ts', '.js', '.mjs', '.cjs', '.json'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
    skipAnalysisNotInRules: true,
  },
};
