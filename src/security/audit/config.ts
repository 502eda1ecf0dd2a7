/**
 * The audit trail's part of the config (`audit`): on by default (records kept in the index and the
 * spool), with the Audit Record Repositories to send to over mutual TLS (RFC 5425).
 */
import {
  boolean,
  type ConfigPart,
  filePath,
  host,
  list,
  nonEmpty,
  port,
  section,
} from '../../core/config.js';

const repositorySchema = section({
  host,
  port,
  /** PEM: the CA the repository's certificate is checked against. */
  ca: filePath,
  /** PEM: our client certificate and key (mutual TLS). */
  cert: filePath,
  key: filePath,
  /** APP-NAME of the syslog header (default "pacs"). */
  appName: nonEmpty('a syslog APP-NAME').optional(),
});

/** `audit`: enabled (default true), repositories, spoolDir (default DATA/audit/spool). */
export const auditConfig = {
  audit: section({
    enabled: boolean().default(true),
    repositories: list(repositorySchema).default([]),
    spoolDir: filePath.optional(),
  }).default({}),
} satisfies ConfigPart;
