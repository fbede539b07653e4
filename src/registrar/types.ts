/** What the registrar needs of the config; a getter so SIGHUP reloads apply to the next REGISTER. */
export interface RegistrarConfig {
  domain: string;
  minExpires: number;
  maxExpires: number;
  defaultExpires: number;
}
