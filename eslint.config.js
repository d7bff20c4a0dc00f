// Lint (issue 12): ESLint's and typescript-eslint's recommended rules, plus the type-aware
// rules that catch what the type checker does not: promises nobody awaits or handles, and
// promises passed where a callback's result is ignored. `scripts/test.sh` runs it.
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  { ignores: ['**/node_modules/**', '**/dist/**', '.cache/**', 'coverage/**', 'test/bench/_*'] },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: { allowDefaultProject: ['vitest.config.ts', 'scripts/*.ts'] }, tsconfigRootDir: import.meta.dirname }
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false, attributes: false } }],
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      'no-empty': ['error', { allowEmptyCatch: true }], // `catch {}`: a best-effort close or cleanup
      'no-undef': 'off' // TypeScript checks names (browser and Node globals alike)
    }
  },
  {
    // tests and benches read JSON answers of the system under test; their shapes are asserted
    files: ['**/test/**/*.ts', 'test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' }
  }
)
