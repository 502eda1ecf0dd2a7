/**
 * The logger's part of the config (`log`): level and targets. It lives beside the logger, as each
 * service's part lives beside the service; server/config.ts composes them.
 */
import { z } from 'zod';
import {
  addRule,
  type ConfigPart,
  expecting,
  filePath,
  integer,
  list,
  listWords,
  oneOf,
  section,
} from './config.js';
import { LOG_LEVELS, type LoggerOptions } from './logger.js';

const consoleTarget = <T extends 'stdout' | 'stderr'>(type: T) =>
  section({ type: z.literal(type), format: oneOf(['json', 'pretty', 'auto']).default('auto') });

const rotationSchema = section({
  size: z
    .string(expecting('a size such as "10m" (a number with unit k, m or g)'))
    .regex(/^\d+(\.\d+)?[kmg]$/i),
  frequency: oneOf(['daily', 'hourly']),
  limit: integer(1, 10000),
})
  .partial()
  .superRefine((rotate, ctx) => {
    if (rotate.size === undefined && rotate.frequency === undefined) {
      addRule(ctx, [], 'set size, frequency or both (or leave rotate out)');
    }
  });

const fileTarget = section({ type: z.literal('file'), path: filePath, rotate: rotationSchema.optional() });

const TARGET_TYPES = ['stdout', 'stderr', 'file'] as const;
const logTarget = z.discriminatedUnion(
  'type',
  [consoleTarget('stdout'), consoleTarget('stderr'), fileTarget],
  {
    errorMap: (issue) => ({
      message:
        issue.code === 'invalid_type'
          ? `a log target object with "type": ${listWords(TARGET_TYPES)}`
          : `one of ${listWords(TARGET_TYPES)}`,
    }),
  },
);

// `satisfies` keeps the log section and the logger's own options from drifting apart.
const logSchema = section({
  level: oneOf(LOG_LEVELS).default('info'),
  targets: list(logTarget).default([{ type: 'stdout', format: 'auto' }]),
}) satisfies z.ZodType<LoggerOptions, z.ZodTypeDef, unknown>;

/** `log`: what the logger writes, and where. */
export const logConfig = { log: logSchema.default({}) } satisfies ConfigPart;
