// Parses every ```mermaid block of the given Markdown files with mermaid itself; exits 1 if any fails.
import { JSDOM } from 'jsdom';
import fs from 'fs';
const dom = new JSDOM('<!doctype html><html><body></body></html>');
globalThis.window = dom.window; globalThis.document = dom.window.document;
const { default: mermaid } = await import('mermaid');
mermaid.initialize({ startOnLoad: false });
let failed = 0;
for (const file of process.argv.slice(2)) {
  const text = fs.readFileSync(file, 'utf8');
  const blocks = [...text.matchAll(/```mermaid\n([\s\S]*?)```/g)].map(m => m[1]);
  for (const [i, block] of blocks.entries()) {
    try { await mermaid.parse(block); console.log(`${file} #${i + 1}: ok`); }
    catch (e) { failed++; console.log(`${file} #${i + 1}: ${e.message}`); }
  }
}
process.exit(failed ? 1 : 0);
