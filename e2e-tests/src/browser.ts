import { chromium, type Browser } from 'playwright-core';

/** Debian's Chromium; the test tools' own browser downloads are not reachable here. */
const CHROMIUM = process.env.FERRY_CHROMIUM ?? '/usr/bin/chromium';

/** Headless Chromium with the flags this machine's closed network needs. */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

export const APP_URL = process.env.FERRY_APP_URL ?? 'http://localhost:3000';
export const BACKEND_URL = process.env.FERRY_BACKEND_URL ?? 'http://localhost:7007';
export const ARTIFACTS = process.env.FERRY_ARTIFACTS ?? 'artifacts';
