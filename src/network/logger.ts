/**
 * The logging interface the network layer needs: a structural subset of pino's Logger, so the
 * core logger (src/core/logger.ts) can be passed as it is once it lands.
 */
export interface NetworkLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

const noop = (): void => {};

/** The default: logs nothing. */
export const silentLogger: NetworkLogger = { debug: noop, info: noop, warn: noop, error: noop };
