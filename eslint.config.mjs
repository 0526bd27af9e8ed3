import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'cdk.out/**', 'node_modules/**', 'bench/results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['src/cli/**/*.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          // import() resolves a package's ESM build: a second copy (other classes, other
          // state) beside the CommonJS one the rest of the kit requires.
          selector: 'ImportExpression > Literal[value=/^[^.]/]',
          message:
            'import() only kit modules (a relative path); reach packages through a kit module that imports them',
        },
      ],
    },
  },
  {
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
    },
  },
);
