/** Types of docs-assets.mjs (imported by vitest.config.ts). */
export declare const DOCS_SCRIPT: string;
export declare function copyDocsAssets(options?: { optional?: boolean }): void;
