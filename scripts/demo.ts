/**
 * `deno task demo`: a newcomer's first command. Starts the fake Entra ID and the
 * Exchange-like server in this process (no root, no Dovecot, no internet) and
 * runs the real CLI against them with a client secret, for IMAP and for POP3,
 * showing exactly what a user sees.
 */
import { APP, MAILBOX, SECRET, startTestBed } from "../test/bed/testbed.ts";

const bed = await startTestBed();
const main = new URL("../src/main.ts", import.meta.url).pathname;
let failures = 0;
try {
  for (const protocol of ["IMAP", "POP3"]) {
    const port = protocol === "IMAP" ? bed.exchange.imapPort : bed.exchange.pop3Port;
    const args = [
      ...bed.common(),
      "-clientId",
      APP,
      "-clientsecret",
      SECRET,
      "-targetMailbox",
      MAILBOX,
      "-Protocol",
      protocol,
      "-Port",
      String(port),
    ];
    const shown = args.map((a) => (a === SECRET ? "'<secret>'" : a)).join(" ");
    console.log(`\n$ Get-IMAPAccessToken ${shown}`);
    const { code } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", "--quiet", main, ...args],
      stdin: "null",
      stdout: "inherit",
      stderr: "inherit",
    }).output();
    console.log(`(exit code ${code})`);
    if (code !== 0) failures++;
  }
} finally {
  await bed.close();
}
console.log(
  failures === 0
    ? "\nDemo OK: token from the fake Entra ID, XOAUTH2 login to IMAP and POP3."
    : `\nDemo FAILED in ${failures} run(s).`,
);
Deno.exit(failures === 0 ? 0 : 1);
