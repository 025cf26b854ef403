/**
 * The mail-client configs of the README recipes, as templates with `{{NAME}}` placeholders.
 * The end-to-end tests (test/e2e/clients_test.ts) render them with test-bed values and run the
 * real clients on them; docs/clients.md shows them rendered with DOC_VALUES, and a test checks
 * that the two never drift apart. After editing a template, refresh the docs with
 * `deno run --allow-read --allow-write test/clients/render.ts docs/clients.md`.
 */

const HERE = new URL(".", import.meta.url);

/** Template file name -> code fence language in the docs. */
export const TEMPLATES = {
  "mail-token.sh": "sh",
  "mail-token-user.sh": "sh",
  "getmailrc": "ini",
  "mbsyncrc": "",
  "neomuttrc": "",
  "curl-pop3.sh": "sh",
  "curl-imap.sh": "sh",
} as const;

export type TemplateName = keyof typeof TEMPLATES;

/** What the docs show: Exchange Online and a reader's own paths. */
export const DOC_VALUES: Record<string, string> = {
  TOOL: "/usr/local/bin/Get-IMAPAccessToken",
  TENANT: "<tenantID>",
  CLIENT_ID: "<clientID>",
  PUBLIC_CLIENT_ID: "<clientID>",
  MAILBOX: "box@contoso.com",
  USER: "you@contoso.com",
  SECRET_FILE: "/home/you/.config/get-imapaccesstoken/secret",
  TOKEN_COMMAND: "/home/you/bin/mail-token",
  HOST: "outlook.office365.com",
  IMAP_PORT: "993",
  POP3_PORT: "995",
  CA_FILE: "/etc/ssl/certs/ca-certificates.crt",
  GETMAIL_MAILDIR: "/home/you/Maildir/",
  MBSYNC_DIR: "/home/you/Mail/",
  MESSAGE: "1",
};

export async function readTemplate(name: TemplateName): Promise<string> {
  return await Deno.readTextFile(new URL(name, HERE));
}

/** Replaces every `{{NAME}}`; a placeholder without a value is an error, not an empty string. */
export function render(template: string, values: Record<string, string>): string {
  const left = template.replace(/\{\{([A-Z0-9_]+)\}\}/g, "").match(/\{\{[^}]*\}\}/);
  if (left) throw new Error(`malformed placeholder ${left[0]}`);
  return template.replace(/\{\{([A-Z0-9_]+)\}\}/g, (_, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`no value for placeholder {{${name}}}`);
    return value;
  });
}

export async function renderTemplate(
  name: TemplateName,
  values: Record<string, string>,
): Promise<string> {
  return render(await readTemplate(name), values);
}

/** Quotes one word for sh (single quotes; a quote inside becomes '\''). */
export function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

/**
 * Each recipe block in the docs: the marker `<!-- client-config: NAME -->` on its own line,
 * then (after the blank line `deno fmt` puts there) a fenced code block with the rendered
 * template.
 */
const BLOCK = /<!-- client-config: (\S+) -->\n(\n?)```([a-z]*)\n([\s\S]*?)```\n/g;

export interface DocsBlock {
  name: string;
  lang: string;
  text: string;
  /** The whole match, marker to closing fence. */
  source: string;
}

export function docsBlocks(markdown: string): DocsBlock[] {
  return [...markdown.matchAll(BLOCK)].map((m) => ({
    name: m[1],
    lang: m[3],
    text: m[4],
    source: m[0],
  }));
}

/** Differences between the docs' recipe blocks and the templates; empty when they agree. */
export async function checkDocs(markdown: string): Promise<string[]> {
  const problems: string[] = [];
  const blocks = docsBlocks(markdown);
  for (const name of Object.keys(TEMPLATES) as TemplateName[]) {
    if (!blocks.some((b) => b.name === name)) problems.push(`${name}: no block in the docs`);
  }
  for (const block of blocks) {
    if (!(block.name in TEMPLATES)) {
      problems.push(`${block.name}: no such template in test/clients/`);
      continue;
    }
    const name = block.name as TemplateName;
    const expected = await renderTemplate(name, DOC_VALUES);
    if (block.text !== expected) {
      problems.push(`${name}: the docs' block differs from the template:\n${block.text}`);
    }
    if (block.lang !== TEMPLATES[name]) {
      problems.push(`${name}: fence language "${block.lang}", expected "${TEMPLATES[name]}"`);
    }
  }
  return problems;
}

/** The docs with every recipe block replaced by its freshly rendered template. */
export async function updateDocs(markdown: string): Promise<string> {
  let out = markdown;
  for (const block of docsBlocks(markdown)) {
    if (!(block.name in TEMPLATES)) continue;
    const name = block.name as TemplateName;
    const text = await renderTemplate(name, DOC_VALUES);
    const fence = "```";
    // A function, so that `$` in the configs is not read as a replacement pattern.
    out = out.replace(
      block.source,
      () => `<!-- client-config: ${name} -->\n\n${fence}${TEMPLATES[name]}\n${text}${fence}\n`,
    );
  }
  return out;
}

if (import.meta.main) {
  const [file] = Deno.args;
  if (!file) {
    console.error("usage: deno run --allow-read --allow-write test/clients/render.ts FILE.md");
    Deno.exit(2);
  }
  const before = await Deno.readTextFile(file);
  const after = await updateDocs(before);
  if (after !== before) await Deno.writeTextFile(file, after);
  const problems = await checkDocs(after);
  for (const p of problems) console.error(p);
  Deno.exit(problems.length ? 1 : 0);
}
