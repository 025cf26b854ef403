/**
 * National clouds: login host, mail hosts and the Exchange resource of each.
 * Taken from the table (Microsoft's endpoint documentation could not
 * be re-checked offline when this was written; -AuthorityHost and -Server
 * override every value).
 */
export type Cloud = "Global" | "USGov" | "USGovDoD" | "China";

export interface CloudEndpoints {
  authorityHost: string;
  /** IMAP and POP3 host. */
  mailHost: string;
  smtpHost: string;
  /** Resource of the Exchange scope, `<resource>/.default`. */
  resource: string;
}

export const CLOUDS: Record<Cloud, CloudEndpoints> = {
  Global: {
    authorityHost: "https://login.microsoftonline.com",
    mailHost: "outlook.office365.com",
    smtpHost: "smtp.office365.com",
    resource: "https://outlook.office365.com",
  },
  USGov: {
    authorityHost: "https://login.microsoftonline.us",
    mailHost: "outlook.office365.us",
    smtpHost: "smtp.office365.us",
    resource: "https://outlook.office365.us",
  },
  USGovDoD: {
    authorityHost: "https://login.microsoftonline.us",
    mailHost: "outlook-dod.office365.us",
    smtpHost: "smtp-dod.office365.us",
    resource: "https://outlook-dod.office365.us",
  },
  China: {
    authorityHost: "https://login.chinacloudapi.cn",
    mailHost: "partner.outlook.cn",
    smtpHost: "smtp.partner.outlook.cn",
    resource: "https://partner.outlook.cn",
  },
};
