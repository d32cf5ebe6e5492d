/**
 * Names a host derives from its processors' names: the subscription key that routes a
 * delivery to a processor, and the SQLite name of a processor's own table.
 */

/** Routes a subscription key to its processor: `<processor>@<binding>/<host name>`. */
export const subscriptionKeyFor = (processor: string, binding: string, hostName: string) =>
  `${processor}@${binding}/${hostName}`;
export const processorOfKey = (key: string) => key.slice(0, Math.max(0, key.indexOf("@")));

/** The SQLite name of a processor's table (processor names are kebab-case, so this is injective). */
export const processorTableName = (processor: string, local: string) =>
  `p_${processor.replaceAll("-", "_")}__${local}`;
